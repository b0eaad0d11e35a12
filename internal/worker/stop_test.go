package worker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/fetch"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/testenv"
	"github.com/dlkit/dl/internal/tool"
)

// within bounds every wait of these tests: long enough never to be reached
// on a loaded machine, so reaching it is a failure.
const within = 10 * time.Second

// gatedOrigin answers each request only once its gate is opened; answer
// picks the status. It records the paths asked for and says on arrived when
// a request came in.
type gatedOrigin struct {
	*httptest.Server
	arrived chan string
	gate    chan struct{}
	mu      sync.Mutex
	paths   []string
}

func newGatedOrigin(t *testing.T, answer func(n int) int) *gatedOrigin {
	o := &gatedOrigin{arrived: make(chan string, 16), gate: make(chan struct{})}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.paths = append(o.paths, r.URL.Path)
		n := len(o.paths)
		o.mu.Unlock()
		o.arrived <- r.URL.Path
		<-o.gate
		w.WriteHeader(answer(n))
		w.Write([]byte("body"))
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *gatedOrigin) requests() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.paths)
}

// entered is an Observer that says which tasks have started: got their
// slots, so that a task waiting for one is never seen.
type entered chan string

func (e entered) Start(t record.Task) fetch.Transfer { e <- t.ID; return quietTransfer{} }

type quietTransfer struct{}

func (quietTransfer) Body(int64, int64)           {}
func (quietTransfer) Advance(int)                 {}
func (quietTransfer) Retry(string, time.Duration) {}
func (quietTransfer) End(record.Result)           {}

// startRun runs the engine on tasks with f in the background, as dl-fetch
// does under a command's soft and hard contexts; stop is the first signal,
// done says how the run ended.
func startRun(t *testing.T, f Fetcher, concurrency int, onSkip func(record.Task), tasks ...record.Task) (stop func(), out *testenv.SyncBuffer, done chan error) {
	hard := context.Background()
	ctx, stop := context.WithCancel(tool.WithHard(hard, hard))
	t.Cleanup(stop)
	out = new(testenv.SyncBuffer)
	done = make(chan error, 1)
	go func() {
		_, err := run(ctx, f, Options{Concurrency: concurrency}, out, listFeed(tasks, new(atomic.Bool)), nil, onSkip)
		done <- err
	}()
	return stop, out, done
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(within):
		t.Fatalf("no %s within %s", what, within)
		panic("unreachable")
	}
}

// TestStopGivesBackTasksWaitingForASlot: with one transfer per host, the
// second task for the host waits for the first one's slot. A first stop
// while it waits gives it back untried, and the transfer in flight still
// runs to its end and reports.
func TestStopGivesBackTasksWaitingForASlot(t *testing.T) {
	origin := newGatedOrigin(t, func(int) int { return http.StatusOK })
	in := make(entered, 4)
	f, err := fetch.New(fetch.Options{Dir: t.TempDir(), PerHost: 1, Transfers: 2, Observer: in})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var mu sync.Mutex
	var skipped []string
	onSkip := func(t record.Task) { mu.Lock(); skipped = append(skipped, t.ID); mu.Unlock() }
	stop, out, done := startRun(t, f, 2, onSkip,
		record.Task{ID: "a", URL: origin.URL + "/a"},
		record.Task{ID: "b", URL: origin.URL + "/b"})
	// Both tasks are in Fetch, one of them at the origin: the other waits
	// for the host's slot (or is about to).
	first := strings.TrimPrefix(receive(t, origin.arrived, "request"), "/")
	receive(t, in, "task started")
	// The other task waits for the host's slot by now, unseen by the
	// observer since it has not started; if it were only about to, it is
	// given back all the same.
	time.Sleep(100 * time.Millisecond)
	stop()
	close(origin.gate)
	if err := receive(t, done, "end of the run"); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := origin.requests(); len(got) != 1 {
		t.Errorf("origin saw %v; want only the transfer in flight at the stop", got)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"id":"`+first+`"`) || !strings.Contains(lines[0], `"outcome":"done"`) {
		t.Errorf("results %q; want one, the transfer in flight's, done", out.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if second := map[string]string{"a": "b", "b": "a"}[first]; !slices.Equal(skipped, []string{second}) {
		t.Errorf("given back %v; want [%s], the task that waited", skipped, second)
	}
	if len(in) != 0 {
		t.Errorf("the observer saw the task given back start: %q", <-in)
	}
}

// TestStopEndsRetries: a transfer in flight at the first stop that then
// fails is not tried again in process; its retryable failure is reported
// for the queue's backoff.
func TestStopEndsRetries(t *testing.T) {
	origin := newGatedOrigin(t, func(n int) int {
		if n == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	f, err := fetch.New(fetch.Options{Dir: t.TempDir(), Retries: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop, out, done := startRun(t, f, 1, nil, record.Task{ID: "a", URL: origin.URL + "/a", Attempt: 1})
	receive(t, origin.arrived, "request")
	stop()
	close(origin.gate)
	if err := receive(t, done, "end of the run"); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := origin.requests(); len(got) != 1 {
		t.Errorf("origin saw %v; want no retry after the stop", got)
	}
	if s := out.String(); strings.Count(s, "\n") != 1 || !strings.Contains(s, `"outcome":"failed"`) ||
		!strings.Contains(s, `"retryable":true`) || !strings.Contains(s, `"attempt":2`) || !strings.Contains(s, "503") {
		t.Errorf("results %q; want the 503 as a retryable failure of attempt 2", s)
	}
}
