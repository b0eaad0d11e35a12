package layout

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dlkit/dl/internal/record"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Layout
		wantErr bool
	}{
		{"sharded", Sharded, false},
		{"flat", Flat, false},
		{" Flat ", Flat, false},
		{"", Sharded, false},
		{"tree", Sharded, true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil {
			var l Layout
			if err := l.UnmarshalText([]byte(got.String())); err != nil || l != got {
				t.Errorf("round trip of %v gave %v, %v", got, l, err)
			}
		}
	}
}

func TestKeyIsDocumentedHash(t *testing.T) {
	task := record.Task{ID: "42", URL: "https://example.com/a.bin"}
	sum := sha256.Sum256([]byte("42\x00https://example.com/a.bin"))
	if got, want := Key(task), hex.EncodeToString(sum[:])[:KeyLen]; got != want {
		t.Fatalf("Key = %s, want %s", got, want)
	}
	// printf '%s\0%s' 42 https://example.com/a.bin | sha256sum | cut -c1-24
	if got, want := Key(task), "3b51c75c9820f71cf11d2b1c"; got != want {
		t.Fatalf("Key = %s, want %s as the shell computes it", got, want)
	}
}

func TestPath(t *testing.T) {
	type tc struct {
		name   string
		layout Layout
		task   record.Task
		want   string // with KEY standing for the task's key
	}
	tests := []tc{
		{"sharded basename", Sharded, record.Task{ID: "1", URL: "https://h/dir/report.pdf?x=1#f"}, "SHARD/KEY-report.pdf"},
		{"flat basename", Flat, record.Task{ID: "1", URL: "https://h/dir/report.pdf"}, "KEY-report.pdf"},
		{"percent decoded", Flat, record.Task{ID: "1", URL: "https://h/my%20file%C3%A9.txt"}, "KEY-my fileé.txt"},
		{"encoded slash stays in name", Flat, record.Task{ID: "1", URL: "https://h/a%2Fb"}, "KEY-a_b"},
		{"encoded traversal", Flat, record.Task{ID: "1", URL: "https://h/%2E%2E"}, "KEY-file_1"},
		{"no basename", Flat, record.Task{ID: "7", URL: "https://h/"}, "KEY-file_7"},
		{"no path", Flat, record.Task{ID: "7", URL: "https://h"}, "KEY-file_7"},
		{"directory url", Flat, record.Task{ID: "7", URL: "https://h/dir/"}, "KEY-file_7"},
		{"url id sanitised", Flat, record.Task{ID: "https://h/", URL: "https://h/"}, "KEY-file_https:__h_"},
		{"name overrides", Flat, record.Task{ID: "1", URL: "https://h/x.bin", Name: "nice.iso"}, "KEY-nice.iso"},
		{"name sanitised", Sharded, record.Task{ID: "1", URL: "https://h/x.bin", Name: "../../etc/passwd"}, "SHARD/KEY-_.._etc_passwd"},
		{"empty name after sanitising falls back", Flat, record.Task{ID: "1", URL: "https://h/x.bin", Name: ".."}, "KEY-x.bin"},
		{"bad percent kept", Flat, record.Task{ID: "1", URL: "https://h/a%zz"}, "KEY-file_1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := Key(tt.task)
			want := strings.ReplaceAll(tt.want, "SHARD", key[:ShardLen])
			want = strings.ReplaceAll(want, "KEY", key)
			got := tt.layout.Path(tt.task)
			if got != want {
				t.Errorf("Path = %q, want %q", got, want)
			}
			checkPath(t, got)
		})
	}
}

func TestPathLongNameLeavesSuffixRoom(t *testing.T) {
	task := record.Task{ID: "1", URL: "https://h/" + strings.Repeat("n", 400) + ".tar.gz"}
	for _, l := range []Layout{Sharded, Flat} {
		p := l.Path(task)
		base := filepath.Base(p)
		if len(base)+len(".part.meta") > MaxName {
			t.Errorf("%v: %d-byte name leaves no room for .part.meta", l, len(base))
		}
		if !strings.HasSuffix(base, ".gz") {
			t.Errorf("%v: extension lost: %q", l, base)
		}
		checkPath(t, p)
	}
}

// TestPathDistinct is the seed's bug: two URLs with the same basename, or two
// rows with the same URL, must get different files.
func TestPathDistinct(t *testing.T) {
	for _, l := range []Layout{Sharded, Flat} {
		seen := make(map[string]record.Task)
		add := func(task record.Task) {
			p := l.Path(task)
			if prev, ok := seen[p]; ok {
				t.Fatalf("%v: %+v and %+v share %q", l, prev, task, p)
			}
			seen[p] = task
		}
		for i := range 20000 {
			add(record.Task{ID: fmt.Sprint(i), URL: "https://h/index.html"})
			add(record.Task{ID: "same", URL: fmt.Sprintf("https://h/%d/index.html", i)})
		}
		// The hashed string must not be ambiguous between id and url.
		add(record.Task{ID: "a", URL: "bhttps://h/x"})
		add(record.Task{ID: "ab", URL: "https://h/x"})
	}
}

func TestPathSharding(t *testing.T) {
	dirs := make(map[string]int)
	const n = 100000
	for i := range n {
		p := Sharded.Path(record.Task{ID: fmt.Sprint(i), URL: "https://h/f"})
		if strings.Count(p, "/") != 1 {
			t.Fatalf("%q is not one directory deep", p)
		}
		dirs[filepath.Dir(p)]++
	}
	// 100,000 files over 4,096 directories: about 24 each, all used.
	if len(dirs) != 1<<(4*ShardLen) {
		t.Errorf("%d shard directories, want %d", len(dirs), 1<<(4*ShardLen))
	}
	for d, c := range dirs {
		if c > 60 {
			t.Errorf("directory %s holds %d of %d files", d, c, n)
		}
	}
}

func TestURLName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://h/a/b.txt", "b.txt"},
		{"https://h/a/b.txt?q=/c.txt", "b.txt"},
		{"https://h/", ""},
		{"https://h", ""},
		{"https://h/a/", ""},
		{"https://h/%41", "A"},
		{"https://h/a%2Fb", "a/b"},
		{"::not a url", ""},
	}
	for _, tt := range tests {
		if got := URLName(tt.in); got != tt.want {
			t.Errorf("URLName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDispositionName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"inline", ""},
		{`attachment; filename="report.pdf"`, "report.pdf"},
		{`attachment; filename=plain.txt`, "plain.txt"},
		{`attachment; filename="../../etc/passwd"`, "passwd"},
		{`attachment; filename="C:\\temp\\x.exe"`, "x.exe"},
		{`attachment; filename*=UTF-8''na%C3%AFve%20file.txt`, "naïve file.txt"},
		{`attachment; filename="fallback.txt"; filename*=UTF-8''real.txt`, "real.txt"},
		{`attachment; filename=`, ""},
		{`garbage;;;`, ""},
		// RFC 8187 requires ISO-8859-1 beside UTF-8; its bytes are its
		// code points, and the name comes out in UTF-8.
		{`attachment; filename*=ISO-8859-1''caf%E9.txt`, "café.txt"},
		{`attachment; filename*=iso-8859-1''caf%E9.txt`, "café.txt"},
		{`attachment; filename*=Iso-8859-1'fr'%A3%20caf%E9.txt`, "£ café.txt"},
		{`attachment; FILENAME*=ISO-8859-1''caf%E9.txt`, "café.txt"},
		{`attachment; filename="cafe.txt"; filename*=ISO-8859-1''caf%E9.txt`, "café.txt"},
		{`attachment; filename*=ISO-8859-1''caf%E9.txt; filename="cafe.txt"`, "café.txt"},
		{`attachment; filename*=ISO-8859-1''..%2F..%2Fetc%2Fcaf%E9`, "café"},
		// An unknown charset falls back to filename, or to nothing.
		{`attachment; filename="fallback.txt"; filename*=KOI8-R''%C6%C1%CA%CC.txt`, "fallback.txt"},
		{`attachment; filename*=KOI8-R''%C6%C1%CA%CC.txt`, ""},
		// A filename* inside a quoted filename is no parameter.
		{`attachment; filename="a; filename*=ISO-8859-1''evil.txt"`, "a; filename*=ISO-8859-1''evil.txt"},
	}
	for _, tt := range tests {
		if got := DispositionName(tt.in); got != tt.want {
			t.Errorf("DispositionName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// checkPath asserts the invariants of every path Path returns.
func checkPath(t *testing.T, p string) {
	t.Helper()
	if !filepath.IsLocal(p) {
		t.Fatalf("%q is not local", p)
	}
	parts := strings.Split(p, "/")
	for i, c := range parts {
		max := MaxName
		if i == len(parts)-1 {
			max = MaxName - SuffixRoom
		}
		checkName(t, c, max)
	}
}

func FuzzPath(f *testing.F) {
	f.Add("1", "https://h/a.txt", "", "2", "https://h/a.txt")
	f.Add("1", "https://h/", "../x", "1", "https://h/x")
	f.Add("a\x00", "b", ".", "a", "\x00b")
	f.Fuzz(func(t *testing.T, id, url, name, id2, url2 string) {
		a := record.Task{ID: id, URL: url, Name: name}
		b := record.Task{ID: id2, URL: url2, Name: name}
		for _, l := range []Layout{Sharded, Flat} {
			pa, pb := l.Path(a), l.Path(b)
			checkPath(t, pa)
			if pa != l.Path(a) {
				t.Fatalf("Path is not deterministic")
			}
			// URLs never hold a NUL byte (net/url rejects control
			// characters), which is what makes id+"\x00"+url unambiguous.
			if (id != id2 || url != url2) && !strings.Contains(url+url2, "\x00") && pa == pb {
				t.Errorf("%+v and %+v share %q", a, b, pa)
			}
		}
	})
}
