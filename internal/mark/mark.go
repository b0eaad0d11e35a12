// Package mark records results (dl-mark): the outcome into MySQL, many rows
// per transaction, then a result key per row into Redis, then the line to
// stdout. A line is echoed only once its row is committed, so a crash of
// dl-mark loses nothing: the rows it had not committed are still held under a
// lease and come back.
package mark

import (
	"context"
	"io"
	"log/slog"

	"github.com/dlkit/dl/internal/batch"
	"github.com/dlkit/dl/internal/outage"
	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/store"
)

// Options tune Run.
type Options struct {
	Retry store.RetryPolicy
	Batch int // most rows per transaction
}

// Run reads result lines from in until it ends and records them. It keeps
// going through a first SIGINT/SIGTERM, since its input ends when the workers
// upstream have finished; only the hard context (a second signal) stops it.
// MySQL and Redis outages are waited out with the lines kept in hand.
func Run(ctx context.Context, st *store.Store, q *queue.Queue, o Options, in io.Reader, out io.Writer) error {
	return batch.Lines[record.Result, record.Result]{
		Kind: "result", Parse: record.ParseResult, Max: o.Batch,
		Handle: func(ctx context.Context, b []record.Result) ([]record.Result, error) {
			var marked []store.Marked
			err := outage.Retry(ctx, "mysql", store.IsUnavailable, func() (err error) {
				marked, err = st.Mark(ctx, b, o.Retry)
				return err
			})
			if err != nil {
				return nil, err
			}
			// A duplicate (a late worker whose row was given to another) must
			// not replace the winner's result key: it is only logged.
			var keep []record.Result
			var names []string
			for i, m := range marked {
				if m == store.MarkedDuplicate {
					slog.Warn("late result for a row no longer held under its token: not recorded",
						"id", b[i].ID, "outcome", b[i].Outcome)
					continue
				}
				keep = append(keep, b[i])
				names = append(names, m.String())
			}
			// The rows are committed; the Redis keys are a courtesy copy, so a
			// Redis outage is waited out but cannot undo the commit.
			err = outage.Retry(ctx, "redis", queue.IsUnavailable, func() error { return q.SetResults(ctx, keep, names) })
			return b, err
		},
	}.Run(ctx, ctx, in, out)
}
