package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// diskFloor measures what the disk alone allows for workload 1's files: no
// network, no database, no JSON, just what dl-fetch must do to make each
// 4 KiB file durable under its final name in dl's sharded layout, 64 files
// at a time, in a fresh directory: make the shard directory (syncing its
// parent) the first time, create the part file, write, fsync, rename, fsync
// the directory. It is the ceiling of the end-to-end rate on this machine
// with durable writes, and its CPU per file is the kernel's share that no
// downloader can avoid. The driver does the work itself, so CPU is the
// driver's own (getrusage), which is otherwise idle meanwhile.
func (b *bench) diskFloor(ctx context.Context, workload string, n, conc int) sample {
	s := sample{Workload: workload, Tool: "disk floor", N: n, Bytes: int64(n) * 4096, Unit: "files/s", Conc: conc}
	dir, err := b.e.freshDir(workload + "-floor")
	if err != nil {
		s.fail(err)
		return s
	}
	root := filepath.Join(dir, "d")
	body := make([]byte, 4096)
	var made sync.Map // shard directories made
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	fail := func(err error) { once.Do(func() { firstErr = err }) }

	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before) //nolint:errcheck // Linux always fills it
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := floorFile(root, fmt.Sprintf("f%06d", i), body, &made); err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.Secs = time.Since(start).Seconds()
	syscall.Getrusage(syscall.RUSAGE_SELF, &after) //nolint:errcheck
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	s.fail(firstErr)
	s.Rate = float64(n) / s.Secs
	cpu := tvSecs(after.Utime) + tvSecs(after.Stime) - tvSecs(before.Utime) - tvSecs(before.Stime)
	s.CPU = map[string]float64{"bench driver": cpu}
	s.RSS = map[string]int64{}
	return s
}

func floorFile(root, name string, body []byte, made *sync.Map) error {
	sum := sha256.Sum256([]byte(name))
	shard := filepath.Join(root, hex.EncodeToString(sum[:2])[:3])
	if _, ok := made.Load(shard); !ok {
		if err := os.Mkdir(shard, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := syncPath(root); err != nil {
			return err
		}
		made.Store(shard, true)
	}
	final := filepath.Join(shard, name)
	f, err := os.OpenFile(final+".part", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(body); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.Rename(final+".part", final); err != nil {
		return err
	}
	return syncPath(shard)
}

func syncPath(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func tvSecs(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
