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

// largeBufSize is the buffer of a large serial copy. Each read and write
// costs about the same whatever its size, and so does the runtime's work
// around it (strace -f -c of one GiB: 8,064 epoll_pwait and 4,141 nanosleep
// calls with bufSize, 4,392 and 2,307 with 1 MiB). One GiB from a local
// origin on 2 cores, serial, took 1.25 s of CPU with 1 MiB against 1.69 s
// with bufSize (medians of 10, alternating).
const largeBufSize = 1 << 20

// A pipelined copy hands pipelineDepth buffers of pipeBufSize round between
// the reader and the hasher. Enough of them that the reader rarely waits
// for a free one, since while it waits the socket fills and the sender
// stalls: one GiB from nginx on loopback (2 cores, Intel, page cache
// dropped each round, 4 alternating rounds, wall seconds) took 1.66-1.97
// with 2 x 1 MiB (the serial copy's time: no gain), 1.00-1.14 with 16 x 128
// KiB. And large ones, since every buffer is one read, one write and one
// hand-over, which wakes the hasher (a futex) and the runtime's spinning
// threads: strace -f -c of one GiB from dl-origin counted 8,211 reads,
// 12,474 futex and 9,568 nanosleep calls with 16 x 128 KiB, 1,039, 2,459 and
// 4,338 with 4 x 1 MiB (a read fills the buffer). dl-fetch's CPU for the GiB
// (AMD, scripts/bench --only big,static, 8 runs each, alternating): from
// dl-origin 1.25-1.53 s with 16 x 128 KiB, 1.14-1.33 with 4 x 1 MiB; from
// nginx 1.76-1.97 against 1.38-1.61, and 760-964 MB/s against 936-1,089.
// 8 x 512 KiB, 8 x 1 MiB and 4 x 2 MiB were no better than 4 x 1 MiB.
const (
	pipelineDepth = 4
	pipeBufSize   = 1 << 20
)

// copyWay is how one body is copied.
type copyWay int

const (
	copySmall     copyWay = iota // serial, with the attempt's bufSize buffer
	copyLarge                    // serial, with a largeBufSize buffer
	copyPipelined                // pipeBufSize buffers, hashed on a second goroutine
)

// largeCopies counts the copies of large bodies in progress (announced at
// largeMin or more, or of unknown size) and decides how each is copied, so
// that what large copies hold scales with the cores, not with
// --concurrency.
//
// A pipelined copy keeps two cores busy: it is chosen while the large
// copies, itself included, are at most half the cores. sha256 costs more
// than the rest of a download (a Go program copying a GiB from nginx with
// no hash: 0.45-0.5 s of CPU; hashing it: 0.6 s more), so hashing beside
// the copy is what lets one download keep up with a tool that does not
// hash: one GiB from nginx on loopback, 2 cores, took 1.00-1.14 s
// pipelined, 1.66-1.97 s serial, curl 0.83-1.05 (wall, 4 alternating
// rounds); with --fsync=true 1.16-1.22 s against 2.08-2.38 s. The hasher
// costs some CPU (the hand-overs: user time 0.76-0.89 s per GiB against
// 0.57-0.80 serial, in the runs above) that a machine busy with other work
// pays, so past half the cores a copy is serial: with a large buffer while
// the cores are not yet all taken (an odd core, or the one core of a
// single-core machine), the small buffer beyond, since more copies only
// wait for CPU and a larger buffer would only hold memory (32 transfers of
// 1 GiB on 2 cores: 29 MiB of RSS with one large buffer, 52 with a hasher
// each).
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
	case n <= int64(procs/2):
		return copyPipelined, done
	case n <= int64((procs+1)/2):
		return copyLarge, done
	}
	return copySmall, done
}

var (
	largeBufPool = sync.Pool{New: func() any { b := make([]byte, largeBufSize); return &b }}
	pipeBufPool  = sync.Pool{New: func() any { b := make([]byte, pipeBufSize); return &b }}
)

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
		free <- pipeBufPool.Get().(*[]byte)
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
			pipeBufPool.Put(<-free)
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
