package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dlkit/dl/internal/record"
)

// BenchmarkFetch measures one transfer of a large file and many concurrent
// transfers of small ones over loopback, origin in process. Compare the
// large case with curl against a separate server for the real ratio: here
// the origin competes for the same cores.
func BenchmarkFetch(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 20} {
		body := content(size, 12)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
		}))
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			f, err := New(Options{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(int64(size))
			b.SetParallelism(16) // with GOMAXPROCS, many transfers at once
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := strconv.FormatInt(n.Add(1), 10)
					res := f.Fetch(context.Background(), record.Task{ID: id, URL: srv.URL + "/f"})
					if res.Outcome != record.Done {
						b.Error(res.Error)
					}
					os.Remove(res.Path) // keep the disk from filling
				}
			})
		})
		srv.Close()
	}
}

// BenchmarkWritePath compares the file-system work of publishing one small
// file (4 KiB, 8 at a time per core, in 4,096 directories made beforehand; no
// network, no hashing, no sync): a plain create as curl does it, dl's part
// file (exclusive create, lock, checks, rename without replace), an
// O_TMPFILE linked into place, and that O_TMPFILE with what dl's part file
// would still need around it (the look for a part file to resume, an
// *os.File and its stat). Each op publishes one file each way, the ways
// interleaved so that the file system's state (which on ext4 slows creation
// for minutes after many deletions) weighs on all of them alike, and each
// way's CPU is read from the thread's clock around it: "<way>-cpu-µs" per
// file, which is what limits a busy machine. BENCHMARKS.md quotes it.
func BenchmarkWritePath(b *testing.B) {
	body := content(4096, 13)
	ways := []struct {
		name    string
		publish func(dir, name string) error
	}{
		{"plain", func(dir, name string) error {
			fd, err := unix.Open(dir+"/"+name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			_, err = unix.Write(fd, body)
			return err
		}},
		{"dl-part", func(dir, name string) error {
			final := dir + "/" + name
			p, err := openPart(final+".part", final+".part.meta")
			if err != nil {
				return err
			}
			defer p.close()
			if _, err := p.f.Write(body); err != nil {
				return err
			}
			return renameNoReplace(p.path, final)
		}},
		{"tmpfile", func(dir, name string) error {
			fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			if _, err := unix.Write(fd, body); err != nil {
				return err
			}
			return linkTmpfile(fd, dir+"/"+name)
		}},
		{"tmpfile-resumable", func(dir, name string) error {
			// What an O_TMPFILE costs inside dl, which must still find a
			// part file left to resume and wants an *os.File and its stat.
			if fd, err := unix.Open(dir+"/"+name+".part", unix.O_RDWR|unix.O_CLOEXEC, 0); err == nil {
				unix.Close(fd)
				return errors.New("a part file is there")
			}
			fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o644)
			if err != nil {
				return err
			}
			f := os.NewFile(uintptr(fd), name)
			defer f.Close()
			if _, err := f.Stat(); err != nil {
				return err
			}
			if _, err := f.Write(body); err != nil {
				return err
			}
			return linkTmpfile(fd, dir+"/"+name)
		}},
	}
	root := b.TempDir()
	dirs := make([]string, 4096)
	for i := range dirs {
		dirs[i] = fmt.Sprintf("%s/%03x", root, i)
		if err := os.Mkdir(dirs[i], 0o755); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	cpu := make([]atomic.Int64, len(ways))
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		runtime.LockOSThread() // the thread's clock is this goroutine's
		defer runtime.UnlockOSThread()
		for pb.Next() {
			i := n.Add(1)
			for k, w := range ways {
				name := fmt.Sprintf("%d-%s", i, w.name)
				t0 := threadCPU()
				if err := w.publish(dirs[i%4096], name); err != nil {
					b.Error(err)
					return
				}
				cpu[k].Add(int64(threadCPU() - t0))
			}
		}
	})
	b.StopTimer()
	for k, w := range ways {
		b.ReportMetric(float64(cpu[k].Load())/1e3/float64(b.N), w.name+"-cpu-µs")
	}
}

// linkTmpfile gives the O_TMPFILE fd the name path, as an unprivileged
// process can: through /proc (AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH).
func linkTmpfile(fd int, path string) error {
	return unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
}

// threadCPU is the calling thread's user+system time so far.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
