package fetch

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// largeMin is the body size from which a copy is large: it may get a
// larger buffer and a hasher of its own (largeCopies decides). Below it a
// goroutine or a megabyte per file is not worth it.
const largeMin = 1 << 20

// largeBufSize is the buffer of a large copy. Each read and write (and,
// when pipelined, hand-over to the hasher) costs about the same whatever its
// size, and so does the runtime's work around it (strace -f -c of one GiB:
// 8,064 epoll_pwait and 4,141 nanosleep calls with bufSize, 4,392 and 2,307
// with 1 MiB). One GiB from a local origin on 2 cores, serial, took 1.25 s
// of CPU with 1 MiB against 1.69 s with bufSize (medians of 10,
// alternating), and pipelined 1.81 s against 2.16 s (medians of 8).
const largeBufSize = 1 << 20

// pipelineDepth is how many buffers are in flight between copy and hash:
// with 1 MiB buffers two kept both sides busy in the runs above.
const pipelineDepth = 2

// copyWay is how one body is copied.
type copyWay int

const (
	copySmall     copyWay = iota // serial, with the attempt's bufSize buffer
	copyLarge                    // serial, with a largeBufSize buffer
	copyPipelined                // largeBufSize buffers, hashed on a second goroutine
)

// largeCopies counts the copies of large bodies in progress (announced at
// largeMin or more, or of unknown size) and decides how each is copied, so
// that what large copies hold scales with the cores, not with
// --concurrency. A copy gets a large buffer while the large copies, itself
// included, are at most half the cores (at least one); past that each core
// already serves one large copy and the others wait for CPU anyway, so a
// larger buffer would only hold memory (32 transfers of 1 GiB on 2 cores:
// 29 MiB of RSS with one large buffer, 52 with a hasher each).
//
// Hashing beside the copy pays only with a core that nothing else wants,
// and one core is left for the rest of the system: the kernel's network and
// writeback work, the tools on the other end of the pipe, an origin or a
// database on the same machine. So a copy is pipelined only while the large
// copies are at most (cores-1)/2; on 2 cores never. There, one GiB from a
// local origin took 1.35 s serial against 1.73 s pipelined (medians of 12,
// alternating, 1 MiB buffers) and 1.34 s of CPU against 1.95.
type largeCopies struct{ n atomic.Int64 }

// start registers a copy of a body of expect bytes (-1: unknown) on a
// process with procs cores and tells how to copy it; done must be called
// when the copy ends.
func (c *largeCopies) start(expect int64, procs int) (way copyWay, done func()) {
	if expect >= 0 && expect < largeMin {
		return copySmall, func() {}
	}
	n := c.n.Add(1)
	done = func() { c.n.Add(-1) }
	switch {
	case n <= int64((procs-1)/2):
		return copyPipelined, done
	case n <= int64(max(procs/2, 1)):
		return copyLarge, done
	}
	return copySmall, done
}

var largeBufPool = sync.Pool{New: func() any { b := make([]byte, largeBufSize); return &b }}

var errTooBig = errors.New("too big")

// localError marks a failure of our own disk rather than of the transfer.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// write appends the body to the part file and to the hash, stopping with
// errTooBig before the file would pass limit bytes (limit < 0: none). Read
// errors are returned as they are, for the caller to classify. buf serves
// a small copy; the others take large buffers of their own.
func (p *part) write(r io.Reader, limit int64, way copyWay, buf []byte) error {
	switch way {
	case copySmall:
		return p.copy(r, limit, buf)
	case copyLarge:
		b := largeBufPool.Get().(*[]byte)
		defer largeBufPool.Put(b)
		return p.copy(r, limit, *b)
	}
	return p.writePipelined(r, limit)
}

// writePipelined is write with the hash on a second goroutine, beside the
// copy.
func (p *part) writePipelined(r io.Reader, limit int64) error {
	type chunk struct {
		buf *[]byte
		n   int
	}
	free := make(chan *[]byte, pipelineDepth)
	full := make(chan chunk, pipelineDepth)
	for range pipelineDepth {
		free <- largeBufPool.Get().(*[]byte)
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
			largeBufPool.Put(<-free)
		}
	}()
	return p.copyPipelined(r, limit, free, func(b *[]byte, n int) { full <- chunk{b, n} })
}

// copy is the serial loop: read, write, hash.
func (p *part) copy(r io.Reader, limit int64, buf []byte) error {
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if err := p.append(buf[:n], limit); err != nil {
				return err
			}
			p.h.Write(buf[:n])
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
	if p.writeBehind && p.size-p.hinted >= writeBehindStep {
		p.startWriteback()
	}
	return nil
}

// writeBehindStep is how much a durable large file is written between two
// starts of its writeback.
const writeBehindStep = 8 << 20

// startWriteback asks the kernel to start writing the bytes appended since
// the last call to disk, without waiting for them, so that the sync that
// makes the file durable at the end finds little left to write (as RocksDB's
// bytes_per_sync does). Without it nothing of a large file is written before
// that sync (the kernel's own writeback waits 30 s or for gigabytes of
// dirty pages by default): one GiB on the 2-core benchmark machine waited
// 0.75 s in the final syncfs, and 0.13 s with the hint. It is only a hint:
// durability still comes from the sync, which reports any write error, so
// a filesystem that refuses the hint only stops being given it.
func (p *part) startWriteback() {
	err := unix.SyncFileRange(int(p.f.Fd()), p.hinted, p.size-p.hinted, unix.SYNC_FILE_RANGE_WRITE)
	if err != nil {
		p.writeBehind = false
		return
	}
	p.hinted = p.size
}
