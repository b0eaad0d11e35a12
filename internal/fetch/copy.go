package fetch

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
)

// pipelineMin is the body size from which hashing runs beside the copy.
// Hashing costs about as much CPU as reading and writing together, so on a
// large file overlapping them is what brings one transfer near curl's speed
// (which does not hash); below it a goroutine per file is not worth it.
const pipelineMin = 1 << 20

// largeCopies counts the copies of large bodies in progress (announced at
// pipelineMin or more, or of unknown size). Hashing beside the copy only
// pays while there is an idle core for the hasher: a copy with its hasher
// keeps two cores busy, so a copy is pipelined only when the large copies,
// itself included, are at most half the cores. Past that the cores are
// already busy with one copy each, and a hasher per copy would only add a
// wake-up per buffer and three more buffers (measured with 32 transfers of
// 1 GiB at once on 2 cores: the same time, 29 MiB of RSS instead of 52).
type largeCopies struct{ n atomic.Int64 }

// start registers a copy of a body of expect bytes (-1: unknown) and tells
// whether to hash beside it; done must be called when the copy ends.
func (c *largeCopies) start(expect int64) (pipelined bool, done func()) {
	if expect >= 0 && expect < pipelineMin {
		return false, func() {}
	}
	n := c.n.Add(1)
	return n <= int64(max(runtime.GOMAXPROCS(0)/2, 1)), func() { c.n.Add(-1) }
}

// pipelineDepth is how many buffers are in flight between copy and hash.
const pipelineDepth = 4

var errTooBig = errors.New("too big")

// localError marks a failure of our own disk rather than of the transfer.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// write appends the body to the part file and to the hash, stopping with
// errTooBig before the file would pass limit bytes (limit < 0: none). Read
// errors are returned as they are, for the caller to classify. pipelined
// hashes on a second goroutine, beside the copy (largeCopies decides).
func (p *part) write(r io.Reader, limit int64, pipelined bool, buf []byte) error {
	if !pipelined {
		return p.copy(r, limit, buf, func(b []byte) { p.h.Write(b) })
	}
	type chunk struct {
		buf *[]byte
		n   int
	}
	free := make(chan *[]byte, pipelineDepth)
	full := make(chan chunk, pipelineDepth)
	free <- &buf
	for range pipelineDepth - 1 {
		free <- bufPool.Get().(*[]byte)
	}
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		for c := range full {
			p.h.Write((*c.buf)[:c.n])
			free <- c.buf
		}
	}()
	defer func() {
		close(full)
		<-hashed
		for range pipelineDepth {
			if b := <-free; b != &buf {
				bufPool.Put(b)
			}
		}
	}()
	return p.copyPipelined(r, limit, free, func(b *[]byte, n int) { full <- chunk{b, n} })
}

// copy is the serial loop: read, write, hash.
func (p *part) copy(r io.Reader, limit int64, buf []byte, hash func([]byte)) error {
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if err := p.append(buf[:n], limit); err != nil {
				return err
			}
			hash(buf[:n])
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// copyPipelined reads into whichever buffer the hasher has given back and
// hands each written buffer on to it.
func (p *part) copyPipelined(r io.Reader, limit int64, free chan *[]byte, hash func(*[]byte, int)) error {
	for {
		b := <-free
		n, rerr := r.Read(*b)
		if n > 0 {
			if err := p.append((*b)[:n], limit); err != nil {
				free <- b
				return err
			}
			hash(b, n)
		} else {
			free <- b
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// append writes b to the part file unless that would pass limit.
func (p *part) append(b []byte, limit int64) error {
	if limit >= 0 && p.size+int64(len(b)) > limit {
		return errTooBig
	}
	if _, err := p.f.Write(b); err != nil {
		return &localError{fmt.Errorf("write part file: %w", err)}
	}
	p.size += int64(len(b))
	p.progress.Advance(len(b))
	return nil
}
