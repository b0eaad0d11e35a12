// Package origin is a deterministic HTTP file server for tests, the demo and
// the benchmark. Nothing is stored: every file's bytes are generated from its
// name (see Content), so a test can serve a gigabyte, compare hashes with Sum,
// and misbehave on demand in the ways real servers do.
//
// URLs:
//
//	GET /healthz              200 "ok"
//	GET /files/<name>?size=N  N bytes of Content(name, N); N takes k, m, g
//	                          suffixes (binary) and defaults to DefaultSize
//
// A file answers with Content-Length, a strong ETag, Last-Modified and
// Accept-Ranges, and honours Range, If-Range and conditional requests the way
// net/http's ServeContent does. Query knobs make it misbehave; unknown or
// malformed knobs get 400 so that a typo cannot quietly test the happy path:
//
//	delay=100ms     wait before sending headers
//	status=503      always answer that status (300-599) with a body that
//	                contains FaultMarker and must never end up in a file
//	fail=N          the first N requests for this exact path+query get 503
//	                (FaultMarker body), later ones succeed
//	retry_after=2   add Retry-After: 2 to 429 and 503 answers
//	short=N         announce the full length, send N body bytes, then close
//	                the connection with a FIN (an early, clean EOF)
//	reset=N         send N body bytes, then reset the TCP connection (RST)
//	trickle=1s      no Content-Length; one byte of content per interval,
//	                forever
//	endless=1       no Content-Length; an infinite body
//	gzip=1          Content-Encoding: gzip whatever the request asks for; the
//	                body is the gzip of the content (see GzipSum), sent
//	                without Content-Length, with a weak ETag and no ranges
//	redirect=N      302 to the same URL with redirect=N-1, then serve
//	loop=1          302 to the very same URL, forever
//	bigheader=1     add a 2 MiB response header (X-Origin-Big)
//	cl=N            announce Content-Length: N whatever is sent (a lie); the
//	                body is cut at N, or the connection closes short of it
//	norange=1       ignore Range and If-Range, answer 200 with the whole
//	                body and no Accept-Ranges
//	cd=name         Content-Disposition: attachment; filename="name"
//	noetag=1        no ETag (If-Range then works by Last-Modified only)
//
// Knobs act in this order: delay, loop, redirect, status, fail, and then
// the file is served with the remaining ones applied.
//
// Counters (Stats) record requests and body bytes actually written per URL
// path, so a test can check that a resumed download did not fetch twice.
package origin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FaultMarker is in the body of every injected error answer (status=, fail=),
// so a test can assert that no stored file contains it.
const FaultMarker = "DL-ORIGIN-INJECTED-FAULT"

// FilesPrefix is the path under which files are served.
const FilesPrefix = "/files/"

// epoch is every file's Last-Modified (plus one hour per Bump), fixed so
// that If-Range by date gives the same answer on every run.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Origin is the http.Handler. Its zero value is not usable; call New.
type Origin struct {
	mu       sync.Mutex
	requests int64
	bytes    int64
	pathReqs map[string]int64
	pathByte map[string]int64
	fails    map[string]int // requests seen per path+query, for fail=N
	versions map[string]int // per file name, raised by Bump
}

// New returns an origin with zeroed counters.
func New() *Origin {
	return &Origin{
		pathReqs: map[string]int64{},
		pathByte: map[string]int64{},
		fails:    map[string]int{},
		versions: map[string]int{},
	}
}

// Stats is a snapshot of the counters. Paths are URL paths such as
// "/files/a.bin" (see Path).
type Stats struct {
	Requests     int64
	Bytes        int64
	PathRequests map[string]int64
	PathBytes    map[string]int64
}

// Stats returns a copy of the counters.
func (o *Origin) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return Stats{
		Requests:     o.requests,
		Bytes:        o.bytes,
		PathRequests: maps.Clone(o.pathReqs),
		PathBytes:    maps.Clone(o.pathByte),
	}
}

// Requests returns how many requests path has received.
func (o *Origin) Requests(path string) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pathReqs[path]
}

// Bytes returns how many body bytes have been written for path.
func (o *Origin) Bytes(path string) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pathByte[path]
}

// Bump replaces the file name on the server, as if it was re-published: its
// content, ETag and Last-Modified change from the next request on. It
// returns the content key, so the new bytes are Content(key, size) and their
// hash Sum(key, size). Tests use it to check that a resume notices.
func (o *Origin) Bump(name string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.versions[name]++
	return contentKey(name, o.versions[name])
}

func contentKey(name string, version int) string {
	if version == 0 {
		return name
	}
	return name + "#" + strconv.Itoa(version)
}

// Path returns the URL path of a file.
func Path(name string) string { return FilesPrefix + name }

// URL returns baseURL's address for name with size bytes and the given
// knobs, each written "key=value" (the value already query-escaped).
func URL(baseURL, name string, size int64, knobs ...string) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	q := append([]string{"size=" + strconv.FormatInt(size, 10)}, knobs...)
	return strings.TrimSuffix(baseURL, "/") + FilesPrefix + strings.Join(segs, "/") + "?" + strings.Join(q, "&")
}

func (o *Origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.requests++
	o.pathReqs[r.URL.Path]++
	o.mu.Unlock()
	rw := &respWriter{ResponseWriter: w, o: o, path: r.URL.Path, limit: -1, cl: -1}

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		rw.Header().Set("Allow", "GET, HEAD")
		http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case r.URL.Path == "/healthz":
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(rw, "ok")
	case strings.HasPrefix(r.URL.Path, FilesPrefix) && len(r.URL.Path) > len(FilesPrefix):
		o.serveFile(rw, r, strings.TrimPrefix(r.URL.Path, FilesPrefix))
	default:
		http.NotFound(rw, r)
	}
}

func (o *Origin) serveFile(rw *respWriter, r *http.Request, name string) {
	k, err := parseKnobs(r.URL.Query())
	if err != nil {
		http.Error(rw, "origin: "+err.Error(), http.StatusBadRequest)
		return
	}
	if k.delay > 0 && !sleep(r.Context(), k.delay) {
		return
	}
	switch {
	case k.loop:
		http.Redirect(rw, r, r.URL.RequestURI(), http.StatusFound)
		return
	case k.redirect > 0:
		q := r.URL.Query()
		if k.redirect == 1 {
			q.Del("redirect")
		} else {
			q.Set("redirect", strconv.Itoa(k.redirect-1))
		}
		http.Redirect(rw, r, (&url.URL{Path: r.URL.Path, RawQuery: q.Encode()}).RequestURI(), http.StatusFound)
		return
	case k.status != 0:
		fault(rw, r, k.status, k)
		return
	case k.fail > 0 && o.countFail(r.URL.Path+"?"+r.URL.RawQuery) <= k.fail:
		fault(rw, r, http.StatusServiceUnavailable, k)
		return
	}

	o.mu.Lock()
	version := o.versions[name]
	o.mu.Unlock()
	key := contentKey(name, version)
	modtime := epoch.Add(time.Duration(version) * time.Hour)

	h := rw.Header()
	h.Set("Content-Type", "application/octet-stream")
	if k.cd != "" {
		h.Set("Content-Disposition", contentDisposition(k.cd))
	}
	if k.bigHeader {
		h.Set("X-Origin-Big", strings.Repeat("x", 2<<20))
	}
	if !k.noETag {
		h.Set("ETag", etag(key, k.size, k.gzip))
	}
	rw.limit, rw.reset, rw.cl, rw.noRange = k.short, false, k.cl, k.noRange
	if k.reset >= 0 && (k.short < 0 || k.reset < k.short) {
		rw.limit, rw.reset = k.reset, true
	}

	switch {
	case k.trickle > 0:
		serveTrickle(rw, r, key, k.trickle)
	case k.endless:
		serveEndless(rw, r, key)
	case k.gzip:
		h.Set("Content-Encoding", "gzip")
		h.Set("Last-Modified", modtime.Format(http.TimeFormat))
		rw.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_ = writeGzip(rw, key, k.size) // an error means the client is gone or the body was cut on purpose
		}
	default:
		if k.noRange {
			r.Header.Del("Range")
			r.Header.Del("If-Range")
		}
		http.ServeContent(rw, r, "", modtime, newStream(key, k.size))
	}
}

// countFail returns how many requests key has had, this one included.
func (o *Origin) countFail(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fails[key]++
	return o.fails[key]
}

func fault(w http.ResponseWriter, r *http.Request, code int, k knobs) {
	if k.retryAfter >= 0 && (code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable) {
		w.Header().Set("Retry-After", strconv.Itoa(k.retryAfter))
	}
	body := fmt.Sprintf("%s: status %d\n", FaultMarker, code)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	if r.Method != http.MethodHead && code != http.StatusNotModified {
		_, _ = w.Write([]byte(body)) // the client may be gone; nothing to do about it
	}
}

// etag names the exact bytes served: a gzip body is a different
// representation, and is only weakly equal since no range may be taken of it.
func etag(key string, size int64, gzipped bool) string {
	sum := sha256.Sum256([]byte(key + "\x00" + strconv.FormatInt(size, 10)))
	tag := `"` + hex.EncodeToString(sum[:12]) + `"`
	if gzipped {
		return "W/" + tag
	}
	return tag
}

func contentDisposition(name string) string {
	for _, c := range name {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return "attachment; filename*=UTF-8''" + url.PathEscape(name)
		}
	}
	return `attachment; filename="` + name + `"`
}

// sleep waits d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
