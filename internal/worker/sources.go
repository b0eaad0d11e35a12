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

	"github.com/dlkit/dl/internal/outage"
	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/tool"
)

// Mode is how long a queue worker runs, as in the original design.
type Mode string

// The original design's modes.
const (
	Forever Mode = "forever" // until the exit flag or a signal
	Once    Mode = "once"    // one task (waiting up to one poll for it)
	Batch   Mode = "batch"   // until the queue is empty
)

// ParseMode accepts forever, once or batch.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Forever, Once, Batch:
		return m, nil
	}
	return "", fmt.Errorf("mode %q: want forever, once or batch", s)
}

// QueueOptions tune RunQueue.
type QueueOptions struct {
	Options
	Mode   Mode
	Lease  time.Duration // a worker's hold on a task, renewed every third of it
	Worker string        // names this process in the rows it holds
	Poll   time.Duration // longest wait on an empty queue before looking at the exit flag again
}

// RunQueue works on tasks popped from the Redis queue until the mode says
// stop, the exit flag is set, or ctx is done. Popped tasks are taken in MySQL
// (a delivery is counted and the lease shortened to a worker's) and their
// leases renewed while they are in progress.
func RunQueue(ctx context.Context, f Fetcher, st *store.Store, q *queue.Queue, o QueueOptions, out io.Writer) error {
	if o.Mode != Once && o.Prefetch == 0 {
		o.Prefetch = o.Concurrency
	}
	if o.Poll <= 0 {
		o.Poll = time.Second // the flag's watcher ticks at it
	}
	held := &heldTasks{m: map[heldKey]record.Task{}}
	// The exit flag stops the worker as a first signal does, through ctx,
	// so that the same --stop-timeout bounds it: an operator who sets the
	// timeout expects no stop to outlast it, and a transfer that never
	// ends (a trickling origin) would otherwise hold a flagged worker, and
	// its row, for ever.
	ctx, flagged := context.WithCancel(ctx)
	defer flagged()
	ctx, unbound := tool.StopWithin(ctx, o.StopTimeout)
	defer unbound()
	// Taken from the command's context: the feed's own is cancelled by
	// any stop and does not carry it.
	hard := tool.Hard(ctx)
	renewCtx, stopRenew := context.WithCancel(context.WithoutCancel(ctx))
	var renewer sync.WaitGroup
	renewer.Add(1)
	go func() {
		defer renewer.Done()
		held.renew(renewCtx, st, o.Lease)
	}()
	defer func() { stopRenew(); renewer.Wait() }()

	var pops feed // below: pops tasks and takes them until ctx is done
	exitFlag := func(ctx context.Context) (bool, error) {
		var set bool
		err := outage.Retry(ctx, "redis", queue.IsUnavailable, func() (err error) { set, err = q.ExitFlag(ctx); return err })
		return set, err
	}
	// The flag is watched apart from the pops, and for the whole run: with
	// every transfer busy (long downloads) the feed waits for one to go
	// idle, and the tasks taken meanwhile would start after the flag
	// instead of going back; and once the feed has ended (once, or batch
	// on an empty queue) the transfers still in flight must stop on it too.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchFailed, failWatch := context.WithCancelCause(context.Background())
	defer failWatch(nil)
	var watcher sync.WaitGroup
	src := func(ctx context.Context, s *slots, tasks chan<- record.Task) error {
		set, err := exitFlag(ctx)
		if err != nil {
			return err
		}
		if set {
			slog.Info("exit flag is set: finishing the transfers in flight", "flag", q.Keys().ExitFlag)
			flagged()
			return nil
		}
		watcher.Add(1)
		go func() {
			defer watcher.Done()
			watchExitFlag(watchCtx, q, o.Poll, flagged, failWatch)
		}()
		// A flag that cannot be read ends the feed in error.
		ctx, stopPops := context.WithCancel(ctx)
		defer stopPops()
		defer context.AfterFunc(watchFailed, stopPops)()
		err = pops(ctx, s, tasks)
		if watchFailed.Err() != nil {
			return context.Cause(watchFailed)
		}
		return err
	}
	pops = func(ctx context.Context, s *slots, tasks chan<- record.Task) error {
		for {
			want := o.Concurrency + o.Finishing + o.Prefetch
			if o.Mode == Once {
				want = 1
			}
			n, err := s.acquire(ctx, want)
			if err != nil {
				return err
			}
			if o.Mode != Once {
				// While the transfers have prefetched tasks to start, wait
				// for more of them to go idle, so that one pop and one take
				// cover many tasks: that is what keeps the round trips and
				// statements per file low when files finish one by one.
				n = s.gather(ctx, n, want/4, func() bool { return len(tasks) > 0 })
			}
			var got []record.Task
			var bad []error
			err = outage.Retry(ctx, "redis", queue.IsUnavailable, func() (err error) { got, bad, err = q.Pop(ctx, n); return err })
			if err != nil {
				s.release(n)
				return err
			}
			if len(got) == 0 && len(bad) == 0 && o.Mode != Batch {
				s.release(n - 1)
				n = 1
				err = outage.Retry(ctx, "redis", queue.IsUnavailable, func() (err error) { got, bad, err = q.Wait(ctx, o.Poll); return err })
				if err != nil {
					s.release(1)
					return err
				}
			}
			for _, e := range bad {
				slog.Error("dropping a queue entry that is not a task", "queue", q.Keys().Queue, "err", e)
			}
			if len(got) == 0 && (o.Mode != Forever) && len(bad) == 0 {
				s.release(n)
				return nil // batch: the queue is empty; once: nothing came
			}
			if len(got) < n {
				s.release(n - len(got))
			}
			if len(got) == 0 {
				continue
			}
			// Popped tasks are taken even if a stop (a first signal, the
			// exit flag, a full disk) comes now: the take may have changed
			// the rows already, and what it returns is either run or given
			// back. A second signal ends the wait on an outage too; the
			// leases bring the rows back.
			wctx := hard
			var taken []record.Task
			// One token for the batch, kept across the retries: a take whose
			// answer was lost may have claimed the original distributor's
			// rows under it, and the take made again must find them so.
			seedToken := store.NewToken()
			err = outage.Retry(wctx, "mysql", store.IsUnavailable, func() (err error) {
				taken, err = st.Take(wctx, got, o.Lease, o.Worker, seedToken)
				return err
			})
			// Every popped task holds a slot: give back those not to be run
			// (all on an error; stale copies that Take left out).
			s.release(len(got) - len(taken))
			if err != nil {
				return err
			}
			if dropped := len(got) - len(taken); dropped > 0 {
				// Stale copies (claimed again since), second copies another
				// worker took and finished rows are dropped; if all are, the
				// queue may belong to another table.
				slog.Warn("dropping popped tasks whose rows are not held under their tokens in this table",
					"dropped", dropped, "popped", len(got), "queue", q.Keys().Queue, "table", st.Table())
			}
			got = taken
			held.add(got)
			for _, t := range got {
				// A slot was acquired for t, so a transfer is idle unless the
				// engine is failing; then the lease brings t back.
				select {
				case tasks <- t:
				case <-s.failed:
					return nil
				}
			}
			if o.Mode == Once {
				return nil
			}
		}
	}
	var skippedMu sync.Mutex
	var skipped []record.Task
	ran, err := run(ctx, f, o.Options, out, src, held.remove, func(t record.Task) {
		skippedMu.Lock()
		defer skippedMu.Unlock()
		skipped = append(skipped, t)
	})
	stopWatch()
	watcher.Wait()
	if err == nil && watchFailed.Err() != nil {
		err = context.Cause(watchFailed) // after the feed had ended
	}
	if len(skipped) > 0 {
		// Taken but never started, or abandoned by the stop: back to
		// pending at once, rather than after their leases run out, and
		// without counting the delivery, so that deploys that cut a long
		// download never add up to the poison limit.
		abandoned := ran.abandoned.Load()
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second) // a stop must not hang on MySQL
		defer cancel()
		if gerr := st.GiveBack(gctx, skipped); gerr != nil {
			slog.Warn("cannot give back tasks not started or abandoned; their rows come back when their leases run out",
				"tasks", len(skipped), "abandoned", abandoned, "err", gerr)
		} else {
			slog.Info("gave back tasks not started or abandoned", "tasks", len(skipped), "abandoned", abandoned)
		}
		for _, t := range skipped {
			held.remove(t)
		}
	}
	return err
}

// watchExitFlag reads the exit flag every poll until ctx ends. Set, it stops
// the run through flagged, as a first signal does; an error other than an
// outage goes to fail. An outage is waited out (and reported by the pops
// while they run): the flag is read again at the next tick.
func watchExitFlag(ctx context.Context, q *queue.Queue, every time.Duration, flagged func(), fail context.CancelCauseFunc) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		set, err := q.ExitFlag(ctx)
		if err != nil && ctx.Err() == nil && !queue.IsUnavailable(err) {
			fail(err)
			return
		}
		if set {
			slog.Info("exit flag is set: finishing the transfers in flight", "flag", q.Keys().ExitFlag)
			flagged()
			return
		}
	}
}

// heldTasks are the tasks this process holds leases on, by claim: a row
// whose lease ran out while this process worked on it may come back to it
// under a new claim, and the old claim's end must not end the new one's
// renewal.
type heldTasks struct {
	mu sync.Mutex
	m  map[heldKey]record.Task
}

type heldKey struct{ id, token string }

func (h *heldTasks) add(ts []record.Task) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range ts {
		h.m[heldKey{t.ID, t.Token}] = t
	}
}

func (h *heldTasks) remove(t record.Task) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, heldKey{t.ID, t.Token})
}

func (h *heldTasks) snapshot() []record.Task {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]record.Task, 0, len(h.m))
	for _, t := range h.m {
		out = append(out, t)
	}
	return out
}

// renew extends the leases of held tasks every third of a lease, so a long
// download is never handed to another worker while this one is alive.
func (h *heldTasks) renew(ctx context.Context, st *store.Store, lease time.Duration) {
	t := time.NewTicker(lease / 3)
	defer t.Stop()
	var failingSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := st.Renew(ctx, h.snapshot(), lease)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil && failingSince.IsZero():
				failingSince = time.Now()
				slog.Warn("cannot renew leases; transfers go on, and if this lasts longer than a lease their rows may be handed to another worker", "err", err)
			case err == nil && !failingSince.IsZero():
				slog.Info("renewing leases again", "after", time.Since(failingSince).Round(time.Second))
				failingSince = time.Time{}
			}
		}
	}
}

// RunLines works on task lines (or bare URLs) read from in until it ends.
// Bad lines are reported and skipped; the error at the end counts them and
// any failed downloads.
func RunLines(ctx context.Context, f Fetcher, in io.Reader, o Options, out io.Writer) error {
	ctx, unbound := tool.StopWithin(ctx, o.StopTimeout)
	defer unbound()
	bad := 0
	var ended atomic.Bool // the input was read to its end
	src := func(ctx context.Context, s *slots, tasks chan<- record.Task) error {
		lines := make(chan record.Task)
		readErr := make(chan error, 1)
		// The reader is not waited for when ctx ends: it may be blocked in a
		// read of a terminal, and the process is about to exit anyway.
		go func() {
			defer close(lines)
			readErr <- record.ReadAll(ctx, in, record.ParseTask, lines, func(b record.BadLine) {
				bad++
				slog.Error("skipping bad task line", "line", b.Line, "err", b.Err)
			})
		}()
		for {
			var t record.Task
			select {
			case v, ok := <-lines:
				if !ok {
					ended.Store(true)
					return <-readErr
				}
				t = v
			case <-ctx.Done():
				return ctx.Err()
			}
			if _, err := s.acquire(ctx, 1); err != nil {
				return err
			}
			select {
			case tasks <- t:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	var skipped atomic.Int64
	st, err := run(ctx, f, o, out, src, nil, func(record.Task) { skipped.Add(1) })
	return summary(st, err, bad, !ended.Load() || skipped.Load() > st.abandoned.Load())
}

// RunURLs downloads the given URLs.
func RunURLs(ctx context.Context, f Fetcher, urls []string, o Options, out io.Writer) error {
	ctx, unbound := tool.StopWithin(ctx, o.StopTimeout)
	defer unbound()
	var tasks []record.Task
	for _, u := range urls {
		t, err := record.ParseTask([]byte(u))
		if err != nil {
			return fmt.Errorf("argument %q: %w", record.RedactURL(u), err)
		}
		tasks = append(tasks, t)
	}
	var ended atomic.Bool // every URL was handed to a transfer
	var skipped atomic.Int64
	st, err := run(ctx, f, o, out, listFeed(tasks, &ended), nil, func(record.Task) { skipped.Add(1) })
	return summary(st, err, 0, !ended.Load() || skipped.Load() > st.abandoned.Load())
}

// listFeed hands tasks over one by one, each when a transfer is idle, and
// sets ended once all were handed over.
func listFeed(tasks []record.Task, ended *atomic.Bool) feed {
	return func(ctx context.Context, s *slots, out chan<- record.Task) error {
		for _, t := range tasks {
			if _, err := s.acquire(ctx, 1); err != nil {
				return err
			}
			select {
			case out <- t:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		ended.Store(true)
		return nil
	}
}

// summary turns a run of a line or URL source into the exit status: like
// curl and wget, a failed download makes the command fail, and so does a
// stop (a signal, the exit flag) before every task was started, so that
// "dl-fetch - < urls && next" never takes a partial run for a whole one.
func summary(st *stats, err error, bad int, cut bool) error {
	if err != nil {
		return err
	}
	var msg string
	if cut {
		msg = fmt.Sprintf("stopped before every task was started, after %d downloads", st.done.Load()+st.failed.Load())
	}
	if n := st.abandoned.Load(); n > 0 {
		if msg != "" {
			msg += "; "
		}
		msg += fmt.Sprintf("%d downloads abandoned in flight", n)
	}
	if n := st.failed.Load(); n > 0 {
		if msg != "" {
			msg += "; "
		}
		msg += fmt.Sprintf("%d of %d downloads failed", n, n+st.done.Load())
	}
	if bad > 0 {
		if msg != "" {
			msg += "; "
		}
		msg += fmt.Sprintf("%d bad task lines skipped", bad)
	}
	if msg != "" {
		return errors.New(msg)
	}
	return nil
}
