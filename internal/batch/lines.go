package batch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dlkit/dl/internal/record"
)

// Lines is the shape shared by the tools that read JSON lines, act on them in
// batches and echo what they acted on (dl-enqueue, dl-mark): one goroutine
// reads, one batches and calls Handle, one owns stdout.
type Lines[In, Out any] struct {
	Kind  string // what a line is, for messages: "task", "result"
	Parse func([]byte) (In, error)
	Max   int // most lines per batch
	// Linger is how long a batch that is not full waits for more lines (see
	// Run); 0: none.
	Linger time.Duration
	Handle func(ctx context.Context, batch []In) ([]Out, error)
}

// Run reads in until it ends or readCtx is done, hands the lines to Handle in
// batches under workCtx, and writes what Handle returns to out. A bad line is
// reported with its number and skipped; their count is the error at the end.
func (l Lines[In, Out]) Run(readCtx, workCtx context.Context, in io.Reader, out io.Writer) error {
	values := make(chan In, l.Max)
	echo := make(chan Out, l.Max)
	bad := 0
	g, gctx := errgroup.WithContext(workCtx)
	g.Go(func() error { return record.WriteLines(out, echo) })
	g.Go(func() error {
		defer close(values)
		err := record.ReadAll(readCtx, in, l.Parse, values, func(b record.BadLine) {
			bad++
			slog.Error("skipping bad "+l.Kind+" line", "line", b.Line, "err", b.Err)
		})
		if readCtx.Err() != nil && gctx.Err() == nil {
			return nil // stopped reading on a signal: what was read is still handled
		}
		return err
	})
	g.Go(func() error {
		defer close(echo)
		return Run(gctx, values, l.Max, l.Linger, func(b []In) error {
			done, err := l.Handle(gctx, b)
			if err != nil {
				return err
			}
			for _, v := range done {
				select {
				case echo <- v:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
	})
	if err := g.Wait(); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%d bad %s lines skipped", bad, l.Kind)
	}
	return nil
}
