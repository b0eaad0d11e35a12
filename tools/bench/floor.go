package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dlkit/dl/internal/groupsync"
)

// diskFloor measures what the disk alone allows for workload 1's files: no
// network, no database, no JSON, just what dl-fetch must do to make each
// 4 KiB file durable under its final name in dl's sharded layout, 64 files
// at a time, in a fresh directory: make the shard directory the first time,
// create the part file, write, rename, and wait for a syncfs of the
// filesystem that began after the rename, one syncfs serving every file
// that waited for it (dl's group commit on ext4). It is the ceiling of the
// end-to-end rate on this machine with durable writes, and its CPU per file
// is the kernel's share that no downloader can avoid. The driver does the
// work itself, so CPU is the driver's own (getrusage), which is otherwise
// idle meanwhile.
func (b *bench) diskFloor(ctx context.Context, workload string, n, conc int) sample {
	s := sample{Workload: workload, Tool: "disk floor", N: n, Bytes: int64(n) * 4096, Unit: "files/s", Conc: conc}
	dir, err := b.e.freshDir(workload + "-floor")
	if err != nil {
		s.fail(err)
		return s
	}
	root := filepath.Join(dir, "d")
	syncer, err := newFloorSyncer(dir)
	if err != nil {
		s.fail(err)
		return s
	}
	defer syncer.close()
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
				if err := floorFile(root, fmt.Sprintf("f%06d", i), body, &made, syncer); err != nil {
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

func floorFile(root, name string, body []byte, made *sync.Map, syncer *floorSyncer) error {
	sum := sha256.Sum256([]byte(name))
	shard := filepath.Join(root, hex.EncodeToString(sum[:2])[:3])
	if _, ok := made.Load(shard); !ok {
		if err := os.MkdirAll(shard, 0o755); err != nil {
			return err
		}
		made.Store(shard, true)
	}
	final := filepath.Join(shard, name)
	fd, err := unix.Open(final+".part", unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	_, err = unix.Write(fd, body)
	unix.Close(fd)
	if err != nil {
		return err
	}
	if err := os.Rename(final+".part", final); err != nil {
		return err
	}
	return syncer.wait()
}

// floorSyncer group-commits syncfs of the run's filesystem with the code
// dl-fetch uses (groupsync), through a descriptor opened before any file is
// written, as dl-fetch holds one.
type floorSyncer struct {
	fd    int
	group *groupsync.Group[struct{}]
}

func newFloorSyncer(dir string) (*floorSyncer, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	s := &floorSyncer{fd: fd}
	s.group = groupsync.New(func(struct{}) error { return unix.Syncfs(s.fd) })
	return s, nil
}

// wait returns once a syncfs that began after the call has ended.
func (s *floorSyncer) wait() error { return s.group.Sync(struct{}{}) }

func (s *floorSyncer) close() { unix.Close(s.fd) }

func tvSecs(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
