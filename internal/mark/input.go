package mark

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dlkit/dl/internal/tool"
)

// WatchInput ends the wait for MySQL and Redis (--wait-for-services) when in
// ends before its first byte: there is nothing to record. dl-worker passes a
// stop to dl-fetch alone, so that dl-mark records every result it writes;
// dl-mark learns of the stop only as its input ends, and would otherwise
// hold the stop for the rest of the wait. It returns a context whose soft
// part (tool.Hard is kept) also ends then, and in, to be read through the
// reader that looked for that first byte. The look ends with in's first
// byte or its end, which a worker's stop always brings.
func WatchInput(ctx context.Context, in io.Reader) (context.Context, io.Reader) {
	br := bufio.NewReader(in)
	wait, inputEnded := context.WithCancel(ctx)
	peeked := make(chan struct{})
	go func() {
		defer close(peeked)
		if _, err := br.Peek(1); err != nil {
			inputEnded()
		}
	}()
	return tool.WithHard(wait, tool.Hard(ctx)), afterPeek{peeked: peeked, r: br}
}

// afterPeek reads r once the first look at it is over, which owns r until then.
type afterPeek struct {
	peeked <-chan struct{}
	r      *bufio.Reader
}

func (a afterPeek) Read(p []byte) (int, error) {
	<-a.peeked
	return a.r.Read(p)
}

// Unrecorded makes a stop while waiting for the services a failure when in,
// from WatchInput, already holds results: they are not recorded (their rows
// go back when their leases run out), and an exit 0 would say all was
// recorded. dl-worker never stops dl-mark this way; a Ctrl-C on a typed
// dl-fetch | dl-mark does. Any other err is returned as it is.
func Unrecorded(err error, in io.Reader) error {
	var stopped *tool.StoppedError
	a, ok := in.(afterPeek)
	if !ok || !errors.As(err, &stopped) {
		return err
	}
	select {
	case <-a.peeked:
		if a.r.Buffered() > 0 {
			return fmt.Errorf("stopped while waiting for %s with results in its input: they are not recorded, and their rows go back to pending when their leases run out", stopped.Service)
		}
	default:
	}
	return err
}
