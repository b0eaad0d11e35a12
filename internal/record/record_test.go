package record

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseTask(t *testing.T) {
	tests := []struct {
		line    string
		want    Task
		wantErr string
	}{
		{`{"id": "1", "url": "http://h/a"}`, Task{ID: "1", URL: "http://h/a"}, ""}, // the seed's payload, with spaces
		{`{"id":7,"url":"https://h/a","attempt":2,"token":"t"}`, Task{ID: "7", URL: "https://h/a", Attempt: 2, Token: "t"}, ""},
		{`https://h/x.iso`, Task{ID: "https://h/x.iso", URL: "https://h/x.iso"}, ""},
		{"  https://h/x.iso\r", Task{ID: "https://h/x.iso", URL: "https://h/x.iso"}, ""},
		{`{"id":"1","url":"http://h/a","sha256":"` + strings.Repeat("AB", 32) + `"}`, Task{ID: "1", URL: "http://h/a", SHA256: strings.Repeat("ab", 32)}, ""},
		{``, Task{}, "empty line"},
		{`{"url":"http://h/a"}`, Task{}, `no "id"`},
		{`{"id":"1"}`, Task{}, `no "url"`},
		{`{"id":"","url":"http://h/a"}`, Task{}, `empty "id"`},
		{`{"id":1.5,"url":"http://h/a"}`, Task{}, "neither a string nor an integer"},
		{`{"id":"1","url":"ftp://h/a"}`, Task{}, "scheme must be http or https"},
		{`{"id":"1","url":"file:///etc/passwd"}`, Task{}, "scheme must be http or https"},
		{`{"id":"1","url":"http:///a"}`, Task{}, "has no host"},
		{`{"id":"1","url":"http://h/a","sha256":"xyz"}`, Task{}, "64 hex digits"},
		{`{"id":"1","url":"http://h/a","attempt":-1}`, Task{}, "negative attempt"},
		{`{"id":"1",`, Task{}, "not a JSON task line"},
		{`not a url`, Task{}, "scheme must be http or https"},
		{`{"id":"` + strings.Repeat("x", 256) + `","url":"http://h/a"}`, Task{}, "longer than 255"},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			got, err := ParseTask([]byte(tc.line))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseResult(t *testing.T) {
	tests := []struct {
		line, wantErr string
	}{
		{`{"id":"1","url":"u","outcome":"done","path":"p","bytes":1}`, ""},
		{`{"id":"1","outcome":"failed","error":"x"}`, ""},
		{`{"id":"1","outcome":"done"}`, "done without a path"},
		{`{"id":"1","outcome":"done","path":"p","local":true}`, "local disk"},
		{`{"id":"1","outcome":"failed","error":"write x: no space left on device","retryable":true,"local":true}`, ""},
		{`{"id":"1","outcome":"maybe"}`, "outcome"},
		{`{"outcome":"done","path":"p"}`, `no "id"`},
		{`[]`, "not a JSON result line"},
		{`{"id":"1","outcome":"done","path":"p","sha256":"` + strings.Repeat("A", 64) + `"}`, ""},
		{`{"id":"1","outcome":"done","path":"p","sha256":"` + strings.Repeat("a", 65) + `"}`, "not 64 hex digits"},
		{`{"id":"1","outcome":"done","path":"p","sha256":"` + strings.Repeat("g", 64) + `"}`, "not 64 hex digits"},
		{`{"id":"1","outcome":"failed","error":"x","http_status":70000}`, "not an HTTP status"},
		{`{"id":"1","outcome":"failed","error":"x","http_status":-1}`, "not an HTTP status"},
		{`{"id":"1","outcome":"failed","error":"x","attempt":3000000000}`, "attempt 3000000000 out of range"},
		{`{"id":"1","outcome":"failed","error":"x","attempt":-1}`, "out of range"},
		{`{"id":"1","outcome":"done","path":"p","bytes":-5}`, "negative bytes"},
		{`{"id":"1","outcome":"done","path":"p","duration":1e300}`, "duration"},
		{`{"id":"` + strings.Repeat("x", 256) + `","outcome":"failed","error":"x"}`, "longer than 255 bytes"},
		{`{"id":"` + strings.Repeat("x", 255) + `","outcome":"failed","error":"x","http_status":999,"attempt":2147483647}`, ""},
	}
	for _, tc := range tests {
		_, err := ParseResult([]byte(tc.line))
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: err %v, want %q", tc.line, err, tc.wantErr)
		}
	}
}

func TestReadAllSkipsBadAndLongLines(t *testing.T) {
	in := "http://h/1\n\nnope\n" + strings.Repeat("a", MaxLine+10) + "\nhttp://h/2" // last line unterminated
	out := make(chan Task, 10)
	var bad []int
	err := ReadAll(context.Background(), strings.NewReader(in), ParseTask, out, func(b BadLine) { bad = append(bad, b.Line) })
	if err != nil {
		t.Fatal(err)
	}
	close(out)
	var ids []string
	for tk := range out {
		ids = append(ids, tk.ID)
	}
	if strings.Join(ids, " ") != "http://h/1 http://h/2" {
		t.Fatalf("tasks %v", ids)
	}
	if len(bad) != 2 || bad[0] != 3 || bad[1] != 4 {
		t.Fatalf("bad lines %v, want [3 4]", bad)
	}
}

func TestLineReaderTooLong(t *testing.T) {
	lr := NewLineReader(strings.NewReader(strings.Repeat("x", MaxLine+1) + "\nok\n"))
	if _, n, err := lr.Next(); !errors.Is(err, ErrTooLong) || n != 1 {
		t.Fatalf("line %d err %v, want 1 ErrTooLong", n, err)
	}
	if l, n, err := lr.Next(); err != nil || string(l) != "ok" || n != 2 {
		t.Fatalf("line %d %q %v", n, l, err)
	}
	if _, _, err := lr.Next(); err != io.EOF {
		t.Fatalf("err %v, want EOF", err)
	}
}

func TestWriteLines(t *testing.T) {
	var sb strings.Builder
	ch := make(chan Task, 2)
	ch <- Task{ID: "1", URL: "http://h/a?x=<&>"}
	ch <- Task{ID: "2", URL: "http://h/b"}
	close(ch)
	if err := WriteLines(&sb, ch); err != nil {
		t.Fatal(err)
	}
	want := `{"id":"1","url":"http://h/a?x=<&>"}` + "\n" + `{"id":"2","url":"http://h/b"}` + "\n"
	if sb.String() != want {
		t.Fatalf("got %q, want %q", sb.String(), want)
	}
}

// FuzzParseTask: whatever the line, the decoder neither panics nor accepts a
// task that a downloader could not safely use.
func FuzzParseTask(f *testing.F) {
	for _, s := range []string{`{"id":"1","url":"http://h/a"}`, `http://h/a`, `{"id":1,"url":"https://h/"}`, `{"id":"1","url":"http://h/a","sha256":"00"}`, "\xff", `{"id":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		tk, err := ParseTask(line)
		if err != nil {
			return
		}
		if tk.ID == "" || len(tk.ID) > 255 {
			t.Fatalf("accepted id %q", tk.ID)
		}
		if CheckURL(tk.URL) != nil {
			t.Fatalf("accepted url %q", tk.URL)
		}
		if !strings.HasPrefix(tk.URL, "http://") && !strings.HasPrefix(tk.URL, "https://") && !strings.HasPrefix(strings.ToLower(tk.URL), "http") {
			t.Fatalf("accepted scheme of %q", tk.URL)
		}
		if tk.Attempt < 0 {
			t.Fatalf("negative attempt")
		}
		_ = utf8.ValidString(tk.ID)
	})
}

// TestURLErrorsHidePasswords: a URL refused for its syntax, scheme or
// missing host is named in the error (which goes to error_message, dl-select's
// log and dl-fetch's stderr) without its password or query token.
func TestURLErrorsHidePasswords(t *testing.T) {
	for _, raw := range []string{
		"http://user:s3cret@h/a%zz",
		"https://user:s3cret@h:x/a",
		"ftp://user:s3cret@h/x",
		"http://user:s3cret@/x",
		"http://h/a%zz?token=s3cret",
	} {
		_, err := ParseTask([]byte(raw))
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "xxxxx") {
			t.Errorf("%s: err %v; want one naming the URL without its password", raw, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"42":                               "42",
		"abc?x=1":                          "abc?x=1",          // an id, not a URL
		"http://h/a b":                     "http://h/a b",     // not re-encoded
		"http://user@h/x":                  "http://xxxxx@h/x", // a name alone may be a token
		"https://ghp_T0KEN@h/x?a":          "https://xxxxx@h/x?xxxxx",
		"http://u%40v@h/x":                 "http://xxxxx@h/x",
		"http://@h/x":                      "http://@h/x", // nothing to hide
		"http://:p@h/x":                    "http://:xxxxx@h/x",
		"https://ghp_T0KEN:@h/x":           "https://xxxxx@h/x", // an empty password is none
		"http://tok:@h/a%zz":               "http://xxxxx@h/a%zz",
		"http://:@h/x":                     "http://:xxxxx@h/x",
		"http://tok@h/a%zz":                "http://xxxxx@h/a%zz",
		"http://tok@w@h:x/a?b=@":           "http://xxxxx@h:x/a?b=xxxxx",
		"http://@h/a%zz":                   "http://@h/a%zz",
		"http://h/a%zz":                    "http://h/a%zz",
		"http://u:p@h/x?q=1":               "http://u:xxxxx@h/x?q=xxxxx",
		"https://h/f.iso?token=t&sig=s&dl": "https://h/f.iso?token=xxxxx&sig=xxxxx&xxxxx",
		"http://u:p@h/a%zz":                "http://u:xxxxx@h/a%zz",
		"http://u:p@w@h:x/a?b=@":           "http://u:xxxxx@h:x/a?b=xxxxx",
		"http://h/a@b%zz":                  "http://h/a@b%zz",
		"http://h/a%zz?token=t":            "http://h/a%zz?token=xxxxx",
		"not a url: user:pw@host %zz":      "not a url: user:pw@host %zz",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTruncateKeepsWholeCharacters(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"报告报告", 4, "报…"}, // 3 bytes a character: byte 4 is inside the second
		{"报告报告", 6, "报告…"},
		{"报告", 2, "…"},
	} {
		if got := truncate(tc.in, tc.n); got != tc.want || !utf8.ValidString(got) {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
