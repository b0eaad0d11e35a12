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
// An error of Handle or of out ends Run at once, with in still open: in a
// pipeline the process must exit (and its supervisor restart it) rather than
// wait for an end of input that a live upstream never sends.
func (l Lines[In, Out]) Run(readCtx, workCtx context.Context, in io.Reader, out io.Writer) error {
	values := make(chan In, l.Max)
	echo := make(chan Out, l.Max)
	readErr := make(chan error, 1)
	bad := 0
	rctx, stopReading := context.WithCancel(readCtx)
	defer stopReading()
	// The reader is not waited for when the work fails: it may be blocked
	// in a read of in, and the tool is about to exit. Its send gives up
	// when Run returns.
	go func() {
		defer close(values)
		readErr <- record.ReadAll(rctx, in, l.Parse, values, func(b record.BadLine) {
			bad++
			slog.Error("skipping bad "+l.Kind+" line", "line", b.Line, "err", b.Err)
		})
	}()
	g, gctx := errgroup.WithContext(workCtx)
	g.Go(func() error { return record.WriteLines(out, echo) })
	g.Go(func() error {
		defer close(echo)
		err := Run(gctx, values, l.Max, l.Linger, func(b []In) error {
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
		if err != nil {
			return err
		}
		// values is closed: the reader has ended, and said how.
		if err := <-readErr; err != nil && readCtx.Err() == nil {
			return err
		}
		return nil // at the end of in, or stopped reading on a signal: what was read is handled
	})
	if err := g.Wait(); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%d bad %s lines skipped", bad, l.Kind)
	}
	return nil
}
