package mark

import (
	"bufio"
	"context"
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
