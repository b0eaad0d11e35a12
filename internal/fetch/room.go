package fetch

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// room keeps a floor of free space on the download directory's filesystem
// (Options.MinFree). A task that starts below it fails as on a full disk
// (a Local failure, which stops the worker), so that dl stops before the
// disk is full and the other programs on the machine, a database or the
// journal, still have room to write. The filesystem is asked at most once
// per every, so small files pay no system call for it; transfers already
// running may take the free space that far below the floor.
type room struct {
	dir   string
	min   int64
	every time.Duration
	log   *slog.Logger

	mu   sync.Mutex
	at   time.Time // of the last look
	free int64     // bytes available to an unprivileged writer, as of at
	err  error     // of the last look
	// warned: the operator was told that the floor cannot be kept. Once
	// is enough; a filesystem that answers again is checked again.
	warned bool
}

// roomEvery is how stale the free space may be.
const roomEvery = 250 * time.Millisecond

// newRoom returns nil when min is 0: no floor, nothing to check.
func newRoom(dir string, min int64, log *slog.Logger) *room {
	if min <= 0 {
		return nil
	}
	return &room{dir: dir, min: min, every: roomEvery, log: log}
}

// check returns an error wrapping ENOSPC when the free space is below the
// floor. A filesystem that cannot be asked is not refused for that (the
// writes will tell), but the operator who set the floor is told, once,
// that it is not being kept.
func (r *room) check() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.at) >= r.every { // the zero at is long ago
		r.at = now
		r.free, r.err = freeBytes(r.dir)
		if r.err != nil && !r.warned {
			r.warned = true
			r.log.Warn("cannot tell the free space of the download directory's filesystem: --min-free is not kept while this lasts",
				"dir", r.dir, "err", r.err)
		}
	}
	if r.err != nil || r.free >= r.min {
		return nil
	}
	return fmt.Errorf("free space on %s is %s, below --min-free %s: %w", r.dir, humanBytes(r.free), humanBytes(r.min), unix.ENOSPC)
}

// freeBytes is the space an unprivileged writer may still use on dir's
// filesystem, asked of dir or, before dir is made, of its nearest parent.
func freeBytes(dir string) (int64, error) {
	for {
		var st unix.Statfs_t
		err := unix.Statfs(dir, &st)
		if err == nil {
			return int64(st.Bavail) * st.Bsize, nil
		}
		parent := filepath.Dir(dir)
		if !errors.Is(err, unix.ENOENT) || parent == dir {
			return 0, fmt.Errorf("statfs %s: %w", dir, err)
		}
		dir = parent
	}
}

// humanBytes formats n bytes in MiB, or in GiB from one GiB on, so that a floor
// of 5G reads "5.0 GiB" and not "5120.0 MiB".
func humanBytes(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
