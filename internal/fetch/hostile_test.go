package fetch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/record"
)

// TestFetchFailures: every misbehaving origin ends in exactly one failed
// result, classified, with nothing under the final name, no error body on
// disk and nothing the origin sent that looks like a secret.
func TestFetchFailures(t *testing.T) {
	body := content(200000, 6)
	type origin struct {
		handler http.HandlerFunc                                        // an httptest server, or
		raw     func(c net.Conn, r *http.Request, done <-chan struct{}) // a hand-written one
	}
	tests := []struct {
		name      string
		origin    origin
		path      string
		url       string // instead of the server's
		task      record.Task
		opts      Options
		retryable bool
		status    int
		errWant   string // substring of the error
		keepPart  bool   // the .part file is left for a resume
		maxWait   time.Duration
	}{
		{name: "404", path: "/missing.bin", status: 404, errWant: "/missing.bin: status 404 Not Found",
			origin: origin{handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(404)
				fmt.Fprint(w, "<html>not here</html>")
			}}},
		{name: "403", status: 403, errWant: "status 403 Forbidden",
			origin: origin{handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(403) }}},
		{name: "410 with endless body", status: 410, errWant: "status 410 Gone",
			origin: origin{handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(410)
				for r.Context().Err() == nil {
					if _, err := w.Write(body); err != nil {
						return
					}
				}
			}}},
		{name: "500", status: 500, retryable: true, errWant: "status 500 Internal Server Error",
			origin: origin{handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }}},
		{name: "502 odd reason phrase", status: 502, retryable: true, errWant: "status 502 Bad Gateway",
			origin: origin{raw: func(c net.Conn, r *http.Request, _ <-chan struct{}) {
				io.WriteString(c, "HTTP/1.1 502 Everything\r\nInjected: yes\r\nContent-Length: 0\r\n\r\n")
			}}},
		{name: "408", status: 408, retryable: true, errWant: "status 408",
			origin: origin{handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(408) }}},
		{name: "429", status: 429, retryable: true, errWant: "status 429 Too Many Requests",
			origin: origin{handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(429) }}},
		{name: "3xx without location", status: 300, errWant: "status 300",
			origin: origin{handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(300) }}},
		{name: "bad scheme", url: "ftp://127.0.0.1/x", errWant: "scheme must be http or https"},
		{name: "no host", url: "http:///x", errWant: "no host"},
		{name: "connection refused", url: closedPort(t), retryable: true, errWant: "connection refused"},
		{name: "redirect loop", status: 302, errWant: "too many redirects",
			origin: origin{handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, r.URL.Path, http.StatusFound)
			}}},
		{name: "redirect limit", opts: Options{MaxRedirects: 2}, status: 302, errWant: "too many redirects (limit 2)",
			origin: origin{handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, r.URL.Path+"x", http.StatusFound)
			}}},
		{name: "redirects off", opts: Options{MaxRedirects: -1}, status: 301, errWant: "too many redirects (limit 0)",
			origin: origin{handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
			}}},
		{name: "redirect to file scheme", status: 302, errWant: "redirect to file:///etc/passwd: scheme must be http or https",
			origin: origin{handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", "file:///etc/passwd")
				w.WriteHeader(302)
			}}},
		// net/http's own error would quote the Location, secrets and all.
		{name: "redirect to an unparsable location", opts: Options{Retries: 5}, status: 302, errWant: "redirect to an unparsable Location (status 302 Found)",
			origin: origin{raw: func(c net.Conn, r *http.Request, _ <-chan struct{}) {
				io.WriteString(c, "HTTP/1.1 302 Found\r\nLocation: http://user:s3cret@[::1/x?token=s3cret\r\nContent-Length: 0\r\n\r\n")
			}}},
		{name: "redirect to an unparsable relative location", opts: Options{Retries: 5}, status: 307, errWant: "redirect to an unparsable Location (status 307 Temporary Redirect)",
			origin: origin{raw: func(c net.Conn, r *http.Request, _ <-chan struct{}) {
				io.WriteString(c, "HTTP/1.1 307 Temporary Redirect\r\nLocation: /s3cret%zz\r\nContent-Length: 0\r\n\r\n")
			}}},
		{name: "max size from content-length", opts: Options{MaxSize: 1000}, status: 200, errWant: "size 200000 exceeds max size 1000",
			origin: origin{handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				w.Write(body)
			}}},
		{name: "endless body over max size", opts: Options{MaxSize: 1 << 20}, status: 200, errWant: "body exceeds max size 1048576",
			origin: origin{handler: func(w http.ResponseWriter, r *http.Request) {
				for r.Context().Err() == nil {
					if _, err := w.Write(body); err != nil {
						return
					}
				}
			}}},
		{name: "sha256 mismatch", task: record.Task{SHA256: strings.Repeat("0", 64)}, status: 200, errWant: "does not match the expected 0000",
			origin: origin{handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("ETag", `"v1"`) // resumable, yet removed: the bytes are wrong
				w.Write(body)
			}}},
		{name: "200 shorter than announced", status: 200, retryable: true, errWant: "short body: got 5 of 1000 bytes",
			origin: origin{raw: func(c net.Conn, r *http.Request, _ <-chan struct{}) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nhello")
			}}},
		{name: "short body with validator keeps part", status: 200, retryable: true, errWant: "short body: got 5 of 2000000 bytes", keepPart: true,
			origin: origin{raw: func(c net.Conn, r *http.Request, _ <-chan struct{}) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nContent-Length: 2000000\r\n\r\nhello")
			}}},
		{name: "short small body not worth resuming", status: 200, retryable: true, errWant: "short body: got 5 of 1000 bytes",
			origin: origin{raw: func(c net.Conn, r *http.Request, _ <-chan struct{}) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nContent-Length: 1000\r\n\r\nhello")
			}}},
		{name: "invalid content-length", retryable: true, errWant: `bad Content-Length "12x"`,
			origin: origin{raw: func(c net.Conn, r *http.Request, _ <-chan struct{}) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\nhello")
			}}},
		{name: "conflicting content-lengths", retryable: true, errWant: "multiple Content-Length",
			origin: origin{raw: func(c net.Conn, r *http.Request, _ <-chan struct{}) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 9\r\n\r\nhello")
			}}},
		{name: "reset mid-body", status: 200, retryable: true, errWant: "GET http",
			origin: origin{raw: func(c net.Conn, r *http.Request, _ <-chan struct{}) {
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
				c.Write(body[:len(body)/2])
				time.Sleep(50 * time.Millisecond)
				reset(c)
			}}},
		{name: "chunked body cut", status: 200, retryable: true, errWant: "unexpected EOF",
			origin: origin{raw: func(c net.Conn, r *http.Request, _ <-chan struct{}) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nonly a few")
			}}},
		{name: "huge headers", retryable: true, errWant: "exceeded",
			origin: origin{raw: func(c net.Conn, r *http.Request, done <-chan struct{}) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\n")
				line := "X-Junk: " + strings.Repeat("j", 8000) + "\r\n"
				for range 1000 {
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
			}}},
		{name: "silent server", opts: Options{StallTimeout: 300 * time.Millisecond}, retryable: true, errWant: "stalled: 0 bytes in 300ms", maxWait: 3 * time.Second,
			origin: origin{raw: func(c net.Conn, r *http.Request, done <-chan struct{}) { <-done }}},
		{name: "trickled headers", opts: Options{StallTimeout: 300 * time.Millisecond}, retryable: true, errWant: "stalled", maxWait: 3 * time.Second,
			origin: origin{raw: func(c net.Conn, r *http.Request, done <-chan struct{}) {
				trickle(c, done, "HTTP/1.1 200 OK\r\nX-Slow: "+strings.Repeat("s", 10000))
			}}},
		{name: "trickled body", opts: Options{StallTimeout: 300 * time.Millisecond}, status: 200, retryable: true, errWant: "stalled", maxWait: 3 * time.Second,
			origin: origin{raw: func(c net.Conn, r *http.Request, done <-chan struct{}) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
				trickle(c, done, strings.Repeat("b", 100000))
			}}},
		{name: "max time", opts: Options{MaxTime: 400 * time.Millisecond, Retries: 5}, status: 200, retryable: true, errWant: "max time 400ms exceeded", maxWait: 3 * time.Second,
			origin: origin{handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "100000000")
				for r.Context().Err() == nil {
					w.Write(body[:4096]) // fast enough never to stall
					w.(http.Flusher).Flush()
					time.Sleep(time.Millisecond)
				}
			}}},
		{name: "partial content for a whole-file request", status: 206, retryable: true, errWant: "partial content",
			origin: origin{handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Range", "bytes 0-9/100")
				w.WriteHeader(206)
				w.Write(body[:10])
			}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c counter
			base := ""
			switch {
			case tt.origin.handler != nil:
				srv := httptest.NewServer(c.wrap(tt.origin.handler))
				defer srv.Close()
				base = srv.URL
			case tt.origin.raw != nil:
				base = rawServer(t, tt.origin.raw)
			}
			task := tt.task
			task.ID = "5"
			task.Attempt = 3
			task.URL = tt.url
			if task.URL == "" {
				task.URL = base + "/file.bin"
				if tt.path != "" {
					task.URL = base + tt.path
				}
			}
			f := newFetcher(t, tt.opts)
			start := time.Now()
			res := f.Fetch(context.Background(), task)
			elapsed := time.Since(start)

			t.Logf("error: %s", res.Error)
			if res.Outcome != record.Failed {
				t.Fatalf("outcome %q; want failed", res.Outcome)
			}
			if res.Retryable != tt.retryable {
				t.Errorf("retryable %v, want %v (error %q)", res.Retryable, tt.retryable, res.Error)
			}
			if !strings.Contains(res.Error, tt.errWant) {
				t.Errorf("error %q does not contain %q", res.Error, tt.errWant)
			}
			if strings.ContainsAny(res.Error, "\r\n") || strings.Contains(res.Error, "Injected") || strings.Contains(res.Error, "Everything") || strings.Contains(res.Error, "s3cret") {
				t.Errorf("error %q is not one clean line", res.Error)
			}
			if tt.status != 0 && res.HTTP != tt.status {
				t.Errorf("http status %d, want %d", res.HTTP, tt.status)
			}
			if res.Path != "" || res.Bytes != 0 || res.SHA256 != "" {
				t.Errorf("failed result claims a file: %+v", res)
			}
			if (!tt.retryable || tt.opts.Retries == 0) && res.Attempt != 4 {
				t.Errorf("attempt %d, want 4 (3 before, 1 now)", res.Attempt)
			}
			if tt.maxWait > 0 && elapsed > tt.maxWait {
				t.Errorf("took %v, want under %v", elapsed, tt.maxWait)
			}
			got := files(t, f.o.Dir)
			if tt.keepPart {
				if len(got) != 2 || !strings.HasSuffix(got[0], ".part") || !strings.HasSuffix(got[1], ".part.meta") {
					t.Errorf("download directory holds %v; want the .part and its meta", got)
				}
			} else if len(got) != 0 {
				t.Errorf("download directory holds %v; want nothing", got)
			}
		})
	}
}

// trickle writes s one byte at a time, 50 ms apart, until done.
func trickle(c net.Conn, done <-chan struct{}, s string) {
	for i := range len(s) {
		select {
		case <-done:
			return
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := io.WriteString(c, s[i:i+1]); err != nil {
			return
		}
	}
}

// closedPort returns a URL on a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/x"
}

// TestFetchRedactsPassword: a URL's password, or its user name when it has
// no password (a token used as one), is in no error.
func TestFetchRedactsPassword(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) }))
	defer srv.Close()
	f := newFetcher(t, Options{})
	for userinfo, want := range map[string]string{"user:s3cret@": "user:xxxxx@", "s3cret@": "//xxxxx@"} {
		url := strings.Replace(srv.URL, "http://", "http://"+userinfo, 1) + "/x"
		res := f.Fetch(context.Background(), record.Task{ID: "1", URL: url})
		if strings.Contains(res.Error, "s3cret") || !strings.Contains(res.Error, want) || !strings.Contains(res.Error, "404") {
			t.Errorf("error %q; want %q in place of %q", res.Error, want, userinfo)
		}
	}
}

func TestFetchCanceled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"e"`)
		w.Header().Set("Content-Length", "2000000")
		w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	f := newFetcher(t, Options{Retries: 5})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	res := f.Fetch(ctx, record.Task{ID: "1", URL: srv.URL + "/c"})
	if res.Outcome != record.Failed || !res.Retryable || !strings.Contains(res.Error, "canceled") || res.Attempt != 1 {
		t.Errorf("got %+v; want one retryable 'canceled' failure", res)
	}
	// The 1000 bytes received are a valid prefix with a validator: kept.
	if got := files(t, f.o.Dir); len(got) != 2 {
		t.Errorf("download directory holds %v; want the .part and its meta", got)
	}
}

// TestRedirectSendsNoReferer: a redirect does not tell the next host the URL
// it came from, whose query may hold a token (a signed URL redirected to a
// CDN); a Referer the operator configured is sent as it is.
func TestRedirectSendsNoReferer(t *testing.T) {
	body := content(5000, 9)
	var cdn counter
	to := httptest.NewServer(cdn.wrap(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer to.Close()
	from := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, to.URL+"/blob/1", http.StatusFound)
	}))
	defer from.Close()
	for _, configured := range []string{"", "https://mine.example/"} {
		o := Options{}
		if configured != "" {
			o.Header = http.Header{"Referer": {configured}}
		}
		f := newFetcher(t, o)
		res := f.Fetch(context.Background(), record.Task{ID: "1", URL: from.URL + "/get/report.pdf?token=s3cret"})
		checkDone(t, res, body)
		if got := cdn.last().Header.Get("Referer"); got != configured {
			t.Errorf("the redirect's target got Referer %q, want %q", got, configured)
		}
	}
}

// TestFetchHidesQueryToken: the token in a signed URL's query is in no error
// and no log line, on a retry, a final status or a refused redirect; the
// result's url is the task's, as given.
func TestFetchHidesQueryToken(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/ftp":
			w.Header().Set("Location", "ftp://h/x?sig=s3cret")
			w.WriteHeader(http.StatusFound)
		case n.Add(1) == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	var logs syncBuffer
	f := newFetcher(t, Options{Retries: 1, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	for _, u := range []string{srv.URL + "/f.bin?token=s3cret", srv.URL + "/ftp?token=s3cret"} {
		res := f.Fetch(context.Background(), record.Task{ID: u, URL: u})
		if res.Outcome != record.Failed || strings.Contains(res.Error, "s3cret") || !strings.Contains(res.Error, "token=xxxxx") || res.URL != u {
			t.Errorf("result %+v; want a failure whose error hides the token", res)
		}
	}
	if got := logs.String(); strings.Contains(got, "s3cret") || !strings.Contains(got, "retrying") {
		t.Errorf("log shows the token, or no retry:\n%s", got)
	}
}

// syncBuffer is a bytes.Buffer that a logger may write from any goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRedirectKeepsCredentialsOnTheOrigin: configured credentials follow a
// redirect on the task URL's scheme, host and port, and are not sent to
// another port of the same host (net/http would), nor beyond.
func TestRedirectKeepsCredentialsOnTheOrigin(t *testing.T) {
	body := content(3000, 10)
	var other, same counter
	to := httptest.NewServer(other.wrap(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer to.Close()
	from := httptest.NewServer(same.wrap(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/here":
			http.Redirect(w, r, "/there", http.StatusFound)
		case "/there":
			w.Write(body)
		default:
			http.Redirect(w, r, to.URL+"/f", http.StatusFound)
		}
	}))
	defer from.Close()
	f := newFetcher(t, Options{Header: http.Header{"Authorization": {"Bearer s3cret"}, "Cookie": {"session=s3cret"}}})
	checkDone(t, f.Fetch(context.Background(), record.Task{ID: "1", URL: from.URL + "/here"}), body)
	if h := same.last().Header; h.Get("Authorization") == "" || h.Get("Cookie") == "" {
		t.Errorf("a redirect on the same origin lost the credentials: %v", h)
	}
	checkDone(t, f.Fetch(context.Background(), record.Task{ID: "2", URL: from.URL + "/away"}), body)
	if h := other.last().Header; h.Get("Authorization") != "" || h.Get("Cookie") != "" {
		t.Errorf("another port of the host got the credentials: %v", h)
	}
}
