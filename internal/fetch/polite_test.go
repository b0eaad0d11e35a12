package fetch

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/record"
)

// inFlight counts the requests a handler is serving at once, per Host
// header.
type inFlight struct {
	mu       sync.Mutex
	now, max map[string]int
}

func (c *inFlight) wrap(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		if c.now == nil {
			c.now, c.max = map[string]int{}, map[string]int{}
		}
		c.now[r.Host]++
		c.max[r.Host] = max(c.max[r.Host], c.now[r.Host])
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.now[r.Host]--
			c.mu.Unlock()
		}()
		h(w, r)
	}
}

func (c *inFlight) peak(host string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max[host]
}

// slowBody serves n bytes in 4 KiB pieces, pausing between them: a transfer
// that is slow but never stalls.
func slowBody(n int, pause time.Duration) http.HandlerFunc {
	body := content(n, 31)
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(n))
		for off := 0; off < n; off += 4096 {
			if _, err := w.Write(body[off:min(off+4096, n)]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(pause)
		}
	}
}

// TestPerHost: at most PerHost transfers talk to one host, waiting for a
// slot is no stall, and two hosts have their own slots.
func TestPerHost(t *testing.T) {
	var c inFlight
	// Each request takes about 160 ms, longer than the stall timeout, so a
	// transfer that counted its wait for a slot as a stall would fail.
	srv := httptest.NewServer(c.wrap(slowBody(64<<10, 10*time.Millisecond)))
	defer srv.Close()
	f := newFetcher(t, Options{PerHost: 2, StallTimeout: 100 * time.Millisecond})

	other := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	var wg sync.WaitGroup
	results := make([]record.Result, 12)
	for i := range results {
		base := srv.URL
		if i%3 == 0 {
			base = other
		}
		wg.Go(func() {
			results[i] = f.Fetch(context.Background(), record.Task{ID: strconv.Itoa(i), URL: base + "/f"})
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.Outcome != record.Done {
			t.Errorf("task %d: %s", i, r.Error)
		}
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if p := c.peak(host); p != 2 {
		t.Errorf("%s served up to %d at once, want 2", host, p)
	}
	if p := c.peak(strings.TrimPrefix(other, "http://")); p < 1 || p > 2 {
		t.Errorf("localhost served up to %d at once, want 1 or 2", p)
	}
	f.hosts.mu.Lock()
	left := len(f.hosts.hosts)
	f.hosts.mu.Unlock()
	if left != 0 {
		t.Errorf("%d hosts still tracked after every transfer ended", left)
	}
}

// TestPerHostOff: without a limit, many transfers reach one host at once.
func TestPerHostOff(t *testing.T) {
	var c inFlight
	arrived := make(chan struct{}, 8)
	all := make(chan struct{})
	srv := httptest.NewServer(c.wrap(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-all:
		case <-time.After(10 * time.Second):
		}
		w.Write([]byte("x"))
	}))
	defer srv.Close()
	f := newFetcher(t, Options{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { f.Fetch(context.Background(), record.Task{ID: strconv.Itoa(i), URL: srv.URL + "/f"}) })
	}
	for range 8 {
		<-arrived
	}
	close(all)
	wg.Wait()
	if p := c.peak(strings.TrimPrefix(srv.URL, "http://")); p != 8 {
		t.Errorf("peak %d at once, want all 8", p)
	}
}

// TestPerHostWaitCanceled: a transfer still waiting for a slot when its
// context ends fails at once, retryable.
func TestPerHostWaitCanceled(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		w.Write([]byte("a"))
		w.(http.Flusher).Flush()
		<-release
		w.Write([]byte("b"))
	}))
	defer srv.Close()
	defer close(release)
	f := newFetcher(t, Options{PerHost: 1, StallTimeout: time.Minute})
	go f.Fetch(context.Background(), record.Task{ID: "holder", URL: srv.URL + "/a"})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	for {
		f.hosts.mu.Lock()
		n := len(f.hosts.hosts)
		f.hosts.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	res := f.Fetch(ctx, record.Task{ID: "waiter", URL: srv.URL + "/b"})
	if res.Outcome != record.Failed || !res.Retryable || !strings.Contains(res.Error, "waiting for a connection to 127.0.0.1:") {
		t.Errorf("got %+v; want a retryable failure while waiting for a slot", res)
	}
}

// TestLimitRate: the limit holds for all transfers together, and a transfer
// slowed down by it is not a stalled one.
func TestLimitRate(t *testing.T) {
	const size = 384 << 10
	body := content(size, 32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}))
	defer srv.Close()
	const rate = 256 << 10
	f := newFetcher(t, Options{LimitRate: rate, StallTimeout: 50 * time.Millisecond})
	if b := f.limit.Burst(); b != rate/8 {
		t.Fatalf("burst %d, want %d", b, rate/8)
	}
	start := time.Now()
	var wg sync.WaitGroup
	results := make([]record.Result, 2)
	for i := range results {
		wg.Go(func() {
			results[i] = f.Fetch(context.Background(), record.Task{ID: strconv.Itoa(i), URL: srv.URL + "/f"})
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, r := range results {
		checkDone(t, r, body)
	}
	// 768 KiB at 256 KiB/s, less the first burst that is free: at least
	// 2.8 s whatever the machine, since the limiter never runs ahead.
	if floor := time.Duration(float64(2*size-rate/8) / rate * float64(time.Second)); elapsed < floor {
		t.Errorf("took %v for %d bytes, faster than the limit allows (%v)", elapsed, 2*size, floor)
	}
}

// TestLimitRateMaxTime: a limit that cannot meet the max time fails at the
// first read that would pass it, rather than sleeping until then.
func TestLimitRateMaxTime(t *testing.T) {
	body := content(1<<20, 33)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}))
	defer srv.Close()
	f := newFetcher(t, Options{LimitRate: 8 << 10, MaxTime: 2 * time.Second})
	res := f.Fetch(context.Background(), record.Task{ID: "1", URL: srv.URL + "/f"})
	if res.Outcome != record.Failed || !strings.Contains(res.Error, "max time") {
		t.Fatalf("got %+v; want a max time failure", res)
	}
}

func TestNewRejectsNegativePoliteness(t *testing.T) {
	for _, o := range []Options{{PerHost: -1}, {LimitRate: -1}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	if l := newRateLimit(1); l.Burst() != minBurst {
		t.Errorf("burst for 1 B/s: %d", l.Burst())
	}
	if l := newRateLimit(1 << 40); l.Burst() != maxBurst {
		t.Errorf("burst for 1 TiB/s: %d", l.Burst())
	}
}
