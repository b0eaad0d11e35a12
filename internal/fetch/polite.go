package fetch

import (
	"context"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/time/rate"
)

// hostLimit lets at most n transfers at a time talk to one host (by the
// task URL's host and port), across all of a Fetcher's concurrent
// transfers. A waiting transfer holds no connection and no stall timer:
// waiting for our own limit is not the server stalling.
//
// The limit counts the host a task names, not the one a redirect leads to:
// that is the host an operator knows and asks to spare.
type hostLimit struct {
	n     int
	mu    sync.Mutex
	hosts map[string]*hostSlots // only hosts with transfers active or waiting
}

type hostSlots struct {
	slots chan struct{}
	users int // transfers holding or waiting for a slot
}

func newHostLimit(n int) *hostLimit {
	if n <= 0 {
		return nil
	}
	return &hostLimit{n: n, hosts: map[string]*hostSlots{}}
}

// acquire waits for a slot for rawURL's host and returns the function that
// gives it back. Without a limit it returns at once.
func (l *hostLimit) acquire(ctx context.Context, rawURL string) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	host := hostOf(rawURL)
	l.mu.Lock()
	h := l.hosts[host]
	if h == nil {
		h = &hostSlots{slots: make(chan struct{}, l.n)}
		l.hosts[host] = h
	}
	h.users++
	l.mu.Unlock()
	done := func() {
		l.mu.Lock()
		h.users--
		if h.users == 0 {
			delete(l.hosts, host) // a million hosts must not leave a million entries
		}
		l.mu.Unlock()
	}
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots; done() }, nil
	case <-ctx.Done():
		done()
		return nil, context.Cause(ctx)
	}
}

func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	return strings.ToLower(u.Host)
}

// Bounds of the limiter's burst, which is also the largest read a
// rate-limited transfer makes: small enough that a low limit is smooth,
// large enough that a high one costs few wake-ups.
const (
	minBurst = 4 << 10
	maxBurst = bufSize
)

// newRateLimit returns a limiter for bytesPerSec shared by every transfer,
// or nil for no limit.
func newRateLimit(bytesPerSec int64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	burst := min(max(bytesPerSec/8, minBurst), maxBurst)
	return rate.NewLimiter(rate.Limit(bytesPerSec), int(burst))
}
