package fetch

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// maxHeaderBytes bounds a response's headers; a hostile origin could
// otherwise make every worker hold megabytes of them.
const maxHeaderBytes = 256 << 10

// NewTransport is dl-fetch's HTTP transport, tuned for many concurrent
// transfers, mostly to one host; connectTimeout 0 means the default. It is
// exported for the benchmark, which measures requests made as dl-fetch makes
// them without the files.
//
// HTTP/2 is left off on purpose (a custom dialer disables it unless forced):
// with HTTP/1.1 each transfer has its own TCP connection, so one slow or
// reset stream does not stall or kill the others, and throughput scales with
// connections as it does for curl.
func NewTransport(connectTimeout time.Duration) *http.Transport {
	if connectTimeout == 0 {
		connectTimeout = defaultConnectTimeout
	}
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            d.DialContext,
		TLSHandshakeTimeout:    connectTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    256, // the default of 2 would reconnect for almost every small file
		IdleConnTimeout:        90 * time.Second,
		DisableCompression:     true, // a gzip body must reach the file as the server sent it
		MaxResponseHeaderBytes: maxHeaderBytes,
		ReadBufferSize:         64 << 10,
	}
}

// checkLocation is the transport under the client's redirect handling. For
// a redirect whose Location does not parse, net/http's error quotes the
// header, whose text a broken or hostile server chooses: a password or a
// token would reach the logs and the row's error_message. It fails such a
// response first, naming only its status. The test is net/http's own: the
// statuses it follows (for a request without a body, as ours are), and the
// Location parsed against the request's URL.
type checkLocation struct{ rt http.RoundTripper }

func (c checkLocation) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		if loc := resp.Header.Get("Location"); loc != "" {
			if _, err := req.URL.Parse(loc); err != nil {
				resp.Body.Close()
				return nil, &locationError{status: resp.StatusCode}
			}
		}
	}
	return resp, nil
}

// locationError is a redirect whose Location does not parse. Asking again
// gets the same answer, so it is final.
type locationError struct{ status int }

func (e *locationError) Error() string {
	return "redirect to an unparsable Location (status " + statusText(e.status) + ")"
}

// checkRedirect follows at most limit redirects (none when limit < 0), and only
// to http and https: a redirect must not turn a download into a request for
// a local file or another protocol.
func checkRedirect(limit int) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return fmt.Errorf("redirect to %s: %w", redact(req.URL.String()), errScheme)
		}
		if len(via) > limit {
			return fmt.Errorf("%w (limit %d)", errRedirects, max(limit, 0))
		}
		// net/http sends the previous URL, query and all, as the Referer:
		// the token of a signed URL would reach the host it redirects to,
		// a CDN say. Only a Referer the operator configured goes on.
		req.Header.Del("Referer")
		if ref, ok := via[0].Header["Referer"]; ok {
			req.Header["Referer"] = ref
		}
		// net/http passes credentials (a configured Authorization or
		// Cookie, or the task URL's user and password) on to any port of
		// the same host, and from https to http: to another service, or in
		// clear text. They go on only while every hop stays on the task
		// URL's scheme, host and port, as curl does.
		for _, r := range append(via[1:], req) {
			if !sameOrigin(via[0].URL, r.URL) {
				for _, k := range []string{"Authorization", "Www-Authenticate", "Cookie", "Cookie2"} {
					req.Header.Del(k)
				}
				break
			}
		}
		return nil
	}
}

// sameOrigin tells whether a and b have the same scheme, host and port.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) &&
		effectivePort(a) == effectivePort(b)
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// stallMinBytes is the least a transfer must receive in each StallTimeout
// window. Checking for "no byte at all" would let an origin that trickles a
// byte a second hold a worker slot forever.
const stallMinBytes = 1024

// stallWatch cancels a request that receives fewer than stallMinBytes in a
// StallTimeout window, counting from the start, so a server that accepts the
// connection and never answers (or trickles its headers) is cut too.
//
// It also applies the bandwidth limit, since it sits where the body is read.
// A window in which the transfer waited for the limiter is never a stall:
// the slowness is ours, not the server's.
type stallWatch struct {
	r      io.Reader
	n      atomic.Int64 // body bytes read so far
	last   atomic.Int64 // n at the previous check
	got    atomic.Int64 // bytes in the window that was too slow
	d      time.Duration
	timer  *time.Timer
	cancel context.CancelCauseFunc

	ctx       context.Context
	lim       *rate.Limiter
	throttled atomic.Bool // waited for the limiter since the last check
	waiting   atomic.Bool // waiting for it now
}

func watchStall(ctx context.Context, d time.Duration, cancel context.CancelCauseFunc, lim *rate.Limiter) *stallWatch {
	w := &stallWatch{d: d, cancel: cancel, ctx: ctx, lim: lim}
	w.timer = time.AfterFunc(d, w.check)
	return w
}

func (w *stallWatch) check() {
	n := w.n.Load()
	throttled := w.throttled.Swap(false) || w.waiting.Load()
	if got := n - w.last.Load(); got < stallMinBytes && !throttled {
		w.got.Store(got)
		w.cancel(errStalled)
		return
	}
	w.last.Store(n)
	w.timer.Reset(w.d)
}

func (w *stallWatch) stop() { w.timer.Stop() }

// Read reads the body, counting bytes for check, and no faster than the
// limiter allows: a read is cut to its burst and paid for after it returns.
func (w *stallWatch) Read(p []byte) (int, error) {
	if w.lim != nil && len(p) > w.lim.Burst() {
		p = p[:w.lim.Burst()]
	}
	n, err := w.r.Read(p)
	w.n.Add(int64(n))
	if w.lim != nil && n > 0 {
		w.waiting.Store(true)
		werr := w.lim.WaitN(w.ctx, n)
		w.throttled.Store(true) // before waiting goes false, so check never sees neither
		w.waiting.Store(false)
		if werr != nil && err == nil {
			err = werr
			if w.ctx.Err() == nil {
				// WaitN refuses at once a wait that would pass the
				// context's deadline, which only MaxTime sets.
				err = fmt.Errorf("%w: the rate limit leaves too little time", errMaxTime)
			}
		}
	}
	return n, err
}
