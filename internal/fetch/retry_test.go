package fetch

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/record"
)

func TestRetries(t *testing.T) {
	body := content(5000, 11)
	// script answers the n-th request (from 0) with statuses[n], and with the
	// body once past the script.
	script := func(statuses []int, retryAfter string) http.HandlerFunc {
		var mu sync.Mutex
		n := 0
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			i := n
			n++
			mu.Unlock()
			if i < len(statuses) {
				if retryAfter != "" {
					w.Header().Set("Retry-After", retryAfter)
				}
				w.WriteHeader(statuses[i])
				return
			}
			w.Write(body)
		}
	}
	tests := []struct {
		name        string
		handler     http.HandlerFunc
		opts        Options
		realBackoff bool // keep the production backoff
		done        bool
		requests    int
		attempt     int // the task comes with 1
		errWant     string
		minTime     time.Duration
		maxTime     time.Duration
	}{
		{name: "transient then done", handler: script([]int{503, 500}, ""), opts: Options{Retries: 3},
			done: true, requests: 3, attempt: 3},
		{name: "retries exhausted", handler: script([]int{500, 500, 500, 500}, ""), opts: Options{Retries: 2},
			requests: 3, attempt: 4, errWant: "status 500"},
		{name: "no retries configured", handler: script([]int{503}, ""),
			requests: 1, attempt: 2, errWant: "status 503"},
		{name: "final failure not retried", handler: script([]int{404}, ""), opts: Options{Retries: 3},
			requests: 1, attempt: 2, errWant: "status 404"},
		{name: "retry-after honoured", handler: script([]int{429}, "1"), opts: Options{Retries: 1},
			done: true, requests: 2, attempt: 2, minTime: 900 * time.Millisecond, maxTime: 3 * time.Second},
		{name: "retry-after date", opts: Options{Retries: 1},
			handler: func() http.HandlerFunc {
				var once sync.Once
				return func(w http.ResponseWriter, r *http.Request) {
					failed := false
					once.Do(func() {
						// Dated when asked: HTTP dates have whole seconds,
						// so this is between one and two seconds away.
						w.Header().Set("Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
						w.WriteHeader(503)
						failed = true
					})
					if !failed {
						w.Write(body)
					}
				}
			}(),
			done: true, requests: 2, attempt: 2, minTime: 900 * time.Millisecond, maxTime: 4 * time.Second},
		{name: "retry-after too long goes back to the queue", handler: script([]int{503}, "120"), opts: Options{Retries: 3},
			requests: 1, attempt: 2, errWant: "status 503 Service Unavailable (retry after 2m0s)", maxTime: time.Second},
		{name: "no wait past max time", handler: script([]int{503}, "1"), opts: Options{Retries: 3, MaxTime: 300 * time.Millisecond},
			requests: 1, attempt: 2, errWant: "status 503", maxTime: 250 * time.Millisecond},
		{name: "first retry within a second", handler: script([]int{500}, ""), opts: Options{Retries: 1}, realBackoff: true,
			done: true, requests: 2, attempt: 2, minTime: 200 * time.Millisecond, maxTime: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c counter
			srv := httptest.NewServer(c.wrap(tt.handler))
			defer srv.Close()
			f := newFetcher(t, tt.opts)
			if tt.realBackoff {
				f.firstBackoff = 500 * time.Millisecond
			}
			start := time.Now()
			res := f.Fetch(context.Background(), record.Task{ID: "1", URL: srv.URL + "/r", Attempt: 1})
			elapsed := time.Since(start)
			if tt.done {
				checkDone(t, res, body)
			} else if res.Outcome != record.Failed || !strings.Contains(res.Error, tt.errWant) {
				t.Errorf("got %+v; want failure %q", res, tt.errWant)
			}
			if c.n() != tt.requests {
				t.Errorf("%d requests, want %d", c.n(), tt.requests)
			}
			if res.Attempt != tt.attempt {
				t.Errorf("attempt %d, want %d", res.Attempt, tt.attempt)
			}
			if elapsed < tt.minTime || (tt.maxTime > 0 && elapsed > tt.maxTime) {
				t.Errorf("took %v, want between %v and %v", elapsed, tt.minTime, tt.maxTime)
			}
		})
	}
}

func TestRetriesConnectionRefused(t *testing.T) {
	f := newFetcher(t, Options{Retries: 2})
	res := f.Fetch(context.Background(), record.Task{ID: "1", URL: closedPort(t)})
	if res.Outcome != record.Failed || !res.Retryable || res.Attempt != 3 || res.HTTP != 0 {
		t.Errorf("got %+v; want a retryable failure after 3 attempts", res)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"5", 5 * time.Second},
		{" 7 ", 7 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"99999999999999999", 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.in, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
