package fetch

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/dlkit/dl/internal/groupsync"
)

// fsSyncs makes finished files durable with a group-committed syncfs(2) of
// their filesystem instead of an fsync of each file and of its directory.
// On a local filesystem every fsync writes the file's data, its inode and
// its directory synchronously and then flushes the device's cache, so small
// files cost several synchronous writes each; one syncfs writes back
// everything dirty on the filesystem — data, inodes, directory entries, new
// directories — in one pass and flushes the cache once for every transfer
// that was waiting (measured here: 2–3× the files per second at a third of
// the CPU for 4 KiB files).
//
// The price is that a syncfs also writes back what other programs left
// dirty on that filesystem, so it is used only where it is known to be a
// real sync (syncfsTypes; FUSE and network filesystems may ignore it), and
// Options.FsyncEach turns it off for a filesystem shared with heavy writers.
//
// Each filesystem is held open by a descriptor taken when dl first makes or
// finds a directory on it, before any file of ours is written there: syncfs
// reports writeback errors recorded on the filesystem since that descriptor
// was opened (Linux 5.8 and later), so an error in any file fails the sync
// for every transfer it served, and none is lost. Each of them then syncs its
// own file and directories alone (Fetcher.syncAlone), which tells whether
// the error was its own: a file is taken away only when it was.
type fsSyncs struct {
	log    *slog.Logger
	mu     sync.Mutex
	devs   map[uint64]*fsDev
	closed bool // filesystems seen from now on are synced file by file
	group  *groupsync.Group[uint64]
}

// fsDev is one filesystem seen by the Fetcher.
type fsDev struct {
	fd   int // a directory on it; -1 when not used or closed
	path string
	ok   bool // syncfs makes its files durable
	use  sync.RWMutex
}

// syncfsTypes are the filesystems (statfs f_type) whose syncfs writes back
// and flushes everything, as fsync would: local block filesystems, and
// tmpfs, which has nothing to make durable either way.
var syncfsTypes = map[int64]bool{
	0xEF53:     true, // ext2, ext3, ext4
	0x58465342: true, // xfs
	0x9123683E: true, // btrfs
	0xF2F52010: true, // f2fs
	0x01021994: true, // tmpfs
}

func newFSSyncs(log *slog.Logger) *fsSyncs {
	s := &fsSyncs{log: log, devs: map[uint64]*fsDev{}}
	s.group = groupsync.New(s.syncfs)
	return s
}

// see registers the filesystem of dir, a directory that exists, once.
func (s *fsSyncs) see(dir string, fi os.FileInfo) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.devs[st.Dev] != nil {
		return
	}
	d := &fsDev{fd: -1, path: dir}
	s.devs[st.Dev] = d
	if s.closed {
		return
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return // per-file syncs for this filesystem then
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil || !syncfsTypes[int64(sfs.Type)] {
		unix.Close(fd)
		return
	}
	d.fd, d.ok = fd, true
}

// covers tells whether files on the filesystem of fi are synced by sync.
func (s *fsSyncs) covers(fi os.FileInfo) (dev uint64, ok bool) {
	st, isStat := fi.Sys().(*syscall.Stat_t)
	if s == nil || !isStat {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devs[st.Dev]
	return st.Dev, d != nil && d.ok
}

// sync returns once a syncfs of dev that began after the call has ended.
func (s *fsSyncs) sync(dev uint64) error {
	return s.group.Sync(dev)
}

func (s *fsSyncs) syncfs(dev uint64) error {
	s.mu.Lock()
	d := s.devs[dev]
	s.mu.Unlock()
	if d == nil || !d.ok {
		return fmt.Errorf("sync filesystem: device %d was never seen", dev)
	}
	d.use.RLock()
	defer d.use.RUnlock()
	fd := d.fd
	if fd < 0 { // closed while transfers were finishing
		var err error
		if fd, err = unix.Open(d.path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("sync filesystem: %w", &fs.PathError{Op: "open", Path: d.path, Err: err})
		}
		defer unix.Close(fd)
	}
	for {
		err := unix.Syncfs(fd)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			err = fmt.Errorf("sync filesystem: %w", &fs.PathError{Op: "syncfs", Path: d.path, Err: err})
			s.log.Warn("syncfs failed; every file it served is synced alone, and removed if that fails too", "error", err)
			return err
		}
		return nil
	}
}

// close releases the descriptors. Transfers still finishing on a known
// filesystem open it for their sync; filesystems seen later are synced file
// by file.
func (s *fsSyncs) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, d := range s.devs {
		d.use.Lock() // not while a syncfs uses the descriptor
		if d.fd >= 0 {
			unix.Close(d.fd)
			d.fd = -1
		}
		d.use.Unlock()
	}
}
