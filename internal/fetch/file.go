package fetch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// bufSize is the buffer of a small copy and of hashing a file already in
// place: large enough that most bodies take one read, and held by every
// transfer in flight (large copies may take a larger one: copy.go).
const bufSize = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// errNotRegular is something other than a regular file at a name dl reads
// (a final path, a sidecar): a symbolic link, a FIFO, a directory, a device.
// Whoever can write the download directory could have put it there, and dl
// reads nothing through it.
var errNotRegular = errors.New("not a regular file")

// errShardLink is a symbolic link at the name of a directory in the download
// directory (a shard): to /etc, to another disk, to another shard, to
// nothing. Whoever can write the download directory could have put it
// there; dl writes and reads nothing through it, and does not remove it.
// The download directory itself and the directories above it may be links
// (a disk mounted elsewhere) and are followed.
var errShardLink = errors.New("not a shard directory")

func shardLinkError(dir string) error {
	return fmt.Errorf("%s is a symbolic link, which dl does not follow: %w", dir, errShardLink)
}

// openRegular opens path for reading only if it is a regular file: never
// through a symbolic link, and without waiting on a FIFO. fi is the opened
// file's own, so that nothing put at the name after the open is trusted for
// it. A name that holds anything else is an error wrapping errNotRegular and
// naming the path.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	switch {
	case errors.Is(err, unix.ELOOP):
		return nil, nil, fmt.Errorf("%s is a symbolic link, which dl does not follow: %w", path, errNotRegular)
	case errors.Is(err, unix.ENXIO): // a socket
		return nil, nil, fmt.Errorf("%s exists and is a socket: %w", path, errNotRegular)
	case err != nil:
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s exists and is not a regular file (%v): %w", path, fi.Mode().Type(), errNotRegular)
	}
	return f, fi, nil
}

// hashFile returns the sha256 and size of an open file, read from its start.
func hashFile(f *os.File, buf []byte) (string, int64, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, 1<<63-1), buf)
	if err != nil {
		return "", 0, fmt.Errorf("hash existing file: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ensureDir creates dir and its missing parents. With durable, a directory's
// entry in its parent is synced before any file goes into it, or a crash
// could lose the directory and with it every file renamed into it: that
// holds for one another transfer made too, since this one cannot tell
// whether that transfer's sync has finished. Where a syncfs of the
// filesystem will make the files durable, it makes the directories durable
// too, and nothing is synced here. mkdir comes first because on a fresh tree
// the directory is usually missing, and the Fetcher remembers the
// directories it has seen, so an existing one costs one failed mkdir.
func (f *Fetcher) ensureDir(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrNotExist) {
		parent := filepath.Dir(dir)
		if parent == dir {
			return fmt.Errorf("create directory: %w", err)
		}
		if err := f.ensureDir(parent); err != nil {
			return err
		}
		err = os.Mkdir(dir, 0o755)
	}
	made := err == nil
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create directory: %w", err)
	}
	// A directory we made is one; its filesystem matters only to fss. One
	// in the download directory is looked at, not through: a link there,
	// where the name was free a moment ago, is not followed.
	if !made || f.fss != nil {
		stat, shard := os.Stat, dir != f.o.Dir && f.inDownloadDir(dir)
		if shard {
			stat = os.Lstat
		}
		fi, err := stat(dir)
		if shard && err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return shardLinkError(dir)
		}
		if errors.Is(err, fs.ErrNotExist) {
			if target, lerr := os.Readlink(dir); lerr == nil {
				return fmt.Errorf("create directory: %s -> %s: %w", dir, target, errDanglingDir)
			}
		}
		if err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
		if !fi.IsDir() {
			// With its errno, so that diskRefused sees the download
			// directory's trouble rather than the task's.
			return fmt.Errorf("create directory: %w", &fs.PathError{Op: "mkdir", Path: dir, Err: unix.ENOTDIR})
		}
		f.fss.see(dir, fi)
		if _, ok := f.fss.covers(fi); ok {
			return nil // the syncfs that the files wait for covers it
		}
	}
	if !f.o.Fsync {
		return nil
	}
	if !made && (dir == f.o.Dir || !f.inDownloadDir(dir)) {
		return nil // the download directory or above: the user's to have made durable
	}
	return f.syncer.Sync(filepath.Dir(dir))
}

// inDownloadDir tells whether dir (a clean path) is the download directory
// or below it.
func (f *Fetcher) inDownloadDir(dir string) bool {
	rel, err := filepath.Rel(f.o.Dir, dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// syncDir makes the entries of dir (a rename, a new file) durable.
func syncDir(dir string) error {
	if err := fsyncPath(dir, unix.O_DIRECTORY); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// fsyncPath opens path read-only and fsyncs it. It uses open(2) directly:
// os.Open would try to register the file with the network poller and undo
// that, four system calls per sync.
func fsyncPath(path string, flags int) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|flags, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	for {
		err = unix.Fsync(fd)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &fs.PathError{Op: "fsync", Path: path, Err: err}
	}
	return nil
}

// sealName is the extended attribute that holds a published file's sha256.
//
// With a syncfs serving the files (fsSyncs), a file is renamed into place
// before its data are durable, and the syncfs then makes both so. A power
// cut in between can keep the rename, which the filesystem's journal
// commits on its own, without the data: ext4 and xfs allocate a new file's
// blocks, and set its size on disk, only when they write it back, so the
// final name holds an empty or short file. A file found in place is trusted
// as complete (complete), and that one would be reported done. The seal is
// written before the rename, as metadata that the journal commits no later
// than the rename, so a file whose bytes did not survive is known by its
// hash and downloaded again.
//
// It holds the digest's 32 bytes, which ext4 keeps inside the inode; the
// 64 characters of its hex, which dl wrote before, did not fit there and
// took a block of their own, per file (stat: 16 blocks for a 4 KiB file
// against 8): twice a 4 KiB file's space on disk, one more block to write
// at each sync, and 7 µs more CPU a file (20,000 files of 4 KiB, by hand).
// Files sealed that way are still read.
const sealName = "user.dl.sha256"

// seal records sum, a sha256 in hex, on the file. A filesystem without
// user extended attributes goes without: its files are trusted as before.
func seal(f *os.File, sum string) {
	digest, err := hex.DecodeString(sum)
	if err != nil || len(digest) != sha256.Size {
		return
	}
	rc, err := f.SyscallConn() // not Fd, which would switch the descriptor to blocking mode
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) { _ = unix.Fsetxattr(int(fd), sealName, digest, 0) })
}

// sealOf is the sha256 sealed on the open file, in hex, or "".
func sealOf(f *os.File) string {
	rc, err := f.SyscallConn()
	if err != nil {
		return ""
	}
	var b [2 * sha256.Size]byte
	n := -1
	_ = rc.Control(func(fd uintptr) { n, err = unix.Fgetxattr(int(fd), sealName, b[:]) })
	switch {
	case err != nil:
		return ""
	case n == sha256.Size:
		return hex.EncodeToString(b[:n])
	case n == len(b): // an older dl's seal, in hex
		return string(b[:n])
	}
	return ""
}
