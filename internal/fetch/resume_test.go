package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/origin"
	"github.com/dlkit/dl/internal/record"
)

func TestResume(t *testing.T) {
	body := content(600000, 7)
	old := content(600000, 8)
	modTime := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	lastMod := modTime.Format(http.TimeFormat)
	const half = 250000

	// serveFile answers like a static file server: Range, If-Range, 416.
	serveFile := func(etag string, b []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if etag != "" {
				w.Header().Set("ETag", etag)
			}
			http.ServeContent(w, r, "", modTime, bytes.NewReader(b))
		}
	}
	// ignoresIfRange answers a Range from the file it holds now, whatever
	// If-Range says, as an origin without If-Range support does.
	ignoresIfRange := func(etag string, b []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			r.Header.Del("If-Range")
			serveFile(etag, b)(w, r)
		}
	}
	earlier := modTime.Add(-time.Hour).Format(http.TimeFormat)
	type want struct {
		rangeHdr, ifRange string // of the first request
		requests          int
		status            int
		failed            string // error substring when the result must fail
	}
	tests := []struct {
		name    string
		part    []byte
		meta    *meta // nil: no sidecar; URL "" means the task's
		expect  string
		handler http.HandlerFunc
		want    want
	}{
		{name: "strong etag", part: body[:half], meta: &meta{ETag: `"v1"`, Size: int64(len(body))},
			handler: serveFile(`"v1"`, body),
			want:    want{rangeHdr: "bytes=250000-", ifRange: `"v1"`, requests: 1, status: 206}},
		{name: "last-modified", part: body[:half], meta: &meta{LastModified: lastMod, Size: -1},
			handler: serveFile("", body),
			want:    want{rangeHdr: "bytes=250000-", ifRange: lastMod, requests: 1, status: 206}},
		{name: "one byte left", part: body[:len(body)-1], meta: &meta{ETag: `"v1"`, Size: int64(len(body))},
			handler: serveFile(`"v1"`, body),
			want:    want{rangeHdr: "bytes=599999-", ifRange: `"v1"`, requests: 1, status: 206}},
		{name: "file changed on the server", part: old[:half], meta: &meta{ETag: `"v0"`, Size: int64(len(old))},
			handler: serveFile(`"v1"`, body),
			want:    want{rangeHdr: "bytes=250000-", ifRange: `"v0"`, requests: 1, status: 200}},
		{name: "file changed on a server that ignores if-range (etag)", part: old[:half], meta: &meta{ETag: `"v0"`, Size: int64(len(old))},
			handler: ignoresIfRange(`"v1"`, body),
			want:    want{rangeHdr: "bytes=250000-", ifRange: `"v0"`, requests: 2, status: 200}},
		{name: "file changed on a server that ignores if-range (last-modified)", part: old[:half], meta: &meta{LastModified: earlier, Size: int64(len(old))},
			handler: ignoresIfRange("", body),
			want:    want{rangeHdr: "bytes=250000-", ifRange: earlier, requests: 2, status: 200}},
		{name: "same file on a server that ignores if-range", part: body[:half], meta: &meta{ETag: `"v1"`, Size: int64(len(body))},
			handler: ignoresIfRange(`"v1"`, body),
			want:    want{rangeHdr: "bytes=250000-", ifRange: `"v1"`, requests: 1, status: 206}},
		{name: "no sidecar starts over", part: old[:half],
			handler: serveFile(`"v1"`, body),
			want:    want{requests: 1, status: 200}},
		{name: "sidecar for another url starts over", part: old[:half], meta: &meta{URL: "http://elsewhere/x", ETag: `"v1"`, Size: -1},
			handler: serveFile(`"v1"`, body),
			want:    want{requests: 1, status: 200}},
		{name: "garbage sidecar starts over", part: old[:half], meta: &meta{URL: "garbage"},
			handler: serveFile(`"v1"`, body),
			want:    want{requests: 1, status: 200}},
		{name: "no validator starts over", part: old[:half], meta: &meta{Size: int64(len(body))},
			handler: serveFile("", body),
			want:    want{requests: 1, status: 200}},
		{name: "no validator but expected sha256 resumes", part: body[:half], meta: &meta{Size: int64(len(body))}, expect: sha(body),
			handler: serveFile("", body),
			want:    want{rangeHdr: "bytes=250000-", requests: 1, status: 206}},
		{name: "part longer than the file starts over", part: content(700000, 9), meta: &meta{ETag: `"v1"`, Size: int64(len(body))},
			handler: serveFile(`"v1"`, body),
			want:    want{requests: 1, status: 200}},
		{name: "server ignores range", part: body[:half], meta: &meta{ETag: `"v1"`, Size: -1},
			handler: func(w http.ResponseWriter, r *http.Request) { w.Write(body) },
			want:    want{rangeHdr: "bytes=250000-", ifRange: `"v1"`, requests: 1, status: 200}},
		{name: "wrong content-range restarts", part: body[:half], meta: &meta{ETag: `"v1"`, Size: -1},
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Range") != "" {
					w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-99/%d", len(body)))
					w.WriteHeader(http.StatusPartialContent)
					w.Write(body[:100])
					return
				}
				w.Write(body)
			},
			want: want{rangeHdr: "bytes=250000-", ifRange: `"v1"`, requests: 2, status: 200}},
		{name: "part already complete", part: body, meta: &meta{ETag: `"v1"`, Size: int64(len(body))},
			handler: serveFile(`"v1"`, body),
			want:    want{rangeHdr: "bytes=600000-", ifRange: `"v1"`, requests: 1, status: 416}},
		{name: "416 for an incomplete part restarts", part: body[:half], meta: &meta{ETag: `"v1"`, Size: -1},
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Range") != "" {
					w.Header().Set("Content-Range", "bytes */999")
					w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
					return
				}
				w.Write(body)
			},
			want: want{rangeHdr: "bytes=250000-", ifRange: `"v1"`, requests: 2, status: 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c counter
			srv := httptest.NewServer(c.wrap(tt.handler))
			defer srv.Close()
			f := newFetcher(t, Options{Fsync: true})
			task := record.Task{ID: "r", URL: srv.URL + "/big.bin", SHA256: tt.expect}
			ps := f.paths(task)
			os.MkdirAll(filepath.Dir(ps.part), 0o755)
			if err := os.WriteFile(ps.part, tt.part, 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.meta != nil {
				m := *tt.meta
				var b []byte
				if m.URL == "garbage" {
					b = []byte("{not json")
				} else {
					if m.URL == "" {
						m.URL = task.URL
					}
					b, _ = json.Marshal(m)
				}
				if err := os.WriteFile(ps.meta, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}

			res := f.Fetch(context.Background(), task)

			if c.n() != tt.want.requests {
				t.Errorf("%d requests, want %d", c.n(), tt.want.requests)
			}
			first := c.reqs[0]
			if got := first.Header.Get("Range"); got != tt.want.rangeHdr {
				t.Errorf("Range %q, want %q", got, tt.want.rangeHdr)
			}
			if got := first.Header.Get("If-Range"); got != tt.want.ifRange {
				t.Errorf("If-Range %q, want %q", got, tt.want.ifRange)
			}
			if res.HTTP != tt.want.status {
				t.Errorf("status %d, want %d", res.HTTP, tt.want.status)
			}
			if tt.want.failed != "" {
				if res.Outcome != record.Failed || res.Retryable || !strings.Contains(res.Error, tt.want.failed) {
					t.Errorf("got %+v; want a final failure %q", res, tt.want.failed)
				}
				if got := files(t, f.o.Dir); len(got) != 0 {
					t.Errorf("download directory holds %v; want nothing", got)
				}
				return
			}
			checkDone(t, res, body)
		})
	}
}

// TestResumedChecksumMismatchStartsOver: a resume without a validator is
// allowed because the expected sha256 catches a splice of two versions of
// the file; what it catches must be downloaded whole again, not failed for
// good, since the origin may serve exactly the expected file. Only a whole
// download that mismatches is a final failure.
func TestResumedChecksumMismatchStartsOver(t *testing.T) {
	body := content(600000, 7)
	old := content(600000, 8) // the version the cut transfer began with
	const half = 250000
	serve := func(etag string, b []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if etag != "" {
				w.Header().Set("ETag", etag)
			}
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b)) // no Last-Modified
		}
	}
	tests := []struct {
		name    string
		meta    meta
		handler http.HandlerFunc
		expect  string
		failed  string // the final failure, if the whole file mismatches too
	}{
		{name: "no validator, file changed on the server", meta: meta{Size: int64(len(body))},
			handler: serve("", body), expect: sha(body)},
		{name: "etag that did not change with the file", meta: meta{ETag: `"v1"`, Size: int64(len(body))},
			handler: serve(`"v1"`, body), expect: sha(body)},
		{name: "whole file mismatches too", meta: meta{Size: int64(len(body))},
			handler: serve("", body), expect: sha(old), failed: "does not match the expected"},
	}
	for _, tt := range tests {
		for _, retries := range []int{0, 1} {
			t.Run(fmt.Sprintf("%s/retries=%d", tt.name, retries), func(t *testing.T) {
				var c counter
				srv := httptest.NewServer(c.wrap(tt.handler))
				defer srv.Close()
				f := newFetcher(t, Options{Fsync: true, Retries: retries})
				task := record.Task{ID: "r", URL: srv.URL + "/big.bin", SHA256: tt.expect}
				ps := f.paths(task)
				os.MkdirAll(filepath.Dir(ps.part), 0o755)
				if err := os.WriteFile(ps.part, old[:half], 0o644); err != nil {
					t.Fatal(err)
				}
				m := tt.meta
				m.URL = task.URL
				b, _ := json.Marshal(m)
				if err := os.WriteFile(ps.meta, b, 0o644); err != nil {
					t.Fatal(err)
				}

				res := f.Fetch(context.Background(), task)
				if retries == 0 {
					// The first delivery: a passing failure that keeps no
					// bytes; the next delivery downloads it whole.
					if res.Outcome != record.Failed || !res.Retryable || !strings.Contains(res.Error, "does not match the expected") {
						t.Fatalf("got %+v; want a retryable checksum failure", res)
					}
					if got := files(t, f.o.Dir); len(got) != 0 {
						t.Fatalf("download directory holds %v after the mismatch; want nothing", got)
					}
					task.Attempt = res.Attempt
					res = f.Fetch(context.Background(), task)
				}
				if n := c.n(); n != 2 {
					t.Errorf("%d requests, want 2 (the resume, then the whole file)", n)
				}
				if got := c.reqs[0].Header.Get("Range"); got != "bytes=250000-" {
					t.Errorf("first request Range %q, want a resume", got)
				}
				if got := c.last().Header.Get("Range"); got != "" {
					t.Errorf("second request Range %q, want the whole file", got)
				}
				if tt.failed != "" {
					if res.Outcome != record.Failed || res.Retryable || !strings.Contains(res.Error, tt.failed) {
						t.Fatalf("got %+v; want a final failure %q", res, tt.failed)
					}
					if got := files(t, f.o.Dir); len(got) != 0 {
						t.Errorf("download directory holds %v; want nothing", got)
					}
					return
				}
				checkDone(t, res, body)
			})
		}
	}
}

// TestResumeAfterCut is the whole story: a transfer cut mid-body leaves a
// resumable part file, and the next attempt — a retry in the same call or a
// later task delivery — fetches only the rest.
func TestResumeAfterCut(t *testing.T) {
	body := content(3<<20, 10)
	newOrigin := func() (*httptest.Server, *counter) {
		var c counter
		srv := httptest.NewServer(c.wrap(func(w http.ResponseWriter, r *http.Request) {
			if c.n() == 1 {
				w.Header().Set("ETag", `"e"`)
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				w.Write(body[:1<<20])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler) // cut the connection mid-body
			}
			w.Header().Set("ETag", `"e"`)
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
		}))
		return srv, &c
	}

	t.Run("next delivery", func(t *testing.T) {
		srv, c := newOrigin()
		defer srv.Close()
		f := newFetcher(t, Options{})
		task := record.Task{ID: "1", URL: srv.URL + "/cut.bin", Attempt: 2}
		res := f.Fetch(context.Background(), task)
		if res.Outcome != record.Failed || !res.Retryable || res.Attempt != 3 {
			t.Fatalf("first attempt: %+v; want a retryable failure", res)
		}
		ps := f.paths(task)
		if fi, err := os.Stat(ps.part); err != nil || fi.Size() == 0 || fi.Size() > 1<<20 {
			t.Fatalf("part file after the cut: %v, %v", fi, err)
		}
		partSize, _ := os.Stat(ps.part)
		task.Attempt = res.Attempt
		res = f.Fetch(context.Background(), task)
		checkDone(t, res, body)
		if res.Attempt != 3 || res.HTTP != 206 {
			t.Errorf("attempt %d, status %d; want 3, 206", res.Attempt, res.HTTP)
		}
		if got, want := c.last().Header.Get("Range"), fmt.Sprintf("bytes=%d-", partSize.Size()); got != want {
			t.Errorf("Range %q, want %q", got, want)
		}
	})
	t.Run("in-process retry", func(t *testing.T) {
		srv, c := newOrigin()
		defer srv.Close()
		f := newFetcher(t, Options{Retries: 2, Fsync: true})
		res := f.Fetch(context.Background(), record.Task{ID: "1", URL: srv.URL + "/cut.bin"})
		checkDone(t, res, body)
		if res.Attempt != 1 || c.n() != 2 || res.HTTP != 206 {
			t.Errorf("attempt %d after %d requests, status %d; want 1, 2, 206", res.Attempt, c.n(), res.HTTP)
		}
	})
}

// TestResumeAnswersThatDoNotAddUp: a resume answered with bytes that do not
// fit the part file (a range that stops short with no total, another
// total, more bytes than the range) never ends in a published file other
// than the origin's, however many deliveries it takes.
func TestResumeAnswersThatDoNotAddUp(t *testing.T) {
	body := content(600000, 7)
	other := content(700000, 8) // another version of the file
	const half = 250000
	partial := func(rng string, b []byte, chunked bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Content-Range", "bytes "+rng)
			if !chunked {
				w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			}
			w.WriteHeader(http.StatusPartialContent)
			w.(http.Flusher).Flush() // chunked: the body's end is not announced
			w.Write(b)
		}
	}
	tests := []struct {
		name  string
		first http.HandlerFunc // the answer to the first resume
		error string           // of the first delivery, "" when it is done
	}{
		{name: "a range that stops short, total unknown",
			first: partial("250000-399999/*", body[half:400000], false),
			error: "partial content ended at byte 400000 of 600000"},
		{name: "another total",
			first: partial("250000-599999/700000", other[half:600000], false)},
		{name: "a body longer than its range",
			first: partial("250000-250099/600000", append(append([]byte{}, body[half:half+100]...), "GARBAGE"...), true),
			error: "body longer than announced: got 107 of 100 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c counter
			srv := httptest.NewServer(c.wrap(func(w http.ResponseWriter, r *http.Request) {
				if c.n() == 1 {
					tt.first(w, r)
					return
				}
				w.Header().Set("ETag", `"v1"`)
				http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
			}))
			defer srv.Close()
			f := newFetcher(t, Options{})
			task := record.Task{ID: "r", URL: srv.URL + "/big.bin"}
			ps := f.paths(task)
			os.MkdirAll(filepath.Dir(ps.part), 0o755)
			m, _ := json.Marshal(meta{URL: task.URL, ETag: `"v1"`, Size: int64(len(body))})
			if os.WriteFile(ps.part, body[:half], 0o644) != nil || os.WriteFile(ps.meta, m, 0o644) != nil {
				t.Fatal("cannot write the part file")
			}

			res := f.Fetch(context.Background(), task)
			if tt.error != "" {
				if res.Outcome != record.Failed || !res.Retryable || !strings.Contains(res.Error, tt.error) {
					t.Errorf("first delivery: %+v; want a retryable failure %q", res, tt.error)
				}
				if res.Outcome != record.Done {
					res = f.Fetch(context.Background(), task)
				}
			}
			checkDone(t, res, body)
		})
	}
}

func TestMetaFrom(t *testing.T) {
	tests := []struct {
		etag, lastMod string
		wantValidator string
	}{
		{`"abc"`, "", `"abc"`},
		{`W/"abc"`, "", ""},
		{`W/"abc"`, "Wed, 01 May 2024 12:00:00 GMT", "Wed, 01 May 2024 12:00:00 GMT"},
		{`"abc"`, "Wed, 01 May 2024 12:00:00 GMT", `"abc"`},
		{"", "", ""},
		{"unquoted", "", ""},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.etag != "" {
			h.Set("ETag", tt.etag)
		}
		if tt.lastMod != "" {
			h.Set("Last-Modified", tt.lastMod)
		}
		if got := metaFrom("u", h, 1, "").validator(); got != tt.wantValidator {
			t.Errorf("etag %q last-modified %q: validator %q, want %q", tt.etag, tt.lastMod, got, tt.wantValidator)
		}
	}
}

func TestContentRange(t *testing.T) {
	tests := []struct {
		in                 string
		first, last, total int64
		ok                 bool
	}{
		{"bytes 0-99/100", 0, 99, 100, true},
		{"bytes 100-199/*", 100, 199, -1, true},
		{"bytes */500", -1, -1, 500, true},
		{"bytes 5-4/100", 0, 0, 0, false},
		{"bytes 0-100/100", 0, 0, 0, false},
		{"bytes -1-5/10", 0, 0, 0, false},
		{"items 0-1/2", 0, 0, 0, false},
		{"bytes 0-1", 0, 0, 0, false},
		{"bytes a-b/c", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	}
	for _, tt := range tests {
		first, last, total, err := contentRange(tt.in)
		if (err == nil) != tt.ok || (tt.ok && (first != tt.first || last != tt.last || total != tt.total)) {
			t.Errorf("contentRange(%q) = %d, %d, %d, %v", tt.in, first, last, total, err)
		}
	}
}

// TestPartFilesDoNotFollowSymlinks: a symbolic link planted at a task's part
// file or sidecar name (by anyone who can write the download directory, a
// shared one say) must not make dl write where it points: the file outside
// stays as it was, the task fails naming the link, and nothing is published.
func TestPartFilesDoNotFollowSymlinks(t *testing.T) {
	body := content(resumeMin+1000, 15) // large enough for a sidecar
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Write(body)
	}))
	defer srv.Close()
	task := record.Task{ID: "1", URL: srv.URL + "/a.bin"}
	tests := []struct {
		name string
		link func(paths) string
	}{
		{"part file", func(ps paths) string { return ps.part }},
		{"sidecar", func(ps paths) string { return ps.meta }},
	}
	for _, tt := range tests {
		for _, expectNew := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, expect new %v", tt.name, expectNew), func(t *testing.T) {
				victim := filepath.Join(t.TempDir(), "victim")
				if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
					t.Fatal(err)
				}
				f := newFetcher(t, Options{ExpectNew: expectNew})
				ps := f.paths(task)
				link := tt.link(ps)
				if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(victim, link); err != nil {
					t.Fatal(err)
				}
				res := f.Fetch(context.Background(), task)
				if b, err := os.ReadFile(victim); err != nil || string(b) != "precious" {
					t.Errorf("the file the link points to now holds %d bytes (%v)", len(b), err)
				}
				if res.Outcome != record.Failed || !strings.Contains(res.Error, link+" is a symbolic link") {
					t.Errorf("got %+v; want a failure naming the link", res)
				}
				if fi, err := os.Lstat(ps.final); err == nil {
					t.Errorf("%s published as %v", ps.final, fi.Mode())
				}
			})
		}
	}
}

// TestResumeReadsNoFIFOAsSidecar: a FIFO planted at a part file's sidecar
// name is not read (a read would wait for a writer for ever): the part
// beside it starts over and the download completes.
func TestResumeReadsNoFIFOAsSidecar(t *testing.T) {
	body := content(resumeMin+1000, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Write(body)
	}))
	defer srv.Close()
	task := record.Task{ID: "1", URL: srv.URL + "/a.bin"}
	f := newFetcher(t, Options{})
	ps := f.paths(task)
	if err := os.MkdirAll(filepath.Dir(ps.part), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ps.part, body[:1000], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(ps.meta, 0o644); err != nil {
		t.Fatal(err)
	}
	got := make(chan record.Result, 1)
	go func() { got <- f.Fetch(context.Background(), task) }()
	select {
	case res := <-got:
		sum := sha256.Sum256(body)
		if res.Outcome != record.Done || res.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("got %+v; want the whole file", res)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the resume still waits on the FIFO at the sidecar's name after 30s")
	}
}

// TestResumeKeepsTheServersName: a task that names no file takes the name
// the origin's Content-Disposition suggests, however its download went: in
// one response, resumed after a cut (206), or found whole in its part file
// (a worker that died between the last byte and the rename, whose resume
// the origin answers 416 "nothing left"). The name is the one the response
// that began the part file suggested, so the sidecar carries it.
func TestResumeKeepsTheServersName(t *testing.T) {
	const size = 2 << 20 // above resumeMin: the part file has a sidecar
	o := origin.New()
	srv := httptest.NewServer(o)
	defer srv.Close()
	tests := []struct {
		name  string
		knobs []string
		first record.Outcome // of the first delivery
		http  int            // of the second
	}{
		{"one response", nil, record.Done, 0},
		// Cut after 1 MiB: the second delivery resumes with a 206.
		{"resumed", []string{"short=1048576"}, record.Failed, http.StatusPartialContent},
		// One byte more announced than sent: the part file holds the
		// whole file, and the resume gets 416.
		{"part holds it all", []string{"cl=" + strconv.Itoa(size+1)}, record.Failed, http.StatusRequestedRangeNotSatisfiable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := strings.ReplaceAll(tt.name, " ", "-") + "/" // the URL names no file
			u := origin.URL(srv.URL, dir, size, append([]string{"cd=report.bin"}, tt.knobs...)...)
			task := record.Task{ID: "1", URL: u}
			named := task
			named.Name = "report.bin"
			f := newFetcher(t, Options{})
			if res := f.Fetch(context.Background(), task); res.Outcome != tt.first {
				t.Fatalf("first delivery: %+v, want %s", res, tt.first)
			}
			res := f.Fetch(context.Background(), task)
			if res.Outcome != record.Done || res.SHA256 != origin.Sum(dir, size) {
				t.Fatalf("got %+v; want the file done", res)
			}
			if tt.http != 0 && res.HTTP != tt.http {
				t.Errorf("second delivery answered %d, want %d", res.HTTP, tt.http)
			}
			if want, _ := f.final(named); res.Path != want {
				t.Errorf("published as %s, want %s, the name the origin suggested", res.Path, want)
			}
			if got := files(t, f.o.Dir); len(got) != 1 {
				t.Errorf("download directory holds %v", got)
			}
		})
	}
}

// TestSamePathIsTheNameItself: openPart and Clean check, under the part
// file's lock, that its name still holds the file they opened. A link put
// at the name meanwhile, even one to that very file, is not the file: the
// part would be published as that link, and Clean would remove the link.
func TestSamePathIsTheNameItself(t *testing.T) {
	dir := t.TempDir()
	part := filepath.Join(dir, "a.part")
	if err := os.WriteFile(part, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(part)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	link := filepath.Join(dir, "b.part")
	if err := os.Symlink(part, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		want bool
	}{
		{part, true},
		{link, false},
		{filepath.Join(dir, "gone.part"), false},
	} {
		if _, same, err := samePath(f, tt.path); err != nil || same != tt.want {
			t.Errorf("samePath(%s) = %v, %v; want %v", filepath.Base(tt.path), same, err, tt.want)
		}
	}
}
