package record

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
)

// ErrTooLong reports a line longer than MaxLine; the reader has skipped it.
var ErrTooLong = fmt.Errorf("line longer than %d bytes", MaxLine)

// LineReader reads newline-terminated lines without ever holding more than
// MaxLine bytes of one, and counts them so errors can name the line.
type LineReader struct {
	r    *bufio.Reader
	line int
}

// NewLineReader reads from r.
func NewLineReader(r io.Reader) *LineReader {
	return &LineReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next line without its newline and the line's number
// (from 1). It returns ErrTooLong for an over-long line (already skipped, so
// the caller may go on) and io.EOF at the end.
func (lr *LineReader) Next() ([]byte, int, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > MaxLine+1 {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && (err != io.EOF || (len(buf) == 0 && !tooLong)) {
			return nil, lr.line, err
		}
		lr.line++
		if tooLong {
			return nil, lr.line, ErrTooLong
		}
		if n := len(buf); n > 0 && buf[n-1] == '\n' {
			buf = buf[:n-1]
		}
		if n := len(buf); n > 0 && buf[n-1] == '\r' {
			buf = buf[:n-1]
		}
		return buf, lr.line, nil
	}
}

// WriteLines encodes every value from in as one JSON line on w until in is
// closed. It is meant to be the single goroutine that owns stdout: it flushes
// whenever in is momentarily empty, so a line is never held back while the
// producer waits, yet a burst goes out in few writes. On a write error (the
// reader of stdout has gone) it returns at once; producers must therefore send
// with a select on their context, which the caller cancels.
func WriteLines[T any](w io.Writer, in <-chan T) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for v := range in {
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("write stdout: %w", err)
		}
		if len(in) > 0 {
			continue
		}
		// Producers woken together (a group sync that served many
		// transfers) send one after another: let them run once before
		// deciding that the burst is over, so it goes out in one write and
		// wakes the reader once.
		runtime.Gosched()
		if len(in) == 0 {
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("write stdout: %w", err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	return nil
}

// BadLine is a line that did not parse; the reader skipped it.
type BadLine struct {
	Line int
	Err  error
}

func (b BadLine) Error() string { return fmt.Sprintf("line %d: %v", b.Line, b.Err) }

// ReadAll parses each line of r with parse and sends the values to out, in
// order, as they arrive: nothing waits for the end of the input. A bad line is
// passed to bad and skipped. It returns at the end of r (nil), on a read
// error, or when ctx is done; it does not close out.
func ReadAll[T any](ctx context.Context, r io.Reader, parse func([]byte) (T, error), out chan<- T, bad func(BadLine)) error {
	lr := NewLineReader(r)
	for {
		line, n, err := lr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil && !errors.Is(err, ErrTooLong) {
			return fmt.Errorf("read line %d: %w", n+1, err)
		}
		var v T
		if err == nil {
			v, err = parse(line)
		}
		if errors.Is(err, ErrEmpty) {
			continue
		}
		if err != nil {
			bad(BadLine{Line: n, Err: err})
			continue
		}
		select {
		case out <- v:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
