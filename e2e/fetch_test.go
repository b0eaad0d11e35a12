package e2e

// The downloader's promises (issue 4), each checked against the real
// dl-fetch binary and a fault-injecting origin on loopback. No database or
// queue is involved: dl-fetch takes URL arguments or task lines on stdin,
// as a person running it by hand does.

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/layout"
	"github.com/dlkit/dl/internal/origin"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/testenv"
)

// fetched is what one dl-fetch run produced.
type fetched struct {
	results []record.Result
	stderr  string
	err     error // the exit error; nil for exit 0
	took    time.Duration
}

// fetchRun runs dl-fetch with args, feeding stdin (may be empty), and
// parses every result line. A run that outlives ctx fails the test with
// dl-fetch's stack: that is a hang.
func fetchRun(t *testing.T, ctx context.Context, stdin string, args ...string) fetched {
	t.Helper()
	var in *strings.Reader
	if stdin != "" {
		in = strings.NewReader(stdin)
	}
	start := time.Now()
	var stdout string
	var out fetched
	if in != nil {
		stdout, out.stderr, out.err = testenv.Run(t, ctx, filepath.Join(testenv.Binaries(t), "dl-fetch"), nil, in, args...)
	} else {
		stdout, out.stderr, out.err = testenv.Run(t, ctx, filepath.Join(testenv.Binaries(t), "dl-fetch"), nil, nil, args...)
	}
	out.took = time.Since(start)
	for _, l := range lines(stdout) {
		var r record.Result
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("result line %q: %v\nstderr:\n%s", l, err, out.stderr)
		}
		out.results = append(out.results, r)
	}
	return out
}

// one returns the single result of a run of one task.
func (f fetched) one(t *testing.T) record.Result {
	t.Helper()
	if len(f.results) != 1 {
		t.Fatalf("%d result lines, want 1; stderr:\n%s", len(f.results), f.stderr)
	}
	return f.results[0]
}

// done asserts a done result whose file holds exactly want (a sha256).
func (f fetched) done(t *testing.T, wantSum string, wantBytes int64) record.Result {
	t.Helper()
	r := f.one(t)
	if r.Outcome != record.Done || f.err != nil {
		t.Fatalf("result %+v, exit %v; want done; stderr:\n%s", r, f.err, f.stderr)
	}
	if r.SHA256 != wantSum || r.Bytes != wantBytes {
		t.Fatalf("result says %d bytes sha256 %s, want %d %s", r.Bytes, r.SHA256, wantBytes, wantSum)
	}
	if got := sumFile(t, r.Path); got != wantSum {
		t.Fatalf("file %s has sha256 %s, want %s", r.Path, got, wantSum)
	}
	return r
}

// failed asserts one failed result whose error contains want, a failing
// exit status, and no file under the task's final name.
func (f fetched) failed(t *testing.T, want string) record.Result {
	t.Helper()
	r := f.one(t)
	if r.Outcome != record.Failed || r.Error == "" || !strings.Contains(r.Error, want) {
		t.Fatalf("result %+v; want failed with %q; stderr:\n%s", r, want, f.stderr)
	}
	if r.Path != "" || r.SHA256 != "" || r.Bytes != 0 {
		t.Fatalf("failed result claims a file: %+v", r)
	}
	if f.err == nil {
		t.Fatalf("dl-fetch exited 0 after a failed download")
	}
	return r
}

// base are the flags of every run: fast (no fsync) and no in-process
// retries, so each run is one attempt unless a test says otherwise.
func base(dir string, more ...string) []string {
	return append([]string{"--dir", dir, "--fsync=false", "--retries", "0"}, more...)
}

// finalPath is where dl-fetch puts a URL given as an argument or a bare
// line (its id is the URL) in the default layout.
func finalPath(dir, u string) string {
	return filepath.Join(dir, layout.Sharded.Path(record.Task{ID: u, URL: u}))
}

// about tells whether the origin sent want bytes for a request. The
// handler of an earlier run's request may still count a last buffer
// after that run's process is gone, hence the slack.
func about(sent, want int64) bool {
	return sent >= want && sent <= want+1<<20
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

func inside(t *testing.T, dir, path string) {
	t.Helper()
	rel, err := filepath.Rel(dir, path)
	if err != nil || !filepath.IsLocal(rel) {
		t.Fatalf("%s is not inside %s", path, dir)
	}
}

// regularFiles lists the files under dir, relative.
func regularFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// watched is an origin behind a recorder of what dl-fetch sends it. Paths
// under /files/slow/ are sent in 4 KiB pieces with a pause after each: a
// transfer that is slow but never stalls.
type watched struct {
	*origin.Origin
	base  string
	conns atomic.Int64 // TCP connections accepted

	mu       sync.Mutex
	headers  []http.Header
	inFlight int
	peak     int
	gate     func() // called with each request before it is served; may block
}

const slowPiece, slowPause = 4 << 10, 5 * time.Millisecond

func startWatched(t *testing.T) *watched {
	t.Helper()
	w := &watched{Origin: origin.New()}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.headers = append(w.headers, r.Header.Clone())
		w.inFlight++
		w.peak = max(w.peak, w.inFlight)
		gate := w.gate
		w.mu.Unlock()
		defer func() {
			w.mu.Lock()
			w.inFlight--
			w.mu.Unlock()
		}()
		if gate != nil {
			gate()
		}
		if strings.HasPrefix(r.URL.Path, origin.FilesPrefix+"slow/") {
			rw = paced{rw}
		}
		w.Origin.ServeHTTP(rw, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			w.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	w.base = srv.URL
	return w
}

func (w *watched) lastHeader() http.Header {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.headers[len(w.headers)-1]
}

func (w *watched) peakInFlight() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak
}

type paced struct{ http.ResponseWriter }

func (p paced) Unwrap() http.ResponseWriter { return p.ResponseWriter }

func (p paced) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		k := min(len(b), slowPiece)
		m, err := p.ResponseWriter.Write(b[:k])
		n += m
		if err != nil {
			return n, err
		}
		if err := http.NewResponseController(p.ResponseWriter).Flush(); err != nil {
			return n, err
		}
		time.Sleep(slowPause)
		b = b[k:]
	}
	return n, nil
}

// TestFetchResumeAfterSIGKILL: dl-fetch killed at about half of a 256 MiB
// file; the next run resumes, and the origin sends at most 55% of the file
// again. The first run is slowed by --limit-rate so it can be caught in the
// middle.
func TestFetchResumeAfterSIGKILL(t *testing.T) {
	t.Parallel()
	o, base0 := testenv.StartOrigin(t)
	dir := t.TempDir()
	const name, size = "big/resume.iso", 256 << 20
	u := origin.URL(base0, name, size)
	part := finalPath(dir, u) + ".part"

	r := testenv.Start(t, bg, nil, testenv.Proc{Bin: filepath.Join(testenv.Binaries(t), "dl-fetch"),
		Args: base(dir, "--limit-rate", "64M", u)})
	testenv.Eventually(t, 90*time.Second, 5*time.Millisecond, func() bool { return fileSize(part) >= size/2 }, "half of the file on disk")
	r.Signal(syscall.SIGKILL)
	if res := r.Wait(); res.Procs[0].Code != -1 || res.Stdout != "" {
		t.Fatalf("dl-fetch was not killed in the middle:\n%s", res)
	}
	have := fileSize(part)
	if have < size/2 || have >= size || fileSize(finalPath(dir, u)) != -1 {
		t.Fatalf("after SIGKILL: part file %d bytes, final file %d; want a part of at least half", have, fileSize(finalPath(dir, u)))
	}

	before := o.Bytes(origin.Path(name))
	got := fetchRun(t, bg, "", base(dir, u)...)
	res := got.done(t, origin.Sum(name, size), size)
	sent := o.Bytes(origin.Path(name)) - before
	t.Logf("killed at %d of %d bytes (%.1f%%); the resume fetched %d (%.1f%%)", have, size, 100*float64(have)/size, sent, 100*float64(sent)/size)
	if sent > size*55/100 {
		t.Errorf("the origin sent %d bytes (%.1f%%) for the resume, want at most 55%%", sent, 100*float64(sent)/size)
	}
	if res.HTTP != http.StatusPartialContent || !about(sent, size-have) {
		t.Errorf("resume: status %d, %d bytes sent for %d missing", res.HTTP, sent, size-have)
	}
	if fileSize(part) != -1 || fileSize(part+".meta") != -1 {
		t.Error("part file or its meta left beside the done file")
	}
}

// partial leaves a part file of u in dir by a run that --max-time cuts,
// and returns its size.
func partial(t *testing.T, dir, u string, size int64) int64 {
	t.Helper()
	got := fetchRun(t, bg, "", base(dir, "--max-time", "400ms", "--limit-rate", "2M", u)...)
	got.failed(t, "max time")
	have := fileSize(finalPath(dir, u) + ".part")
	if have <= 0 || have >= size {
		t.Fatalf("part file of %d bytes after a cut run, want some of %d", have, size)
	}
	return have
}

// TestFetchResumeRestarts: a resume continues only the same bytes. A
// server that ignores the range (200), and a file republished in between
// (its ETag, or only its Last-Modified, changed) both make dl-fetch start
// over, and the file is right either way.
func TestFetchResumeRestarts(t *testing.T) {
	t.Parallel()
	const size = 8 << 20
	tests := []struct {
		name   string
		knobs  []string
		bump   bool
		status int
		whole  bool // the resume fetches the whole file again
	}{
		{name: "same file resumes", status: 206},
		{name: "range ignored", knobs: []string{"norange=1"}, status: 200, whole: true},
		{name: "etag changed", bump: true, status: 200, whole: true},
		{name: "last-modified changed", knobs: []string{"noetag=1"}, bump: true, status: 200, whole: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, base0 := testenv.StartOrigin(t)
			dir := t.TempDir()
			name := "restart/" + strings.ReplaceAll(tt.name, " ", "-") + ".bin"
			u := origin.URL(base0, name, size, tt.knobs...)
			have := partial(t, dir, u, size)
			key := name
			if tt.bump {
				key = o.Bump(name)
			}
			before := o.Bytes(origin.Path(name))
			res := fetchRun(t, bg, "", base(dir, u)...).done(t, origin.Sum(key, size), size)
			sent := o.Bytes(origin.Path(name)) - before
			want := size - have
			if tt.whole {
				want = size
			}
			if res.HTTP != tt.status || !about(sent, want) {
				t.Errorf("status %d after sending %d bytes; want %d after %d (part had %d)", res.HTTP, sent, tt.status, want, have)
			}
		})
	}
}

// TestFetchCleanRemovesLeftoverParts: the part a cut download keeps for a
// resume goes with dl-fetch clean once it is old enough, sidecar and all,
// and nothing else does; --dry-run only names it.
func TestFetchCleanRemovesLeftoverParts(t *testing.T) {
	t.Parallel()
	const size = 8 << 20
	_, base0 := testenv.StartOrigin(t)
	dir := t.TempDir()
	cut, whole := origin.URL(base0, "clean/cut.bin", size), origin.URL(base0, "clean/whole.bin", 4096)
	fetchRun(t, bg, "", base(dir, whole)...).done(t, origin.Sum("clean/whole.bin", 4096), 4096)
	partial(t, dir, cut, size)
	part := finalPath(dir, cut) + ".part"
	clean := func(args ...string) []string {
		t.Helper()
		stdout, stderr, err := testenv.Run(t, bg, filepath.Join(testenv.Binaries(t), "dl-fetch"), nil, nil, append([]string{"clean", "--dir", dir}, args...)...)
		if err != nil {
			t.Fatalf("dl-fetch clean %q: %v\n%s", args, err, stderr)
		}
		return lines(stdout)
	}
	if got := clean("--older-than", "1h"); len(got) != 0 {
		t.Fatalf("cleaned a part written a moment ago: %q", got)
	}
	old := time.Now().Add(-48 * time.Hour)
	for _, p := range []string{part, part + ".meta"} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	before := regularFiles(t, dir)
	if got := clean("--older-than", "24h", "--dry-run"); len(got) != 1 || got[0] != part {
		t.Fatalf("dry run named %q, want [%s]", got, part)
	}
	if after := regularFiles(t, dir); !slices.Equal(before, after) {
		t.Fatalf("a dry run changed the directory: %q, then %q", before, after)
	}
	if got := clean("--older-than", "24h"); len(got) != 1 || got[0] != part {
		t.Fatalf("cleaned %q, want [%s]", got, part)
	}
	rel, _ := filepath.Rel(dir, finalPath(dir, whole))
	if got, want := regularFiles(t, dir), []string{rel}; !slices.Equal(got, want) {
		t.Fatalf("left %q, want %q", got, want)
	}
	fetchRun(t, bg, "", base(dir, cut)...).done(t, origin.Sum("clean/cut.bin", size), size)
}

// TestFetchSharedDirectory: workers (separate processes) sharing a
// download directory never write one file together, and whichever takes a
// task up next finds the part file another left and resumes it; once done,
// the file is recognised without a request.
func TestFetchSharedDirectory(t *testing.T) {
	t.Parallel()
	o, base0 := testenv.StartOrigin(t)
	dir := t.TempDir()
	const name, size = "shared/data.tar", 4 << 20
	task := fmt.Sprintf(`{"id":"42","url":%q}`+"\n", origin.URL(base0, name, size))
	path := filepath.Join(dir, layout.Sharded.Path(record.Task{ID: "42", URL: origin.URL(base0, name, size)}))
	bin := filepath.Join(testenv.Binaries(t), "dl-fetch")

	a := testenv.Start(t, bg, strings.NewReader(task), testenv.Proc{Bin: bin, Args: base(dir, "--limit-rate", "1M", "-")})
	testenv.Eventually(t, 60*time.Second, 5*time.Millisecond, func() bool { return fileSize(path+".part") >= 256<<10 }, "worker A under way")

	// B does not wait for A, which may never finish (paused, cut off): it
	// downloads into a private part file and publishes the file.
	b := fetchRun(t, bg, task, base(dir, "--concurrency", "3", "-")...).done(t, origin.Sum(name, size), size)
	if b.Path != path {
		t.Errorf("worker B published %s, want %s", b.Path, path)
	}

	a.Signal(syscall.SIGKILL)
	a.Wait()
	have := fileSize(path + ".part")
	if have <= 0 || have >= size {
		t.Fatalf("worker A left %d bytes, want part of %d", have, size)
	}

	// A file in place is recognised without a request.
	reqs := o.Requests(origin.Path(name))
	d := fetchRun(t, bg, task, base(dir, "-")...).done(t, origin.Sum(name, size), size)
	if o.Requests(origin.Path(name)) != reqs || d.HTTP != 0 || d.Path != path {
		t.Errorf("worker D made a request for a file in place (result %+v)", d)
	}

	// Without it (an operator removed it), the next worker resumes A's part.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	before := o.Bytes(origin.Path(name))
	c := fetchRun(t, bg, task, base(dir, "-")...).done(t, origin.Sum(name, size), size)
	if sent := o.Bytes(origin.Path(name)) - before; c.HTTP != 206 || !about(sent, size-have) || c.Path != path {
		t.Errorf("worker C: status %d, %d bytes sent for %d missing, path %s", c.HTTP, sent, size-have, c.Path)
	}
}

// TestFetchStallTimeout: a stall is cut after --stall-timeout, a transfer
// slower than that in total but always moving is not, and neither is one
// slowed by our own --limit-rate.
func TestFetchStallTimeout(t *testing.T) {
	t.Parallel()
	w := startWatched(t)
	dir := t.TempDir()
	stall := []string{"--stall-timeout", "400ms"}

	t.Run("trickle", func(t *testing.T) {
		got := fetchRun(t, bg, "", base(dir, append(stall, origin.URL(w.base, "trickle.bin", 1<<20, "trickle=50ms"))...)...)
		if r := got.failed(t, "stalled"); !r.Retryable {
			t.Errorf("a stall is worth another try later: %+v", r)
		}
	})
	t.Run("silent", func(t *testing.T) {
		got := fetchRun(t, bg, "", base(dir, append(stall, origin.URL(w.base, "silent.bin", 1000, "delay=1m"))...)...)
		got.failed(t, "stalled: 0 bytes in 400ms")
	})
	t.Run("slow but moving", func(t *testing.T) {
		const size = 1 << 20
		got := fetchRun(t, bg, "", base(dir, append(stall, origin.URL(w.base, "slow/moving.bin", size))...)...)
		got.done(t, origin.Sum("slow/moving.bin", size), size)
		// The pauses alone add up to more than three stall timeouts.
		if floor := time.Duration(size/slowPiece) * slowPause; got.took < floor {
			t.Errorf("took %v; the pacing was not applied (want at least %v)", got.took, floor)
		}
	})
	t.Run("slowed by limit-rate", func(t *testing.T) {
		const size = 512 << 10
		got := fetchRun(t, bg, "", base(dir, "--stall-timeout", "200ms", "--limit-rate", "256K", origin.URL(w.base, "limited.bin", size))...)
		got.done(t, origin.Sum("limited.bin", size), size)
		// The limiter lets the first 32 KiB through at once, then paces.
		if floor := time.Duration(float64(size-32<<10) / (256 << 10) * float64(time.Second)); got.took < floor {
			t.Errorf("took %v, faster than --limit-rate allows (%v)", got.took, floor)
		}
	})
}

// TestFetchMaxSize: refused from Content-Length before the body is read,
// and cut while streaming a body of unknown length; a file of exactly the
// limit is fine.
func TestFetchMaxSize(t *testing.T) {
	t.Parallel()
	o, base0 := testenv.StartOrigin(t)
	dir := t.TempDir()

	got := fetchRun(t, bg, "", base(dir, "--max-size", "1M", origin.URL(base0, "huge.iso", 1<<30))...)
	if r := got.failed(t, "size 1073741824 exceeds max size 1048576"); r.Retryable || r.HTTP != 200 {
		t.Errorf("a file too big stays too big: %+v", r)
	}
	if sent := o.Bytes(origin.Path("huge.iso")); sent > 64<<20 {
		t.Errorf("the origin sent %d bytes of a file refused by its Content-Length", sent)
	}

	got = fetchRun(t, bg, "", base(dir, "--max-size", "1M", origin.URL(base0, "endless.bin", 0, "endless=1"))...)
	got.failed(t, "body exceeds max size 1048576")

	got = fetchRun(t, bg, "", base(dir, "--max-size", "1M", origin.URL(base0, "exact.bin", 1<<20))...)
	got.done(t, origin.Sum("exact.bin", 1<<20), 1<<20)
	if files := regularFiles(t, dir); len(files) != 1 {
		t.Errorf("download directory holds %v; want only exact.bin", files)
	}
}

// TestFetchRedirects: up to --max-redirects are followed, a loop or a
// longer chain fails for good, 0 follows none.
func TestFetchRedirects(t *testing.T) {
	t.Parallel()
	_, base0 := testenv.StartOrigin(t)
	dir := t.TempDir()
	got := fetchRun(t, bg, "", base(dir, "--max-redirects", "3", origin.URL(base0, "r3.bin", 5000, "redirect=3"))...)
	got.done(t, origin.Sum("r3.bin", 5000), 5000)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-redirects", "3", origin.URL(base0, "r4.bin", 5000, "redirect=4")}, "too many redirects (limit 3)"},
		{[]string{origin.URL(base0, "loop.bin", 5000, "loop=1")}, "too many redirects (limit 10)"},
		{[]string{"--max-redirects", "0", origin.URL(base0, "r1.bin", 5000, "redirect=1")}, "too many redirects (limit 0)"},
	} {
		r := fetchRun(t, bg, "", base(dir, tc.args...)...).failed(t, tc.want)
		if r.Retryable || r.HTTP != http.StatusFound {
			t.Errorf("%v: %+v; want a final failure with status 302", tc.args, r)
		}
	}
}

// TestFetchSchemeAfterRedirect: a redirect may lead only to http or https.
func TestFetchSchemeAfterRedirect(t *testing.T) {
	t.Parallel()
	_, base0 := testenv.StartOrigin(t)
	targets := map[string]string{
		"/file":   "file:///etc/passwd",
		"/ftp":    "ftp://127.0.0.1:21/x",
		"/js":     "javascript:alert(1)",
		"/gopher": "gopher://127.0.0.1:70/x",
		"/http":   origin.URL(base0, "fine.bin", 3000),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", targets[r.URL.Path])
		w.WriteHeader(http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	for path, target := range targets {
		got := fetchRun(t, bg, "", base(dir, srv.URL+path)...)
		if path == "/http" {
			got.done(t, origin.Sum("fine.bin", 3000), 3000)
			continue
		}
		if r := got.failed(t, "scheme must be http or https"); r.Retryable {
			t.Errorf("redirect to %s: %+v; want a final failure", target, r)
		}
	}
	if files := regularFiles(t, dir); len(files) != 1 {
		t.Errorf("download directory holds %v; want only fine.bin", files)
	}
}

// TestFetchGzipStoredAsSent: a gzip body is stored as the server sent it,
// and dl-fetch asked for no encoding.
func TestFetchGzipStoredAsSent(t *testing.T) {
	t.Parallel()
	w := startWatched(t)
	dir := t.TempDir()
	const name, size = "logs/app.log", 300000
	res := fetchRun(t, bg, "", base(dir, origin.URL(w.base, name, size, "gzip=1"))...).one(t)
	want := origin.GzipSum(name, size)
	if res.Outcome != record.Done || res.SHA256 != want || sumFile(t, res.Path) != want {
		t.Fatalf("result %+v; want the gzip bytes (sha256 %s) stored as sent", res, want)
	}
	if ae := w.lastHeader().Get("Accept-Encoding"); ae != "identity" {
		t.Errorf("Accept-Encoding %q, want identity", ae)
	}
}

// TestFetchNames: the sharded layout by default and the flat one on
// request, a sanitised Content-Disposition name, task names that try to
// escape or are too long — every file inside the download directory with
// a name a person recognises.
func TestFetchNames(t *testing.T) {
	t.Parallel()
	_, base0 := testenv.StartOrigin(t)
	u := origin.URL(base0, "docs/report.pdf", 2000)
	task := record.Task{ID: u, URL: u}
	key := layout.Key(task)

	dir := t.TempDir()
	r := fetchRun(t, bg, "", base(dir, u)...).done(t, origin.Sum("docs/report.pdf", 2000), 2000)
	if want := filepath.Join(dir, key[:3], key+"-report.pdf"); r.Path != want {
		t.Errorf("sharded path %s, want %s", r.Path, want)
	}
	flat := t.TempDir()
	r = fetchRun(t, bg, "", base(flat, "--layout", "flat", u)...).done(t, origin.Sum("docs/report.pdf", 2000), 2000)
	if want := filepath.Join(flat, key+"-report.pdf"); r.Path != want {
		t.Errorf("flat path %s, want %s", r.Path, want)
	}

	cd := origin.URL(base0, "attach/", 1000, "cd="+url.QueryEscape("../../etc/evil\x1b[2J\nname.txt"))
	long := origin.URL(base0, "long.txt", 10)
	in := strings.Join([]string{
		cd,
		fmt.Sprintf(`{"id":"trav","url":%q,"name":"../../../../tmp/escape"}`, long),
		fmt.Sprintf(`{"id":"long","url":%q,"name":%q}`, long, strings.Repeat("n", 400)+".txt"),
		fmt.Sprintf(`{"id":"dots","url":%q,"name":".."}`, long),
		base0 + "/files/..%2F..%2Fup.bin?size=10",
	}, "\n") + "\n"
	got := fetchRun(t, bg, in, base(dir, "-")...)
	if len(got.results) != 5 {
		t.Fatalf("%d results, want 5; stderr:\n%s", len(got.results), got.stderr)
	}
	for _, r := range got.results {
		if r.Outcome != record.Done {
			t.Errorf("%s: %s", r.ID, r.Error)
			continue
		}
		inside(t, dir, r.Path)
		b := filepath.Base(r.Path)
		if len(b) > layout.MaxName || strings.ContainsAny(b, "\x1b\n/") || strings.HasPrefix(b, ".") {
			t.Errorf("%s: unsafe file name %q", r.ID, b)
		}
		switch r.ID {
		case cd:
			if !strings.HasSuffix(b, "-evil_[2J_name.txt") {
				t.Errorf("Content-Disposition name: %q", b)
			}
		case "long":
			if !strings.HasSuffix(b, ".txt") || len(b) > layout.MaxName-layout.SuffixRoom {
				t.Errorf("long name: %q (%d bytes)", b, len(b))
			}
		}
	}
}

// TestFetchCompleteFileInPlace: a file already downloaded is reported with
// its size and sha256 and not fetched again.
func TestFetchCompleteFileInPlace(t *testing.T) {
	t.Parallel()
	o, base0 := testenv.StartOrigin(t)
	dir := t.TempDir()
	const name, size = "iso/debian.iso", 3 << 20
	u := origin.URL(base0, name, size)
	first := fetchRun(t, bg, "", base(dir, u)...).done(t, origin.Sum(name, size), size)
	reqs := o.Requests(origin.Path(name))
	again := fetchRun(t, bg, "", base(dir, u)...).done(t, origin.Sum(name, size), size)
	if o.Requests(origin.Path(name)) != reqs || again.Path != first.Path || again.HTTP != 0 {
		t.Errorf("second run made a request or moved the file: %+v", again)
	}
}

// TestFetchExpectedChecksum: a mismatch fails the task for good and
// removes the bytes; a match is done.
func TestFetchExpectedChecksum(t *testing.T) {
	t.Parallel()
	_, base0 := testenv.StartOrigin(t)
	dir := t.TempDir()
	const name, size = "sum/checked.bin", 2 << 20
	u := origin.URL(base0, name, size)
	bad := fmt.Sprintf(`{"id":"1","url":%q,"sha256":%q}`+"\n", u, strings.Repeat("ab", 32))
	r := fetchRun(t, bg, bad, base(dir, "-")...).failed(t, "does not match the expected")
	if r.Retryable {
		t.Errorf("a checksum mismatch is final: %+v", r)
	}
	if files := regularFiles(t, dir); len(files) != 0 {
		t.Errorf("download directory holds %v after a mismatch; want nothing", files)
	}
	good := fmt.Sprintf(`{"id":"1","url":%q,"sha256":%q}`+"\n", u, strings.ToUpper(origin.Sum(name, size)))
	fetchRun(t, bg, good, base(dir, "-")...).done(t, origin.Sum(name, size), size)
}

// TestFetchHostileOrigins: every misbehaving origin ends in exactly one
// failed result line, quickly — never a hang, a crash or a done — and no
// error body ends up on disk.
func TestFetchHostileOrigins(t *testing.T) {
	t.Parallel()
	_, base0 := testenv.StartOrigin(t)
	dir := t.TempDir()
	hostile := map[string]struct {
		url, want string
	}{
		"endless":        {origin.URL(base0, "h/endless", 0, "endless=1"), "body exceeds max size"},
		"trickle":        {origin.URL(base0, "h/trickle", 1<<20, "trickle=100ms"), "stalled"},
		"content-length": {origin.URL(base0, "h/cl", 100000, "cl=200000"), "short body"},
		"redirect loop":  {origin.URL(base0, "h/loop", 100, "loop=1"), "too many redirects"},
		"reset":          {origin.URL(base0, "h/reset", 4<<20, "reset=100000"), "connection reset by peer"},
		"huge headers":   {origin.URL(base0, "h/headers", 100, "bigheader=1"), "header"},
		"short 200":      {origin.URL(base0, "h/short", 1<<20, "short=5000"), "short body: got 5000 of 1048576 bytes"},
		"error body":     {origin.URL(base0, "h/error", 100, "status=500"), "status 500 Internal Server Error"},
		"not found":      {origin.URL(base0, "h/missing", 100, "status=404"), "status 404 Not Found"},
	}
	var in strings.Builder
	for id, h := range hostile {
		fmt.Fprintf(&in, "{\"id\":%q,\"url\":%q}\n", id, h.url)
	}
	ctx, cancel := context.WithTimeout(bg, 90*time.Second)
	defer cancel()
	got := fetchRun(t, ctx, in.String(), base(dir, "--stall-timeout", "500ms", "--max-size", "16M", "--concurrency", "9", "-")...)
	if got.err == nil || !strings.Contains(got.stderr, fmt.Sprintf("%d of %d downloads failed", len(hostile), len(hostile))) {
		t.Errorf("exit %v; want a failure naming %d failed downloads; stderr:\n%s", got.err, len(hostile), got.stderr)
	}
	if strings.Contains(got.stderr, "goroutine ") || strings.Contains(got.stderr, "panic") {
		t.Errorf("crash on stderr:\n%s", got.stderr)
	}
	seen := map[string]bool{}
	for _, r := range got.results {
		h, ok := hostile[r.ID]
		switch {
		case !ok || seen[r.ID]:
			t.Errorf("unexpected or repeated result %+v", r)
		case r.Outcome != record.Failed || r.Path != "" || !strings.Contains(r.Error, h.want):
			t.Errorf("%s: %+v; want failed with %q", r.ID, r, h.want)
		case strings.ContainsAny(r.Error, "\r\n") || strings.Contains(r.Error, origin.FaultMarker):
			t.Errorf("%s: error is not one clean line: %q", r.ID, r.Error)
		}
		seen[r.ID] = true
	}
	if len(seen) != len(hostile) {
		t.Errorf("%d results for %d tasks", len(seen), len(hostile))
	}
	// Only part files a later attempt may resume; no final file, no error body.
	for _, f := range regularFiles(t, dir) {
		if !strings.HasSuffix(f, ".part") && !strings.HasSuffix(f, ".part.meta") {
			t.Errorf("file left in the download directory: %s", f)
		}
		if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil && strings.Contains(string(b), origin.FaultMarker) {
			t.Errorf("%s holds an error body", f)
		}
	}
}

// TestFetchPoliteness: --per-host caps the transfers to one host (and
// nothing does by default), connections are reused, the User-Agent is
// honest and can be changed, extra headers are sent.
func TestFetchPoliteness(t *testing.T) {
	t.Parallel()
	w := startWatched(t)
	dir := t.TempDir()
	var urls strings.Builder
	for i := range 12 {
		fmt.Fprintln(&urls, origin.URL(w.base, fmt.Sprintf("polite/%d.bin", i), 1000, "delay=100ms"))
	}
	got := fetchRun(t, bg, urls.String(), base(dir, "--per-host", "2", "--concurrency", "8", "-")...)
	if got.err != nil || len(got.results) != 12 {
		t.Fatalf("per-host run: exit %v, %d results; stderr:\n%s", got.err, len(got.results), got.stderr)
	}
	if p := w.peakInFlight(); p > 2 {
		t.Errorf("%d requests at once with --per-host 2", p)
	}

	// Without the flag, three requests meet at the gate: it would hold
	// them for its whole timeout under a limit of two.
	arrived := make(chan struct{}, 3)
	met := make(chan struct{})
	var once sync.Once
	w.mu.Lock()
	w.gate = func() {
		select {
		case arrived <- struct{}{}:
			if len(arrived) == 3 {
				once.Do(func() { close(met) })
			}
		default:
		}
		select {
		case <-met:
		case <-time.After(20 * time.Second):
		}
	}
	w.mu.Unlock()
	other := t.TempDir()
	got = fetchRun(t, bg, strings.ReplaceAll(urls.String(), "polite/", "open/"), base(other, "--concurrency", "8", "-")...)
	select {
	case <-met:
	default:
		t.Errorf("no three requests at once without --per-host (peak %d)", w.peakInFlight())
	}
	w.mu.Lock()
	w.gate = nil
	w.mu.Unlock()

	// Keep-alive: many small files over few connections.
	conns := w.conns.Load()
	urls.Reset()
	for i := range 40 {
		fmt.Fprintln(&urls, origin.URL(w.base, fmt.Sprintf("ka/%d.bin", i), 2000))
	}
	got = fetchRun(t, bg, urls.String(), base(t.TempDir(), "--concurrency", "2", "-")...)
	if n := w.conns.Load() - conns; got.err != nil || n > 8 {
		t.Errorf("40 files over %d new connections with 2 transfers (exit %v)", n, got.err)
	}
	if ua := w.lastHeader().Get("User-Agent"); !strings.HasPrefix(ua, "dl/") {
		t.Errorf("default User-Agent %q", ua)
	}

	fetchRun(t, bg, "", base(t.TempDir(), "--user-agent", "archiver/2.0 (ops@example.org)",
		"-H", "Authorization: Bearer s3cret", "-H", "X-Job: nightly", origin.URL(w.base, "hdr.bin", 10))...).
		done(t, origin.Sum("hdr.bin", 10), 10)
	h := w.lastHeader()
	if h.Get("User-Agent") != "archiver/2.0 (ops@example.org)" || h.Get("Authorization") != "Bearer s3cret" || h.Get("X-Job") != "nightly" {
		t.Errorf("request headers %v", h)
	}
}

// TestFetchProgress: on a terminal dl-fetch draws bars and still writes
// whole result lines; into a log it writes the periodic statistics line
// and never a bar. The terminal is a pty made by script(1).
func TestFetchProgress(t *testing.T) {
	t.Parallel()
	_, base0 := testenv.StartOrigin(t)
	bin := filepath.Join(testenv.Binaries(t), "dl-fetch")
	const name, size = "tty/video.mp4", 4 << 20
	u := origin.URL(base0, name, size)

	t.Run("terminal", func(t *testing.T) {
		script, err := exec.LookPath("script")
		if err != nil {
			testenv.Missing(t, "script(1) is not installed (Debian: bsdutils)")
		}
		cmd := fmt.Sprintf("stty cols 120 rows 30 && exec %s --dir %s --fsync=false --limit-rate 8M '%s'", bin, t.TempDir(), u)
		out, stderr, err := testenv.Run(t, bg, script, nil, nil, "-qec", cmd, "/dev/null")
		if err != nil {
			t.Fatalf("dl-fetch on a terminal: %v\n%s%s", err, out, stderr)
		}
		screen := strings.ReplaceAll(out, "\r", "")
		for _, want := range []string{"\x1b[", "video.mp4 ", "[===", "MiB/s", "0 active, 1 done, 0 failed"} {
			if !strings.Contains(screen, want) {
				t.Errorf("terminal lacks %q:\n%q", want, screen)
			}
		}
		var res record.Result
		for _, l := range strings.Split(screen, "\n") {
			if i := strings.Index(l, `{"id":`); i >= 0 {
				if err := json.Unmarshal([]byte(l[i:]), &res); err != nil {
					t.Errorf("result line torn by the bars: %q: %v", l[i:], err)
				}
			}
		}
		if res.Outcome != record.Done || res.SHA256 != origin.Sum(name, size) {
			t.Errorf("result on the terminal %+v", res)
		}
	})
	t.Run("log", func(t *testing.T) {
		got := fetchRun(t, bg, "", base(t.TempDir(), "--limit-rate", "4M", "--stats-every", "100ms", u)...)
		got.done(t, origin.Sum(name, size), size)
		if strings.Contains(got.stderr, "\x1b") || strings.Contains(got.stderr, "[==") || strings.Contains(got.stderr, "\r") {
			t.Errorf("bars drawn into a log:\n%q", got.stderr)
		}
		if !strings.Contains(got.stderr, "msg=progress") || !strings.Contains(got.stderr, "msg=finished") {
			t.Errorf("no statistics line in the log:\n%s", got.stderr)
		}
	})
}

// TestFetchShowsNoPassword: a URL's password is in no log line and no error
// of dl-fetch's, though a URL given as an argument or a bare line is also
// its task's id: not in a retry's log line, not in the stop for a download
// directory that is a file, not in the refusal of a URL that does not parse.
func TestFetchShowsNoPassword(t *testing.T) {
	t.Parallel()
	_, base0 := testenv.StartOrigin(t)
	pw := func(u string) string { return strings.Replace(u, "http://", "http://user:s3cret@", 1) }
	dir := t.TempDir()
	notDir := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := pw(base0 + "/files/bad%zz")
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string // in stderr
	}{
		{"", []string{"--dir", dir, "--retries", "1", "--log-level", "debug", pw(origin.URL(base0, "pw/retried.bin", 3000, "fail=1"))}, "msg=retrying"},
		{"", []string{"--dir", notDir, pw(origin.URL(base0, "pw/refused.bin", 3000))}, "stopped taking tasks"},
		{"", []string{"--dir", dir, bad}, "bad url"},
		{bad + "\n", []string{"--dir", dir, "-"}, "skipping bad task line"},
	} {
		got := fetchRun(t, bg, tc.stdin, tc.args...)
		if strings.Contains(got.stderr, "s3cret") || !strings.Contains(got.stderr, "user:xxxxx@") || !strings.Contains(got.stderr, tc.want) {
			t.Errorf("dl-fetch %v: stderr shows the password, or not the redacted URL and %q:\n%s", tc.args, tc.want, got.stderr)
		}
	}
}
