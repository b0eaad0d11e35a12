// Package worker is dl-fetch's engine: it feeds tasks from one source (the
// Redis queue, task lines on stdin, or URL arguments) to a fixed number of
// concurrent transfers and writes one result line per task from a single
// goroutine that owns stdout.
//
// Shutdown order: a first SIGINT/SIGTERM or the exit flag stops the feed;
// tasks still waiting for a slot in the Fetcher go back to their source
// unstarted; transfers in flight finish, without retries, and their results
// are written; then stdout is flushed and Run returns. A second signal (or
// the end of --stop-timeout after the first stop, a signal or the exit flag)
// abandons the transfers: their results are not written, their .part files
// stay for the next delivery to resume, and their tasks go back to their
// source as the unstarted ones do, so that a stop is never charged to a
// task.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/tool"
)

// Fetcher downloads one task. It returns a result unless stop ended while
// the task waited for a transfer to start it (started false): then the task
// is given back like one the feed handed over too late. stop also ends
// in-process retries; ctx, the second signal, ends the transfer itself.
type Fetcher interface {
	FetchUnlessStopped(stop, ctx context.Context, t record.Task) (r record.Result, started bool)
}

// Options tune Run.
type Options struct {
	Concurrency int
	// Finishing is how many tasks beyond Concurrency may be at work at once:
	// those whose body is in and whose file is being synced and renamed,
	// while the Fetcher (whose Transfers limit is Concurrency) starts the
	// next transfers. 0: none.
	Finishing int
	// Prefetch is how many tasks the feed may hold ready beyond those in
	// flight; they count as taken (leased and renewed) while they wait.
	Prefetch int
	// StatsEvery is how often a statistics line is logged; 0: never.
	StatsEvery time.Duration
	// StopTimeout bounds a stop (a first signal, or the exit flag in queue
	// mode): this long after it, the transfers still in flight are
	// abandoned as on a second signal. 0: they are waited for without end.
	StopTimeout time.Duration
}

// feed sends tasks to the transfers. It must acquire a slot for every task it
// sends and stop when ctx is done. It returns nil when its source is spent.
type feed func(ctx context.Context, s *slots, tasks chan<- record.Task) error

// run is the engine shared by every source. onResult is called after a
// result is handed to the writer (to drop the task's lease). onSkip is
// called for each prefetched task not started because a stop came first
// (the first signal, the exit flag, a full disk): a stop finishes what has
// started, and the source gives the rest back. It is called too for each
// transfer abandoned by a stop that would not wait (tool.Hard: a second
// signal, --stop-timeout): a stop is no fault of the task, and must not
// count against it. Either may be nil.
func run(ctx context.Context, f Fetcher, o Options, out io.Writer, src feed, onResult, onSkip func(record.Task)) (*stats, error) {
	hard := tool.Hard(ctx)
	g, gctx := errgroup.WithContext(hard)
	// The feed stops on the first stop (ctx: a signal, or the exit flag,
	// which RunQueue turns into one) or on any failure (gctx).
	// It derives from ctx, so that it is done as soon as the stop is in:
	// it is also the stop of the tasks the Fetcher holds for a slot, and one
	// that got a slot right after the signal must not start.
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	defer context.AfterFunc(gctx, stopFeed)()

	// Prefetched tasks wait in the channel, so a transfer that finishes
	// starts the next task at once instead of waiting for the feed's round
	// trips (pop, take), which in turn are made for many tasks at a time.
	tasks := make(chan record.Task, o.Prefetch)
	workers := o.Concurrency + o.Finishing
	results := make(chan record.Result, workers)
	sl := newSlots(workers+o.Prefetch, gctx.Done())
	st := &stats{begin: time.Now()}

	g.Go(func() error { return record.WriteLines(out, results) })
	g.Go(func() error {
		defer close(tasks)
		err := src(feedCtx, sl, tasks)
		if feedCtx.Err() != nil && gctx.Err() == nil {
			return nil // stopped by a signal or the exit flag: not an error
		}
		return err
	})
	// The first failure of our own disk (full, read-only, not ours to
	// write) stops the feed as the exit flag does: every task would fail
	// the same way, and a worker that went on would fail the whole queue.
	// The run then ends in error.
	var refused atomic.Pointer[record.Result]
	if onSkip == nil {
		onSkip = func(record.Task) {}
	}
	// A transfer the stop cut short: its result is the stop's, not the
	// task's (a failure would charge an attempt), so it goes back as an
	// unstarted task does, given back uncharged. Its .part stays.
	abandon := func(t record.Task) {
		st.abandoned.Add(1)
		slog.Warn("abandoned in flight", "id", record.RedactURL(t.ID))
		onSkip(t)
	}
	var transfers sync.WaitGroup
	for range workers {
		transfers.Add(1)
		go func() {
			defer transfers.Done()
			for t := range tasks {
				// After a stop nothing new starts: a task the feed handed
				// over as the stop came goes back to its source, if it has
				// a way back (the queue), or is left like the lines unread.
				if feedCtx.Err() != nil {
					sl.release(1)
					onSkip(t)
					continue
				}
				// feedCtx is the stop: a first signal, the exit flag, a
				// refused file or a failure. A task the Fetcher was still
				// holding for a slot (per host, or a transfer) when it came
				// has not started, and goes back as the skipped ones do.
				st.started.Add(1)
				r, started := f.FetchUnlessStopped(feedCtx, hard, t)
				sl.release(1)
				if !started {
					st.started.Add(-1)
					onSkip(t)
					continue
				}
				if hard.Err() != nil {
					abandon(t)
					continue
				}
				select {
				case results <- r:
				case <-gctx.Done():
					// The stop came between the look above and the
					// hand-over.
					abandon(t)
					return
				}
				st.add(r)
				if onResult != nil {
					onResult(t)
				}
				if r.Local {
					// A copy, so that only this rare result goes to the heap.
					if first := r; refused.CompareAndSwap(nil, &first) {
						slog.Error("the download directory refused a file: taking no more tasks", "id", record.RedactURL(r.ID), "err", r.Error)
						stopFeed()
					}
				}
			}
		}()
	}
	g.Go(func() error {
		transfers.Wait()
		close(results)
		return nil
	})
	if o.StatsEvery > 0 {
		statsDone := make(chan struct{})
		defer close(statsDone)
		go st.log(o.StatsEvery, statsDone)
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil && hard.Err() != nil {
		// A stop that abandoned the transfers (a second signal, the stop
		// timeout) is a stop asked for, not a failure: what it cut short
		// goes back to its source.
		err = nil
	}
	st.logLine("finished")
	if r := refused.Load(); r != nil && err == nil {
		err = fmt.Errorf("%w: task %s: %s", ErrDiskRefused, record.RedactURL(r.ID), r.Error)
	}
	return st, err
}

// ErrDiskRefused ends a run that stopped because the download directory
// refused a file (full, below the floor of free space, read-only, not
// writable by this user, or not a directory): the tasks it had not started
// are left for later (given back, in queue mode), and those that failed on it
// were not charged.
var ErrDiskRefused = errors.New("stopped taking tasks: the download directory's filesystem is full, below --min-free, read-only, failing (I/O error), not writable by this user or not a directory")

// slots counts idle transfers, so a feed can pop as many tasks at once as
// there are transfers to take them.
type slots struct {
	idle   chan struct{}
	failed <-chan struct{} // closed when the engine fails and no transfer will take a task
}

func newSlots(n int, failed <-chan struct{}) *slots {
	s := &slots{idle: make(chan struct{}, n), failed: failed}
	s.release(n)
	return s
}

// acquire waits for one idle transfer and takes up to max-1 more that are
// idle too; it returns how many it took.
func (s *slots) acquire(ctx context.Context, max int) (int, error) {
	select {
	case <-s.idle:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	n := 1
	for n < max {
		select {
		case <-s.idle:
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

// gather waits for more idle transfers, one at a time, until it holds min
// (it holds n already) or busy says the transfers may run dry; it returns
// how many it holds.
func (s *slots) gather(ctx context.Context, n, min int, busy func() bool) int {
	for n < min && busy() {
		select {
		case <-s.idle:
			n++
		case <-ctx.Done():
			return n
		case <-s.failed:
			return n
		}
	}
	return n
}

func (s *slots) release(n int) {
	for i := 0; i < n; i++ {
		s.idle <- struct{}{}
	}
}

// stats counts what the engine did, for the periodic line and the exit code.
type stats struct {
	started, done, failed, bytes atomic.Int64
	abandoned                    atomic.Int64 // started, then given up by a stop that would not wait
	begin                        time.Time
}

func (s *stats) add(r record.Result) {
	if r.Outcome == record.Done {
		s.done.Add(1)
		s.bytes.Add(r.Bytes)
	} else {
		s.failed.Add(1)
	}
}

func (s *stats) log(every time.Duration, done <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			s.logLine("progress")
		}
	}
}

func (s *stats) logLine(msg string) {
	if s.started.Load() == 0 {
		return
	}
	secs := time.Since(s.begin).Seconds()
	slog.Info(msg, "done", s.done.Load(), "failed", s.failed.Load(), "in_flight", s.started.Load()-s.done.Load()-s.failed.Load()-s.abandoned.Load(),
		"bytes", s.bytes.Load(), "files_per_s", fmt.Sprintf("%.1f", float64(s.done.Load())/secs),
		"mb_per_s", fmt.Sprintf("%.1f", float64(s.bytes.Load())/secs/1e6))
}
