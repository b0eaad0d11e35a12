// Package mark records results (dl-mark): the outcome into MySQL, many rows
// per transaction (MySQL outages are waited out with the lines kept), then a
// result key per row into Redis (best effort), then the line to stdout. A line is echoed only once its row is committed, so a crash of
// dl-mark loses nothing: the rows it had not committed are still held under a
// lease and come back.
package mark

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/dlkit/dl/internal/batch"
	"github.com/dlkit/dl/internal/outage"
	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/store"
)

// Options tune Run.
type Options struct {
	Retry  store.RetryPolicy
	Batch  int           // most rows per transaction
	Linger time.Duration // how long a transaction that is not full waits for more results
}

// DefaultLinger lets results that trickle in from many transfers share a
// transaction: a worker finishing a few hundred files a second one by one
// would otherwise pay a transaction (five statements and a redo log flush)
// for every few results. A result is recorded at most this much later,
// which nobody watching a row notices; the end of the input is never held.
const DefaultLinger = 50 * time.Millisecond

// Run reads result lines from in until it ends and records them. It keeps
// going through a first SIGINT/SIGTERM, since its input ends when the workers
// upstream have finished; only the hard context (a second signal) stops it.
// MySQL and Redis outages are waited out with the lines kept in hand.
func Run(ctx context.Context, st *store.Store, q *queue.Queue, o Options, in io.Reader, out io.Writer) error {
	keys := &resultKeys{q: q}
	return batch.Lines[record.Result, record.Result]{
		Kind: "result", Parse: record.ParseResult, Max: o.Batch, Linger: o.Linger,
		Handle: func(ctx context.Context, b []record.Result) ([]record.Result, error) {
			var marked []store.Marked
			err := outage.Retry(ctx, "mysql", store.IsUnavailable, func() (err error) {
				marked, err = st.Mark(ctx, b, o.Retry)
				return err
			})
			if err != nil {
				return nil, err
			}
			// A duplicate (a late worker whose row was given to another, a
			// row already finished) must not replace the winner's result key
			// nor be echoed as recorded, or whoever counts the lines counts
			// the row twice: it is only logged.
			var keep []record.Result
			var names []string
			for i, m := range marked {
				switch m {
				case store.MarkedDuplicate:
					slog.Warn("late result for a row no longer held under its token: not recorded",
						"id", b[i].ID, "outcome", b[i].Outcome)
					continue
				case store.MarkedMissing:
					// Most often the wrong DL_TABLE or database: say so
					// rather than call it late.
					slog.Warn("result for an id that no row of the table has: not recorded",
						"id", b[i].ID, "table", st.Table(), "outcome", b[i].Outcome)
					continue
				}
				keep = append(keep, b[i])
				names = append(names, m.String())
			}
			return keep, keys.set(ctx, keep, names)
		},
	}.Run(ctx, ctx, in, out)
}

// resultKeys writes the Redis result keys. They are a courtesy copy of rows
// already committed, so a Redis outage must not hold results back: while
// Redis is away the keys are skipped (one log line when it goes, one when
// it returns), and the lines flow on. Any other error stops dl-mark.
type resultKeys struct {
	q    *queue.Queue
	down time.Time
}

func (k *resultKeys) set(ctx context.Context, results []record.Result, marked []string) error {
	err := k.q.SetResults(ctx, results, marked)
	switch {
	case err == nil && !k.down.IsZero():
		slog.Info("redis is back: writing result keys again", "after", time.Since(k.down).Round(time.Second))
		k.down = time.Time{}
	case err != nil && queue.IsUnavailable(err):
		if k.down.IsZero() {
			k.down = time.Now()
			slog.Warn("redis unavailable: rows are still recorded in MySQL, but their result keys are skipped until it returns", "err", err)
		}
		return nil
	}
	return err
}
