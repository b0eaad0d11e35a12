package origin

import (
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"
)

// errCut stops a handler's copy once the connection was closed on purpose.
var errCut = errors.New("origin: connection cut on purpose")

// errLie stops a handler's copy at the announced (false) Content-Length.
var errLie = errors.New("origin: body cut at the announced length")

// respWriter counts the body bytes that reach the real ResponseWriter and
// applies the faults that must happen mid-body or at header time, so that
// every way of serving (ServeContent, gzip, endless, trickle) gets them.
type respWriter struct {
	http.ResponseWriter
	o    *Origin
	path string

	limit   int64 // body bytes to send before cutting the connection; -1 none
	reset   bool  // cut with RST instead of FIN
	cl      int64 // Content-Length to announce on success; -1 the true one
	noRange bool

	wroteHeader bool
	written     int64
	cut         bool
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (rw *respWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

func (rw *respWriter) WriteHeader(code int) {
	if !rw.wroteHeader && code >= 200 {
		rw.wroteHeader = true
		if code < 300 {
			if rw.cl >= 0 {
				rw.Header().Set("Content-Length", strconv.FormatInt(rw.cl, 10))
			}
			if rw.noRange {
				rw.Header().Del("Accept-Ranges")
			}
		}
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *respWriter) Write(p []byte) (int, error) {
	if rw.cut {
		return 0, errCut
	}
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.cl >= 0 && rw.written+int64(len(p)) > rw.cl {
		// The server refuses a write that overruns Content-Length as a
		// whole, so cut the body at the lie and stop the copy.
		p = p[:max(rw.cl-rw.written, 0)]
		if rw.limit < 0 || rw.limit > rw.cl {
			n, err := rw.write(p)
			if err == nil {
				err = errLie
			}
			return n, err
		}
	}
	if rw.limit < 0 {
		return rw.write(p)
	}
	left := rw.limit - rw.written
	if int64(len(p)) < left {
		return rw.write(p)
	}
	n, err := rw.write(p[:left])
	if err != nil {
		return n, err
	}
	rw.cutConnection()
	return n, errCut
}

func (rw *respWriter) write(p []byte) (int, error) {
	n, err := rw.ResponseWriter.Write(p)
	rw.written += int64(n)
	rw.o.mu.Lock()
	rw.o.bytes += int64(n)
	rw.o.pathByte[rw.path] += int64(n)
	rw.o.mu.Unlock()
	return n, err
}

// cutConnection flushes what was written and closes the connection under
// the response, either cleanly (FIN) or with a reset (RST, via SO_LINGER 0).
// Where there is no connection to take (HTTP/2), aborting the handler resets
// the stream, which is the nearest equivalent.
func (rw *respWriter) cutConnection() {
	rw.cut = true
	rc := http.NewResponseController(rw.ResponseWriter)
	_ = rc.Flush() // the client may already be gone; the cut happens anyway
	conn, _, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok && rw.reset {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// serveEndless sends content without end until the client goes away.
func serveEndless(rw *respWriter, r *http.Request, key string) {
	rw.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.CopyBuffer(rw, newStream(key, math.MaxInt64), make([]byte, blockSize)) // ends when the client leaves
}

// serveTrickle sends one byte per interval, flushed, until the client goes
// away: the stalled-but-alive server a downloader must give up on.
func serveTrickle(rw *respWriter, r *http.Request, key string, every time.Duration) {
	rw.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(rw)
	s := newStream(key, math.MaxInt64)
	var b [1]byte
	for {
		if err := rc.Flush(); err != nil {
			return
		}
		if !sleep(r.Context(), every) {
			return
		}
		_, _ = s.Read(b[:])
		if _, err := rw.Write(b[:]); err != nil {
			return
		}
	}
}
