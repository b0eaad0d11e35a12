package fetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/layout"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/testenv"
)

func TestFetchDone(t *testing.T) {
	body := content(1<<20+12345, 1) // crosses copy-buffer boundaries
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(body[:5000])
	zw.Close()

	serve := func(b []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { w.Write(b) }
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		path    string // request path on the server
		task    record.Task
		opts    Options
		want    []byte
		file    string                          // expected basename suffix of the result path
		check   func(*testing.T, *http.Request) // the last request
	}{
		{name: "content-length", path: "/data/file.bin", want: body, file: "-file.bin",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				w.Write(body)
			}},
		{name: "chunked", path: "/c.bin", want: body, file: "-c.bin", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Write(body[:1000])
			w.(http.Flusher).Flush()
			w.Write(body[1000:])
		}},
		{name: "empty", path: "/empty", want: []byte{}, file: "-empty", handler: serve(nil)},
		{name: "gzip stored as sent", path: "/x.gz", want: gz.Bytes(), file: "-x.gz",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				w.Write(gz.Bytes())
			},
			check: func(t *testing.T, r *http.Request) {
				if got := r.Header.Get("Accept-Encoding"); got != "identity" {
					t.Errorf("Accept-Encoding %q", got)
				}
			}},
		{name: "redirect followed", path: "/old", want: body[:100], file: "-old",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/old" {
					http.Redirect(w, r, "/new/real.bin", http.StatusFound)
					return
				}
				w.Write(body[:100])
			}},
		{name: "expected sha256", path: "/s", task: record.Task{SHA256: sha(body)}, want: body, file: "-s", handler: serve(body)},
		{name: "expected sha256 upper case", path: "/s", task: record.Task{SHA256: strings.ToUpper(sha(body))}, want: body, file: "-s", handler: serve(body)},
		{name: "task name", path: "/x", task: record.Task{Name: "../nice.iso"}, want: body[:10], file: "-_nice.iso", handler: serve(body[:10])},
		{name: "content-disposition without url name", path: "/", want: body[:10], file: "-report.pdf",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Disposition", `attachment; filename="../report.pdf"`)
				w.Write(body[:10])
			}},
		{name: "content-disposition ignored when url names the file", path: "/a.txt", want: body[:10], file: "-a.txt",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Disposition", `attachment; filename="report.pdf"`)
				w.Write(body[:10])
			}},
		{name: "no name at all", path: "/dir/", task: record.Task{ID: "77"}, want: body[:10], file: "-file_77", handler: serve(body[:10])},
		{name: "content-disposition naming the part file", path: "/dir/", task: record.Task{ID: "77"}, want: body[:10], file: "-file_77",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Disposition", `attachment; filename="file_77.part"`)
				w.Write(body[:10])
			}},
		{name: "content-disposition naming the sidecar", path: "/dir/", task: record.Task{ID: "77"}, want: body[:10], file: "-file_77",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Disposition", `attachment; filename="file_77.part.meta"`)
				w.Write(body[:10])
			}},
		{name: "user agent and headers", path: "/h", want: body[:10], file: "-h",
			opts:    Options{Header: http.Header{"Authorization": {"Bearer x"}, "Range": {"bytes=5-"}}},
			handler: serve(body[:10]),
			check: func(t *testing.T, r *http.Request) {
				if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, "dl/") || !strings.Contains(ua, "github.com/dlkit/dl") {
					t.Errorf("User-Agent %q", ua)
				}
				if r.Header.Get("Authorization") != "Bearer x" {
					t.Errorf("configured header not sent")
				}
				if r.Header.Get("Range") != "" {
					t.Errorf("configured Range header sent on a fresh transfer")
				}
			}},
		{name: "custom user agent", path: "/h", want: body[:10], file: "-h", opts: Options{UserAgent: "me/1"}, handler: serve(body[:10]),
			check: func(t *testing.T, r *http.Request) {
				if ua := r.Header.Get("User-Agent"); ua != "me/1" {
					t.Errorf("User-Agent %q", ua)
				}
			}},
		{name: "fsync off", path: "/n", opts: Options{Fsync: false}, want: body, file: "-n", handler: serve(body)},
		{name: "flat", path: "/flat.bin", opts: Options{Layout: layout.Flat}, want: body[:10], file: "-flat.bin", handler: serve(body[:10])},
		{name: "max size not reached", path: "/m", opts: Options{MaxSize: int64(len(body))}, want: body, file: "-m", handler: serve(body)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c counter
			srv := httptest.NewServer(c.wrap(tt.handler))
			defer srv.Close()
			o := tt.opts
			if tt.name != "fsync off" {
				o.Fsync = true
			}
			f := newFetcher(t, o)
			task := tt.task
			if task.ID == "" {
				task.ID = "1"
			}
			task.URL = srv.URL + tt.path
			task.Token, task.Attempt = "tok", 2
			res := f.Fetch(context.Background(), task)
			checkDone(t, res, tt.want)
			if res.ID != task.ID || res.URL != task.URL || res.Token != "tok" || res.Attempt != 2 || res.HTTP != 200 {
				t.Errorf("result %+v does not carry the task's fields", res)
			}
			rel := f.o.Layout.Path(record.Task{ID: task.ID, URL: task.URL, Name: task.Name})
			if tt.file == "-report.pdf" {
				rel = f.o.Layout.Path(record.Task{ID: task.ID, URL: task.URL, Name: "report.pdf"})
			}
			if want := filepath.Join(f.o.Dir, rel); res.Path != want {
				t.Errorf("path %q, want %q", res.Path, want)
			}
			if !strings.HasSuffix(res.Path, tt.file) || !strings.HasPrefix(filepath.Base(res.Path), layout.Key(task)) {
				t.Errorf("path %q does not end in %q", res.Path, tt.file)
			}
			if got := files(t, f.o.Dir); len(got) != 1 {
				t.Errorf("download directory holds %v, want just the file", got)
			}
			if tt.check != nil {
				tt.check(t, c.last())
			}
		})
	}
}

// TestFetchExisting: a file at the final path is complete by construction
// and is not downloaded again, unless the task expects another checksum.
// With ExpectNew nothing looks before the download, but the file in place
// still stands (the rename finds it), unless it is not the expected one.
func TestFetchExisting(t *testing.T) {
	body := content(70000, 2)
	old := content(500, 3)
	tests := []struct {
		name      string
		expectNew bool
		onDisk    []byte
		expect    string
		want      []byte
		requests  int
	}{
		{"no expectation", false, old, "", old, 0},
		{"matching expectation", false, old, sha(old), old, 0},
		{"mismatch downloads again", false, old, sha(body), body, 1},
		{"empty file", false, []byte{}, "", []byte{}, 0},
		{"expect new: no expectation", true, old, "", old, 1},
		{"expect new: matching expectation", true, old, sha(old), old, 1},
		{"expect new: mismatch is replaced", true, old, sha(body), body, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c counter
			srv := httptest.NewServer(c.wrap(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
			defer srv.Close()
			f := newFetcher(t, Options{Fsync: true, ExpectNew: tt.expectNew})
			task := record.Task{ID: "9", URL: srv.URL + "/f", SHA256: tt.expect, Attempt: 1}
			final := filepath.Join(f.o.Dir, f.o.Layout.Path(task))
			os.MkdirAll(filepath.Dir(final), 0o755)
			if err := os.WriteFile(final, tt.onDisk, 0o644); err != nil {
				t.Fatal(err)
			}
			res := f.Fetch(context.Background(), task)
			checkDone(t, res, tt.want)
			if c.n() != tt.requests {
				t.Errorf("%d requests, want %d", c.n(), tt.requests)
			}
			if res.Attempt != 1 {
				t.Errorf("attempt %d, want 1", res.Attempt)
			}
		})
	}
}

// TestFinalPathNotARegularFile: a symbolic link (or a FIFO) planted at a
// task's final path, by anyone who can write the download directory, is
// never trusted as the finished file: dl does not read through it (which
// would report the target's bytes and sha256 as the task's, /etc/shadow's
// say, or another task's file), does not remove it, and fails the task for
// good, naming the path; with or without a look before the download, and
// whether or not the task expects a sha256 the target does not have.
func TestFinalPathNotARegularFile(t *testing.T) {
	body := content(5000, 17)
	secret := []byte("root:$6$not-for-you")
	type plant func(t *testing.T, f *Fetcher, final string) string // what the test checks stays
	link := func(target func(f *Fetcher) string) plant {
		return func(t *testing.T, f *Fetcher, final string) string {
			if err := os.Symlink(target(f), final); err != nil {
				t.Fatal(err)
			}
			return "link to " + target(f)
		}
	}
	victim := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(victim, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		plant  plant
		expect string // the task's sha256
	}{
		{"link outside", link(func(*Fetcher) string { return victim }), ""},
		{"link outside, its sha256 expected", link(func(*Fetcher) string { return victim }), sha(secret)},
		{"link outside, another sha256 expected", link(func(*Fetcher) string { return victim }), sha(body)},
		{"link to another task's file", link(func(f *Fetcher) string { return filepath.Join(f.o.Dir, "other.bin") }), ""},
		{"dangling link", link(func(f *Fetcher) string { return filepath.Join(f.o.Dir, "nothing") }), ""},
		{"FIFO", func(t *testing.T, f *Fetcher, final string) string {
			if err := syscall.Mkfifo(final, 0o644); err != nil {
				t.Fatal(err)
			}
			return "fifo"
		}, ""},
	}
	for _, tt := range tests {
		for _, expectNew := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, expect new %v", tt.name, expectNew), func(t *testing.T) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
				defer srv.Close()
				f := newFetcher(t, Options{Fsync: true, ExpectNew: expectNew})
				if err := os.WriteFile(filepath.Join(f.o.Dir, "other.bin"), secret, 0o644); err != nil {
					t.Fatal(err)
				}
				task := record.Task{ID: "1", URL: srv.URL + "/a.bin", SHA256: tt.expect}
				final := f.paths(task).final
				if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
					t.Fatal(err)
				}
				planted := tt.plant(t, f, final)
				got := make(chan record.Result, 1)
				go func() { got <- f.Fetch(context.Background(), task) }()
				var res record.Result
				select {
				case res = <-got:
				case <-time.After(30 * time.Second):
					t.Fatal("the fetch still waits on what is at the final path after 30s")
				}
				// Without a look first, a download the task's sha256 does
				// not check fails on that before its rename.
				mismatch := expectNew && tt.expect != "" && tt.expect != sha(body)
				if res.Outcome != record.Failed || res.Retryable ||
					!strings.Contains(res.Error, final) && !(mismatch && strings.Contains(res.Error, "does not match the expected")) {
					t.Errorf("got %+v; want a final failure naming %s", res, final)
				}
				if res.SHA256 == sha(secret) || res.Bytes == int64(len(secret)) {
					t.Errorf("the result reports the planted target's bytes: %+v", res)
				}
				fi, err := os.Lstat(final)
				switch {
				case err != nil:
					t.Errorf("%s (%s) is gone: %v", final, planted, err)
				case fi.Mode().IsRegular():
					t.Errorf("%s (%s) was replaced by a regular file", final, planted)
				case fi.Mode()&fs.ModeSymlink != 0:
					if target, _ := os.Readlink(final); "link to "+target != planted {
						t.Errorf("%s now links to %s, want %s", final, target, planted)
					}
				}
				if b, err := os.ReadFile(victim); err != nil || !bytes.Equal(b, secret) {
					t.Errorf("the file outside changed: %q, %v", b, err)
				}
				if left, _ := filepath.Glob(final + ".part*"); len(left) != 0 {
					t.Errorf("left behind: %v", left)
				}
			})
		}
	}
}

// TestFetchSameTaskTwice: a task delivered twice at once (a re-queued row
// whose first worker is still busy) must not have two writers on one file.
func TestFetchSameTaskTwice(t *testing.T) {
	body := content(100000, 4)
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body[:1000])
		w.(http.Flusher).Flush()
		select {
		case started <- struct{}{}:
		default:
		}
		<-release
		w.Write(body[1000:])
	}))
	defer srv.Close()
	f := newFetcher(t, Options{})
	task := record.Task{ID: "1", URL: srv.URL + "/same"}

	first := make(chan record.Result)
	go func() { first <- f.Fetch(context.Background(), task) }()
	<-started
	// The second delivery does not wait for the first (whose worker may be
	// paused for good): it downloads into a private part file and publishes
	// first; the first then finds the file in place and keeps it.
	second := make(chan record.Result)
	go func() { second <- f.Fetch(context.Background(), task) }()
	time.Sleep(50 * time.Millisecond) // let it reach the server and block too
	close(release)
	a, b := <-first, <-second
	checkDone(t, a, body)
	checkDone(t, b, body)
	if a.Path != b.Path {
		t.Errorf("two paths for one task: %s, %s", a.Path, b.Path)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(a.Path), ".dl-*")); len(left) != 0 {
		t.Errorf("private part files left: %v", left)
	}

	// Once the first is done, the same task is simply recognised.
	again := f.Fetch(context.Background(), task)
	checkDone(t, again, body)
}

// TestFetchConcurrent runs many transfers through one Fetcher, as dl-fetch
// does, and checks every file (run with -race).
func TestFetchConcurrent(t *testing.T) {
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = content(1000*i+1, uint64(i))
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if i%7 == 3 && r.URL.Query().Get("try") == "" {
			http.Redirect(w, r, r.URL.Path+"?try=1", http.StatusFound)
			return
		}
		w.Write(bodies[i])
	}))
	defer srv.Close()
	f := newFetcher(t, Options{Fsync: true, Retries: 1})
	var wg sync.WaitGroup
	results := make([]record.Result, len(bodies))
	sem := make(chan struct{}, 16)
	for i := range bodies {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = f.Fetch(context.Background(), record.Task{ID: strconv.Itoa(i), URL: fmt.Sprintf("%s/%d", srv.URL, i)})
		})
	}
	wg.Wait()
	for i, res := range results {
		checkDone(t, res, bodies[i])
	}
	if got := files(t, f.o.Dir); len(got) != len(bodies) {
		t.Errorf("%d files, want %d", len(got), len(bodies))
	}
}

// TestFetchSameNameDifferentURLs is the seed's bug: two URLs ending in the
// same file name must both be downloaded, each into its own file.
func TestFetchSameNameDifferentURLs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.URL.Path)
	}))
	defer srv.Close()
	f := newFetcher(t, Options{Layout: layout.Flat})
	a := f.Fetch(context.Background(), record.Task{ID: "1", URL: srv.URL + "/a/index.html"})
	b := f.Fetch(context.Background(), record.Task{ID: "2", URL: srv.URL + "/b/index.html"})
	checkDone(t, a, []byte("/a/index.html"))
	checkDone(t, b, []byte("/b/index.html"))
}

func TestFetchHTTPS(t *testing.T) {
	body := content(3000, 5)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case's handshake error
	srv.StartTLS()
	defer srv.Close()

	t.Run("trusted", func(t *testing.T) {
		f := newFetcher(t, Options{})
		f.transport.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
		checkDone(t, f.Fetch(context.Background(), record.Task{ID: "1", URL: srv.URL + "/s"}), body)
	})
	t.Run("untrusted certificate is final", func(t *testing.T) {
		f := newFetcher(t, Options{Retries: 3})
		res := f.Fetch(context.Background(), record.Task{ID: "1", URL: srv.URL + "/s"})
		if res.Outcome != record.Failed || res.Retryable || !strings.Contains(res.Error, "certificate") {
			t.Errorf("got %+v; want a final certificate failure", res)
		}
		if res.Attempt != 1 {
			t.Errorf("attempt %d; a final failure is not retried", res.Attempt)
		}
	})
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"zero", Options{}, true},
		{"negative timeout", Options{StallTimeout: -time.Second}, false},
		{"negative max size", Options{MaxSize: -1}, false},
		{"negative min free", Options{MinFree: -1}, false},
		{"negative retries", Options{Retries: -1}, false},
		{"unknown layout", Options{Layout: layout.Layout(9)}, false},
	}
	for _, tt := range tests {
		f, err := New(tt.o)
		if (err == nil) != tt.ok {
			t.Errorf("%s: New error %v", tt.name, err)
		}
		if err == nil {
			if f.o.Dir != "." || f.o.StallTimeout != defaultStallTimeout || f.o.ConnectTimeout != defaultConnectTimeout || f.o.MaxRedirects != defaultMaxRedirects {
				t.Errorf("%s: defaults not applied: %+v", tt.name, f.o)
			}
		}
	}
}

func TestUserAgent(t *testing.T) {
	if got, want := UserAgent("1.2.3"), "dl/1.2.3 (+https://github.com/dlkit/dl)"; got != want {
		t.Errorf("UserAgent = %q, want %q", got, want)
	}
	if got := UserAgent(""); !strings.HasPrefix(got, "dl/") {
		t.Errorf("UserAgent(\"\") = %q", got)
	}
}

// TestFetchDispositionNameKnown: a task whose file got its name from
// Content-Disposition is recognised on its next delivery, although its name
// could not be known before asking the server.
func TestFetchDispositionNameKnown(t *testing.T) {
	body := content(3000, 13)
	var c counter
	srv := httptest.NewServer(c.wrap(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Disposition", `attachment; filename="named.bin"`)
		w.Write(body)
	}))
	defer srv.Close()
	f := newFetcher(t, Options{})
	task := record.Task{ID: "1", URL: srv.URL + "/"}
	first := f.Fetch(context.Background(), task)
	checkDone(t, first, body)
	second := f.Fetch(context.Background(), task)
	checkDone(t, second, body)
	if second.Path != first.Path || !strings.HasSuffix(first.Path, "-named.bin") {
		t.Errorf("paths %q then %q", first.Path, second.Path)
	}
	if got := files(t, f.o.Dir); len(got) != 1 {
		t.Errorf("download directory holds %v", got)
	}
}

// TestFetchShardNameTakenByAFile: the original design's download directory,
// which dl may share (README, migration), holds files named after the URLs'
// basenames, "123" for ".../items/123". One that takes a shard's name must not
// fail every task of that shard: their files go into the download directory
// itself, named as --layout flat names them, and are found there again.
func TestFetchShardNameTakenByAFile(t *testing.T) {
	body := content(3000, 14)
	tests := []struct {
		name        string
		path        string // request path on the server
		disposition string // Content-Disposition header
		expectNew   bool
	}{
		{name: "url name", path: "/items/x.bin"},
		{name: "url name, queue rows", path: "/items/x.bin", expectNew: true},
		{name: "content-disposition name", path: "/items/", disposition: `attachment; filename="named.bin"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c counter
			srv := httptest.NewServer(c.wrap(func(w http.ResponseWriter, r *http.Request) {
				if tt.disposition != "" {
					w.Header().Set("Content-Disposition", tt.disposition)
				}
				w.Write(body)
			}))
			defer srv.Close()
			dir := t.TempDir()
			task := record.Task{ID: "1", URL: srv.URL + tt.path}
			seed := filepath.Join(dir, layout.Key(task)[:layout.ShardLen])
			if err := os.WriteFile(seed, []byte("the original's file"), 0o644); err != nil {
				t.Fatal(err)
			}
			f := newFetcher(t, Options{Dir: dir, Fsync: true, ExpectNew: tt.expectNew})
			res := f.Fetch(context.Background(), task)
			checkDone(t, res, body)
			if filepath.Dir(res.Path) != dir || !strings.HasPrefix(filepath.Base(res.Path), layout.Key(task)+"-") {
				t.Errorf("path %q; want %s/%s-…", res.Path, dir, layout.Key(task))
			}
			if b, err := os.ReadFile(seed); err != nil || string(b) != "the original's file" {
				t.Errorf("the original's file now holds %q, %v", b, err)
			}
			// A later run (another process) finds the file where it went.
			asked := c.n()
			again := newFetcher(t, Options{Dir: dir}).Fetch(context.Background(), task)
			checkDone(t, again, body)
			if again.Path != res.Path {
				t.Errorf("found again at %q; want %q", again.Path, res.Path)
			}
			if tt.disposition == "" && c.n() != asked {
				t.Errorf("%d more requests for a file already done", c.n()-asked)
			}
		})
	}
}

// TestFetchLocalFailures: trouble with our own disk is never the URL's
// fault, so it is retryable, except a final path that cannot be a file. A
// download directory that is a file (or lies below one), or a symbolic link
// to a directory that does not exist (a disk not mounted), fails every task
// alike, so it is the worker's failure, as a full disk is: Local, no
// attempt charged, no request, whether the tasks are queue rows or a list;
// otherwise a worker would run through the whole queue failing each row.
func TestFetchLocalFailures(t *testing.T) {
	var c counter
	srv := httptest.NewServer(c.wrap(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x")) }))
	defer srv.Close()
	task := record.Task{ID: "1", URL: srv.URL + "/f", Attempt: 2}
	tests := []struct {
		name      string
		setup     func(t *testing.T, dir string, f *Fetcher)
		expectNew bool
		retryable bool
		local     bool
		errWant   string
	}{
		{"download dir is a file", func(t *testing.T, dir string, f *Fetcher) {
			os.Remove(dir)
			os.WriteFile(dir, nil, 0o644)
		}, false, true, true, "not a directory"},
		{"download dir is a file, queue rows", func(t *testing.T, dir string, f *Fetcher) {
			os.Remove(dir)
			os.WriteFile(dir, nil, 0o644)
		}, true, true, true, "not a directory"},
		{"a parent of the download dir is a file", func(t *testing.T, dir string, f *Fetcher) {
			os.RemoveAll(filepath.Dir(dir))
			os.WriteFile(filepath.Dir(dir), nil, 0o644)
		}, true, true, true, "not a directory"},
		{"download dir is a link to a missing directory", func(t *testing.T, dir string, f *Fetcher) {
			os.Remove(dir)
			os.Symlink(filepath.Join(filepath.Dir(dir), "unmounted", "dl"), dir)
		}, false, true, true, "does not exist"},
		{"download dir is a link to a missing directory, queue rows", func(t *testing.T, dir string, f *Fetcher) {
			os.Remove(dir)
			os.Symlink(filepath.Join(filepath.Dir(dir), "unmounted", "dl"), dir)
		}, true, true, true, "does not exist"},
		{"a parent of the download dir is a link to a missing directory", func(t *testing.T, dir string, f *Fetcher) {
			os.RemoveAll(filepath.Dir(dir))
			os.Symlink(filepath.Join(filepath.Dir(filepath.Dir(dir)), "unmounted"), filepath.Dir(dir))
		}, true, true, true, "does not exist"},
		{"final path is a directory", func(t *testing.T, dir string, f *Fetcher) {
			os.MkdirAll(filepath.Join(dir, f.o.Layout.Path(task)), 0o755)
		}, false, false, false, "is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "p", "dl")
			os.MkdirAll(dir, 0o755)
			f := newFetcher(t, Options{Dir: dir, Retries: 2, ExpectNew: tt.expectNew})
			tt.setup(t, dir, f)
			asked := c.n()
			res := f.Fetch(context.Background(), task)
			if res.Outcome != record.Failed || res.Retryable != tt.retryable || res.Local != tt.local || !strings.Contains(res.Error, tt.errWant) {
				t.Errorf("got %+v; want failure %q, retryable %v, local %v", res, tt.errWant, tt.retryable, tt.local)
			}
			if tt.local && (res.Attempt != task.Attempt || c.n() != asked) {
				t.Errorf("attempt %d and %d requests; want attempt %d (none charged) and no request", res.Attempt, c.n()-asked, task.Attempt)
			}
		})
	}
}

// TestFetchDiskRefused: a full or read-only download directory is the
// worker's failure, not the task's: the result is Local, charges no attempt
// for it (a 503 before it in the same call still counts), is not retried in
// process, and leaves no part file taking space.
func TestFetchDiskRefused(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 && r.URL.Query().Get("first") == "503" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(content(n, 7))
	}))
	defer srv.Close()
	tests := []struct {
		name     string
		size     int    // body bytes
		first503 bool   // the origin answers the first request with a 503
		readOnly bool   // the disk is mounted read-only
		want     string // in the error; "" for a done result
		requests int64  // the origin saw
		charged  int    // failed attempts the result adds to the task's
	}{
		{"room enough", 64 << 10, false, false, "", 1, 0},
		{"full during the body", 512 << 10, false, false, "no space left on device", 1, 0},
		{"full after a 503", 512 << 10, true, false, "no space left on device", 2, 1},
		{"read-only", 4 << 10, false, true, "read-only file system", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests.Store(0)
			disk := testenv.SmallDisk(t, 256<<10, tt.readOnly)
			f := newFetcher(t, Options{Dir: disk, Fsync: true, Retries: 3})
			task := record.Task{ID: "1", URL: fmt.Sprintf("%s/f?n=%d", srv.URL, tt.size), Attempt: 2}
			if tt.first503 {
				task.URL += "&first=503"
			}
			res := f.Fetch(context.Background(), task)
			if got := requests.Load(); got != tt.requests {
				t.Errorf("origin saw %d requests; want %d (no retry in process)", got, tt.requests)
			}
			if tt.want == "" {
				checkDone(t, res, content(tt.size, 7))
				if res.Local {
					t.Error("a done result is marked Local")
				}
				return
			}
			if res.Outcome != record.Failed || !res.Local || !res.Retryable || res.Attempt != task.Attempt+tt.charged ||
				!strings.Contains(res.Error, tt.want) || !strings.Contains(res.Error, disk) {
				t.Fatalf("got %+v; want a Local, retryable failure naming %s and %q, attempt %d", res, disk, tt.want, task.Attempt+tt.charged)
			}
			filepath.WalkDir(disk, func(path string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					t.Errorf("%s left on the full disk", path)
				}
				return nil
			})
		})
	}
}

// TestFetchMinFree: below the floor of free space a task fails as on a full
// disk before it asks the origin for anything; above it, it downloads.
func TestFetchMinFree(t *testing.T) {
	var requests atomic.Int64
	body := content(200<<10, 9)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Write(body)
	}))
	defer srv.Close()
	disk := testenv.SmallDisk(t, 1<<20, false)
	f := newFetcher(t, Options{Dir: filepath.Join(disk, "not-yet-made"), MinFree: 900 << 10, Retries: 3})
	f.room.every = 0 // look at the free space for every task
	checkDone(t, f.Fetch(context.Background(), record.Task{ID: "1", URL: srv.URL + "/a"}), body)
	// 1 MiB less 200 KiB is below the floor of 900 KiB.
	res := f.Fetch(context.Background(), record.Task{ID: "2", URL: srv.URL + "/b", Attempt: 1})
	if res.Outcome != record.Failed || !res.Local || res.Attempt != 1 ||
		!strings.Contains(res.Error, "below --min-free 0.9 MiB") || !strings.Contains(res.Error, "no space left on device") {
		t.Fatalf("got %+v; want a Local failure naming the floor", res)
	}
	if n := requests.Load(); n != 1 {
		t.Fatalf("origin saw %d requests; want 1 (none below the floor)", n)
	}
}

// TestFetchDirectoryRemoved: the Fetcher remembers directories it made, and
// makes them again when they disappear behind its back.
func TestFetchDirectoryRemoved(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x")) }))
	defer srv.Close()
	f := newFetcher(t, Options{Fsync: true})
	task := record.Task{ID: "1", URL: srv.URL + "/f"}
	checkDone(t, f.Fetch(context.Background(), task), []byte("x"))
	if err := os.RemoveAll(f.o.Dir); err != nil {
		t.Fatal(err)
	}
	checkDone(t, f.Fetch(context.Background(), task), []byte("x"))
}
