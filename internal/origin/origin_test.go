package origin

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func start(t *testing.T) (*Origin, string) {
	t.Helper()
	o := New()
	srv := httptest.NewServer(o)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return o, srv.URL
}

// get does one request with a client that follows no redirects and does not
// decompress, so the test sees exactly what the origin sent.
func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{
		Transport:     &http.Transport{DisableCompression: true, MaxResponseHeaderBytes: 8 << 20},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
	t.Cleanup(c.CloseIdleConnections)
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func mustGet(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	resp, body, err := get(t, url, hdr...)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, body
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func wantStatus(t *testing.T, resp *http.Response, code int) {
	t.Helper()
	if resp.StatusCode != code {
		t.Fatalf("status %d, want %d", resp.StatusCode, code)
	}
}

func TestHealthzNotFoundMethodAndBadKnob(t *testing.T) {
	_, base := start(t)
	resp, body := mustGet(t, base+"/healthz")
	wantStatus(t, resp, 200)
	if string(body) != "ok\n" {
		t.Fatalf("healthz body %q", body)
	}
	resp, _ = mustGet(t, base+"/nope")
	wantStatus(t, resp, 404)
	resp, _ = mustGet(t, base+"/files/")
	wantStatus(t, resp, 404)
	resp, body = mustGet(t, base+"/files/a?sise=3")
	wantStatus(t, resp, 400)
	if !strings.Contains(string(body), "sise") {
		t.Fatalf("400 body does not name the bad knob: %q", body)
	}
	resp, _ = mustGet(t, base+"/files/a?size=-1")
	wantStatus(t, resp, 400)
	post, err := http.Post(base+"/files/a", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	wantStatus(t, post, 405)
}

func TestServesContentWithValidators(t *testing.T) {
	o, base := start(t)
	resp, body := mustGet(t, URL(base, "dir/a.bin", 100_003))
	wantStatus(t, resp, 200)
	if got := sum(body); got != Sum("dir/a.bin", 100_003) {
		t.Fatalf("body sha256 %s, want Sum", got)
	}
	h := resp.Header
	if h.Get("Content-Length") != "100003" || h.Get("Accept-Ranges") != "bytes" ||
		h.Get("Last-Modified") == "" || !strings.HasPrefix(h.Get("ETag"), `"`) {
		t.Fatalf("missing or weak validators: %v", h)
	}
	if got := o.Bytes(Path("dir/a.bin")); got != 100_003 {
		t.Fatalf("Bytes = %d, want 100003", got)
	}

	resp, body = mustGet(t, URL(base, "with space?.bin", 10))
	if sum(body) != Sum("with space?.bin", 10) || o.Requests(Path("with space?.bin")) != 1 {
		t.Fatal("a name that needs escaping was not served under its own name")
	}
	resp, body = mustGet(t, base+"/files/b.bin?size=4k")
	if len(body) != 4096 {
		t.Fatalf("size=4k gave %d bytes", len(body))
	}
	resp, body = mustGet(t, base+"/files/c.bin")
	if len(body) != DefaultSize {
		t.Fatalf("no size gave %d bytes, want %d", len(body), DefaultSize)
	}
	head, err := http.Head(URL(base, "d", 77))
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.ContentLength != 77 {
		t.Fatalf("HEAD Content-Length %d", head.ContentLength)
	}
	if st := o.Stats(); st.Requests != 5 || st.PathRequests[Path("d")] != 1 || st.Bytes != 100_003+10+4096+DefaultSize {
		t.Fatalf("stats %+v", st)
	}
}

func TestRangeAndIfRange(t *testing.T) {
	_, base := start(t)
	const size = 10_000
	full := readAll(t, Content("r", size))
	u := URL(base, "r", size)
	resp, _ := mustGet(t, u)
	tag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")

	resp, body := mustGet(t, u, "Range", "bytes=100-")
	wantStatus(t, resp, 206)
	if string(body) != string(full[100:]) {
		t.Fatal("Range body differs from content")
	}
	resp, body = mustGet(t, u, "Range", "bytes=100-", "If-Range", tag)
	wantStatus(t, resp, 206)
	resp, body = mustGet(t, u, "Range", "bytes=100-", "If-Range", `"stale"`)
	wantStatus(t, resp, 200)
	if len(body) != size {
		t.Fatalf("stale If-Range gave %d bytes, want the whole file", len(body))
	}
	resp, _ = mustGet(t, u, "Range", "bytes=20000-")
	wantStatus(t, resp, 416)

	// Without an ETag, If-Range falls back to the date.
	nu := u + "&noetag=1"
	resp, _ = mustGet(t, nu)
	if resp.Header.Get("ETag") != "" {
		t.Fatal("noetag=1 still sent an ETag")
	}
	resp, _ = mustGet(t, nu, "Range", "bytes=5-", "If-Range", lastMod)
	wantStatus(t, resp, 206)
}

func TestBumpChangesContentAndValidators(t *testing.T) {
	o, base := start(t)
	u := URL(base, "v", 5000)
	resp, _ := mustGet(t, u)
	oldTag, oldMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	key := o.Bump("v")
	resp, body := mustGet(t, u, "Range", "bytes=10-", "If-Range", oldTag)
	wantStatus(t, resp, 200)
	if sum(body) != Sum(key, 5000) || Sum(key, 5000) == Sum("v", 5000) {
		t.Fatal("bumped file does not serve Content(key)")
	}
	if resp.Header.Get("ETag") == oldTag || resp.Header.Get("Last-Modified") == oldMod {
		t.Fatal("validators did not change on Bump")
	}
}

func TestDelayHoldsHeaders(t *testing.T) {
	_, base := start(t)
	t0 := time.Now()
	resp, _ := mustGet(t, URL(base, "d", 10, "delay=150ms"))
	wantStatus(t, resp, 200)
	if el := time.Since(t0); el < 150*time.Millisecond {
		t.Fatalf("answered after %v, want >= 150ms", el)
	}
}

func TestStatusAndRetryAfter(t *testing.T) {
	o, base := start(t)
	for _, code := range []int{404, 429, 500, 503} {
		u := URL(base, "s", 10, "status="+strconv.Itoa(code), "retry_after=7")
		for range 2 {
			resp, body := mustGet(t, u)
			wantStatus(t, resp, code)
			if !strings.Contains(string(body), FaultMarker) {
				t.Fatalf("status body %q lacks the fault marker", body)
			}
			wantRA := ""
			if code == 429 || code == 503 {
				wantRA = "7"
			}
			if ra := resp.Header.Get("Retry-After"); ra != wantRA {
				t.Fatalf("status %d: Retry-After %q, want %q", code, ra, wantRA)
			}
		}
	}
	if o.Requests(Path("s")) != 8 {
		t.Fatalf("requests %d, want 8", o.Requests(Path("s")))
	}
	resp, _ := mustGet(t, URL(base, "s", 10, "status=200"))
	wantStatus(t, resp, 400)
}

func TestFailCountsPerURL(t *testing.T) {
	_, base := start(t)
	u := URL(base, "f", 100, "fail=2", "retry_after=1")
	for i := range 2 {
		resp, body := mustGet(t, u)
		wantStatus(t, resp, 503)
		if resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), FaultMarker) {
			t.Fatalf("failure %d: Retry-After %q body %q", i, resp.Header.Get("Retry-After"), body)
		}
	}
	resp, body := mustGet(t, u)
	wantStatus(t, resp, 200)
	if sum(body) != Sum("f", 100) {
		t.Fatal("body after failures is not the content")
	}
	// Another query is another URL with its own count.
	resp, _ = mustGet(t, URL(base, "f", 101, "fail=1"))
	wantStatus(t, resp, 503)
}

func TestRedirectAndLoop(t *testing.T) {
	o, base := start(t)
	resp, err := http.Get(URL(base, "x", 10, "redirect=3"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantStatus(t, resp, 200)
	if n := o.Requests(Path("x")); n != 4 {
		t.Fatalf("redirect=3 took %d requests, want 4", n)
	}
	if _, err := http.Get(URL(base, "y", 10, "loop=1")); err == nil || !strings.Contains(err.Error(), "redirects") {
		t.Fatalf("loop=1: err %v, want a redirect limit error", err)
	}
	r, _ := mustGet(t, URL(base, "y", 10, "loop=1"))
	wantStatus(t, r, 302)
	if loc := r.Header.Get("Location"); loc != "/files/y?size=10&loop=1" {
		t.Fatalf("loop Location %q", loc)
	}
}

func TestHeaderKnobs(t *testing.T) {
	_, base := start(t)
	resp, _ := mustGet(t, URL(base, "h", 10, "cd=report.pdf"))
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="report.pdf"` {
		t.Fatalf("Content-Disposition %q", cd)
	}
	resp, _ = mustGet(t, URL(base, "h", 10, "bigheader=1"))
	if n := len(resp.Header.Get("X-Origin-Big")); n != 2<<20 {
		t.Fatalf("big header is %d bytes", n)
	}
	// A client with a 1 MiB header limit must refuse it: that is what the
	// knob is for (Go's own default limit is 10 MiB).
	c := &http.Client{Transport: &http.Transport{MaxResponseHeaderBytes: 1 << 20}}
	defer c.CloseIdleConnections()
	if _, err := c.Get(URL(base, "h", 10, "bigheader=1")); err == nil {
		t.Fatal("a client with a 1 MiB limit accepted a 2 MiB header")
	}
}

func TestNoRangeAnswersWholeFile(t *testing.T) {
	_, base := start(t)
	resp, body := mustGet(t, URL(base, "n", 1000, "norange=1"), "Range", "bytes=10-")
	wantStatus(t, resp, 200)
	if len(body) != 1000 || resp.Header.Get("Accept-Ranges") != "" {
		t.Fatalf("norange: %d bytes, Accept-Ranges %q", len(body), resp.Header.Get("Accept-Ranges"))
	}
}

func TestContentLengthLies(t *testing.T) {
	_, base := start(t)
	resp, body := mustGet(t, URL(base, "l", 1000, "cl=600"))
	if resp.ContentLength != 600 || string(body) != string(readAll(t, Content("l", 600))) {
		t.Fatalf("cl=600: length %d, %d bytes", resp.ContentLength, len(body))
	}
	resp, body, err := get(t, URL(base, "l", 1000, "cl=5000"))
	if err != io.ErrUnexpectedEOF || resp.ContentLength != 5000 || len(body) != 1000 {
		t.Fatalf("cl=5000: err %v, length %d, %d bytes", err, resp.ContentLength, len(body))
	}
}

func TestGzipIsSentWhateverTheRequest(t *testing.T) {
	o, base := start(t)
	u := URL(base, "z", 200_000, "gzip=1")
	resp, body := mustGet(t, u, "Accept-Encoding", "identity", "Range", "bytes=5-")
	wantStatus(t, resp, 200)
	if resp.Header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(resp.Header.Get("ETag"), "W/") {
		t.Fatalf("gzip headers %v", resp.Header)
	}
	if sum(body) != GzipSum("z", 200_000) {
		t.Fatal("gzip body hash differs from GzipSum")
	}
	if o.Bytes(Path("z")) != int64(len(body)) {
		t.Fatalf("Bytes %d, body %d", o.Bytes(Path("z")), len(body))
	}
}

func TestEndlessHasNoEnd(t *testing.T) {
	o, base := start(t)
	resp, err := http.Get(URL(base, "e", 0, "endless=1"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.ContentLength != -1 {
		t.Fatalf("Content-Length %d, want none", resp.ContentLength)
	}
	const n = 10 << 20
	got := readAll(t, io.LimitReader(resp.Body, n))
	resp.Body.Close()
	if sum(got) != Sum("e", n) {
		t.Fatal("endless body is not the content")
	}
	if o.Bytes(Path("e")) < n {
		t.Fatalf("Bytes %d < %d read", o.Bytes(Path("e")), n)
	}
}

func TestTrickleSendsOneBytePerInterval(t *testing.T) {
	_, base := start(t)
	t0 := time.Now()
	resp, err := http.Get(URL(base, "t", 10, "trickle=30ms"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != -1 {
		t.Fatalf("Content-Length %d, want none", resp.ContentLength)
	}
	got := readAll(t, io.LimitReader(resp.Body, 5))
	if el := time.Since(t0); el < 150*time.Millisecond {
		t.Fatalf("5 bytes in %v, want >= 150ms", el)
	}
	if string(got) != string(readAll(t, Content("t", 5))) {
		t.Fatal("trickled bytes are not the content")
	}
}

// BenchmarkServe measures a whole download over loopback, so the benchmark
// of the downloader can tell whether the origin keeps up.
func BenchmarkServe(b *testing.B) {
	srv := httptest.NewServer(New())
	defer srv.Close()
	const size = 64 << 20
	u := URL(srv.URL, "bench", size)
	b.SetBytes(size)
	for b.Loop() {
		resp, err := http.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size {
			b.Fatalf("%d bytes, %v", n, err)
		}
	}
}
