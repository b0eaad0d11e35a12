// Package distributor is the task distributor's two halves: Select streams
// due rows as task lines (dl-select) and Enqueue claims task lines in MySQL
// and pushes them onto the Redis queue (dl-enqueue).
package distributor

import (
	"context"
	"io"
	"log/slog"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/dlkit/dl/internal/batch"
	"github.com/dlkit/dl/internal/outage"
	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/tool"
)

// Select writes one task line per due row to out, as the rows stream in.
func Select(ctx context.Context, st *store.Store, o store.SelectOptions, out io.Writer) error {
	lines := make(chan record.Task, 256)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return record.WriteLines(out, lines) })
	g.Go(func() error {
		defer close(lines)
		return st.SelectDue(ctx, o, func(t record.Task) error {
			select {
			case lines <- t:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	})
	return g.Wait()
}

// EnqueueOptions tune Enqueue.
type EnqueueOptions struct {
	Claim store.ClaimOptions
	Batch int // most rows per claim and per push
	// RenewMax bounds how many queued tasks have their queue leases renewed
	// before the new lines are read, and so how many the queue may hold:
	// lines beyond it are left unclaimed for a later round. 0 renews none
	// and bounds nothing.
	RenewMax int64
}

// renewQueued extends the queue leases of the tasks still waiting in the
// queue. Each distributor round does it, so a queue lease of a few minutes is
// enough however long the queue, while a task that vanished from Redis
// (FLUSHALL, a restart, a worker killed between pop and take) is claimable
// again one queue lease later. It returns how many tasks the queue holds.
func renewQueued(ctx context.Context, st *store.Store, q *queue.Queue, o EnqueueOptions) (int64, error) {
	if o.RenewMax <= 0 {
		return 0, nil
	}
	var queued []record.Task
	var n int64
	err := outage.Retry(ctx, "redis", queue.IsUnavailable, func() (err error) {
		if queued, err = q.Peek(ctx, o.RenewMax); err != nil {
			return err
		}
		n, err = q.Len(ctx)
		return err
	})
	if err != nil {
		return 0, err
	}
	if n > o.RenewMax {
		slog.Warn("queue longer than --renew-max: the tail's queue leases are not renewed and may run out (then those rows are claimed again)",
			"queue", n, "renew_max", o.RenewMax)
	}
	return n, outage.Retry(ctx, "mysql", store.IsUnavailable, func() error { return st.RenewQueued(ctx, queued, o.Claim.QueueLease) })
}

// Enqueue reads task lines from in, claims their rows in batches and pushes
// the claimed tasks onto the queue, then echoes them to out. A row that is no
// longer claimable (taken by another distributor, already done) is skipped,
// and so are the lines beyond RenewMax tasks in the queue (left pending).
// Bad lines are reported with their number and skipped; their count is the
// error at the end. When ctx is done it finishes the batch in hand and stops.
func Enqueue(ctx context.Context, st *store.Store, q *queue.Queue, o EnqueueOptions, in io.Reader, out io.Writer) error {
	// Batches finish under a context a first signal does not cancel, so a
	// claimed batch is pushed; a second signal ends even a wait on an
	// outage, and the claimed rows come back by their queue leases.
	work := tool.Hard(ctx)
	queued, err := renewQueued(work, st, q, o)
	if err != nil {
		return err
	}
	// The queue is kept within what a round renews: a task beyond it would
	// lose its queue lease while still queued and be claimed and pushed
	// again, every queue lease, so a queue that the workers do not drain
	// (all stopped, or slower than the distributor) would grow without end.
	// Lines beyond the room are read and left unclaimed, for a later round.
	room := int64(-1) // no bound
	if o.RenewMax > 0 {
		room = max(o.RenewMax-queued, 0)
	}
	var left, tried, skipped int64
	defer func() {
		if left > 0 {
			slog.Info("queue full (--renew-max): lines left unclaimed for a later round",
				"left", left, "queue", queued, "renew_max", o.RenewMax)
		}
		// Lines whose rows were not claimable are skipped by design (done
		// since dl-select read them, claimed by another distributor); all
		// of them skipped is more likely lines for another table.
		switch {
		case skipped > 0 && skipped == tried:
			slog.Warn("no task line named a pending row of the table: none enqueued (lines for another table or database?)",
				"lines", tried, "table", st.Table())
		case skipped > 0:
			slog.Info("task lines skipped: their rows were not pending (done, failed, claimed by another distributor, or missing)",
				"skipped", skipped, "lines", tried, "table", st.Table())
		}
	}()
	return batch.Lines[record.Task, record.Task]{
		Kind: "task", Parse: record.ParseTask, Max: o.Batch,
		Handle: func(ctx context.Context, b []record.Task) ([]record.Task, error) {
			if room >= 0 && int64(len(b)) > room {
				left += int64(len(b)) - room
				b = b[:room]
			}
			if len(b) == 0 {
				return nil, nil
			}
			claimed, err := claim(ctx, st, b, o.Claim)
			if err != nil {
				return nil, err
			}
			tried += int64(len(b))
			skipped += int64(max(len(b)-len(claimed), 0))
			// Claimed rows that never reach the queue come back when their
			// queue lease runs out, so a crash here loses nothing.
			err = outage.Retry(ctx, "redis", queue.IsUnavailable, func() error { return q.Push(ctx, claimed) })
			slog.Debug("enqueued", "read", len(b), "claimed", len(claimed))
			if room >= 0 {
				room -= int64(len(claimed))
			}
			return claimed, err
		},
	}.Run(ctx, work, in, out)
}

// claimParts is how many statements claim a batch at once, each a part of
// it on its own connection: MariaDB spends some 30 µs of one core on each
// claimed row (three secondary indexes change with the status), so a single
// statement leaves the distributor waiting on one core of the database.
// Parts below minClaimPart rows are not worth a second round trip.
const (
	claimParts   = 2
	minClaimPart = 100
)

// claim claims the rows of b, in parts at once, and returns the claimed
// tasks in b's order (so the queue keeps the order of the lines).
func claim(ctx context.Context, st *store.Store, b []record.Task, o store.ClaimOptions) ([]record.Task, error) {
	parts := min(claimParts, max(len(b)/minClaimPart, 1))
	if parts > 1 {
		// The parts run at once: a line repeated in a later part could
		// claim its row before the first line does, out of the input's
		// order. One part claims a repeated line once by itself.
		b = firstOfEach(b)
	}
	got := make([][]record.Task, parts)
	g, gctx := errgroup.WithContext(ctx)
	for i := range parts {
		part := b[i*len(b)/parts : (i+1)*len(b)/parts]
		g.Go(func() error {
			return outage.Retry(gctx, "mysql", store.IsUnavailable, func() (err error) {
				got[i], err = st.Claim(gctx, part, o)
				return err
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(got...), nil
}

// firstOfEach returns b without the lines whose id an earlier line has, or
// one that names the same row (store.IDKey: in another case, say).
func firstOfEach(b []record.Task) []record.Task {
	seen := make(map[string]bool, len(b))
	out := make([]record.Task, 0, len(b))
	for _, t := range b {
		if k := store.IDKey(t.ID); !seen[k] {
			seen[k] = true
			out = append(out, t)
		}
	}
	return out
}
