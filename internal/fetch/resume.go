package fetch

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/dlkit/dl/internal/record"
)

// errBusy reports a .part file locked by another transfer of the same task,
// in this process or another: a re-delivered task whose first worker is
// still at it.
var errBusy = errors.New("another transfer of this file is in progress")

// meta is the .part.meta sidecar: what the server said about the bytes in
// the .part file, so a resume can ask for "the rest of that same file"
// (If-Range) instead of splicing two versions together. A JSON file rather
// than an xattr because it works on every filesystem and a person can read
// it.
type meta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"` // strong ETags only
	LastModified string `json:"last_modified,omitempty"`
	Size         int64  `json:"size"` // the whole file's size, -1 if not announced
	// Name is the file name the response suggested (Content-Disposition)
	// for a task that names none: a resume publishes the file under it
	// whatever the later responses say, or do not say (a 416 may carry
	// no Content-Disposition).
	Name string `json:"name,omitempty"`
}

// validator is the If-Range value that makes a resume safe, or "".
func (m meta) validator() string {
	if m.ETag != "" {
		return m.ETag
	}
	return m.LastModified
}

// changed tells whether a partial response is of another version of the
// file than the part file's bytes, by the validator that both carry: a 206
// carries the ETag and Last-Modified a 200 would (RFC 9110, 15.3.7), so an
// origin that ignored If-Range still tells what it sent.
func (m meta) changed(h http.Header) bool {
	if et := h.Get("ETag"); m.ETag != "" && et != "" {
		return et != m.ETag
	}
	lm := h.Get("Last-Modified")
	if m.LastModified == "" || lm == "" || lm == m.LastModified {
		return false
	}
	a, errA := http.ParseTime(m.LastModified)
	b, errB := http.ParseTime(lm)
	return errA != nil || errB != nil || !a.Equal(b)
}

// respValidator names a response's validator for an error message.
func respValidator(h http.Header) string {
	if et := h.Get("ETag"); et != "" {
		return et
	}
	return h.Get("Last-Modified")
}

// metaFrom keeps the validators of a response, and the name it suggested.
// A weak ETag cannot go in If-Range (RFC 9110, 13.1.5), so it is dropped.
func metaFrom(rawURL string, h http.Header, size int64, name string) meta {
	m := meta{URL: rawURL, LastModified: h.Get("Last-Modified"), Size: size, Name: name}
	if et := h.Get("ETag"); strings.HasPrefix(et, `"`) {
		m.ETag = et
	}
	return m
}

// resumeMin is the smallest file worth a sidecar: below it, restarting a
// cut transfer costs less than writing and removing a sidecar for every
// file, which is most of the work when files are small.
const resumeMin = 1 << 20

// part is a locked .part file and the sha256 of the bytes in it.
type part struct {
	path, metaPath string
	f              *os.File
	info           os.FileInfo // as opened
	h              hash.Hash
	size           int64
	meta           meta // what the bytes in the file are a prefix of
	sidecar        bool // meta is on disk
	private        bool // a transfer's own part file, beside a busy shared one: never resumed
	fresh          bool // created by this transfer: empty, with no sidecar
	resumed        bool // holds an earlier response's bytes: a checksum mismatch may be the splice's
	progress       Transfer
	writeBehind    bool  // start the writeback of what is written as it goes (durable writes)
	hinted         int64 // bytes whose writeback was started
}

// openPart opens and locks the part file, creating it if needed. The lock
// (flock, which also excludes other opens in this process) keeps two
// transfers of the same task from writing one file. A part file this call
// created is fresh: no earlier transfer left bytes or a sidecar in it, and
// no finished download can hide behind it, which spares the checks a part
// file found on disk needs.
//
// The file is opened with open(2) and wrapped afterwards, because os.OpenFile
// tries to register a regular file with the network poller and undoes that,
// five system calls per file that a small download notices. It is never
// opened through a symbolic link: one planted at its name would have the
// download written over the file it points to, outside the download
// directory, and the link published as the task's file.
func openPart(path, metaPath string) (*part, error) {
	for range 3 {
		fresh := true
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if errors.Is(err, unix.EEXIST) {
			fresh = false
			fd, err = unix.Open(path, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if errors.Is(err, unix.ENOENT) {
				continue // its holder just renamed it into place
			}
		}
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("open part file: %s is a symbolic link", path)
		}
		if err != nil {
			return nil, fmt.Errorf("open part file: %w", &fs.PathError{Op: "open", Path: path, Err: err})
		}
		if err := flock(fd); err != nil {
			unix.Close(fd)
			return nil, err
		}
		f := os.NewFile(uintptr(fd), path)
		// Between the open and the lock, another transfer may have locked
		// this very file, finished it and renamed it into place; then the
		// name is free again (or taken by a newer file) and ours is that
		// finished download, not a part file.
		fi, same, err := samePath(f, path)
		if err != nil || !same {
			f.Close()
			if err != nil {
				return nil, err
			}
			continue
		}
		return &part{path: path, metaPath: metaPath, f: f, info: fi, h: sha256.New(), fresh: fresh, progress: nopTransfer{}}, nil
	}
	return nil, errBusy
}

// openPrivatePart creates a part file of this transfer's own beside the
// final path. It serves when the shared part file is locked by a transfer
// that may never finish (a worker that is paused, or cut off, and whose task
// was given to us): waiting for it would block the task for as long as that
// worker lives. The first transfer to finish publishes the file; see finish.
func openPrivatePart(final string) (*part, error) {
	f, err := os.CreateTemp(filepath.Dir(final), ".dl-*.part")
	if err != nil {
		return nil, fmt.Errorf("create private part file: %w", err)
	}
	// Locked like a shared part, so that Clean never removes it from
	// under its transfer.
	fi, err := f.Stat()
	if err == nil {
		err = lockFile(f)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("private part file: %w", err)
	}
	return &part{path: f.Name(), metaPath: f.Name() + ".meta", f: f, info: fi, h: sha256.New(), private: true, progress: nopTransfer{}}, nil
}

// lockFile is flock for an *os.File, through its raw descriptor: Fd would
// switch it to blocking mode.
func lockFile(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("lock part file: %w", err)
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = flock(int(fd)) }); err != nil {
		return fmt.Errorf("lock part file: %w", err)
	}
	return lerr
}

func flock(fd int) error {
	err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return errBusy
	}
	if err != nil {
		return fmt.Errorf("lock part file: %w", err)
	}
	return nil
}

// samePath tells whether the name path holds the open file f, and returns
// f's info. The name is looked at itself: a link there, even to f, is not f.
func samePath(f *os.File, path string) (os.FileInfo, bool, error) {
	a, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("stat part file: %w", err)
	}
	b, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("stat part file: %w", err)
	}
	return a, os.SameFile(a, b), nil
}

// prepare decides whether the bytes already in the part file can be
// resumed: only when the sidecar names the same URL and a validator that
// lets the server refuse to splice a changed file, or when the task's
// expected sha256 will catch a splice at the end. Otherwise it starts over.
// Resuming hashes the existing prefix, the one extra read a resume costs.
func (p *part) prepare(t record.Task, buf []byte) error {
	size := p.info.Size()
	if p.fresh || p.private {
		return nil
	}
	if size == 0 {
		// A sidecar without bytes is a leftover of a crash: drop it.
		if err := os.Remove(p.metaPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove part meta: %w", err)
		}
		return nil
	}
	m, err := readMeta(p.metaPath)
	if err != nil || m.URL != t.URL || (m.validator() == "" && t.SHA256 == "") ||
		(m.Size >= 0 && size > m.Size) {
		p.sidecar = true // whatever is there goes
		return p.reset()
	}
	if _, err := io.CopyBuffer(p.h, io.NewSectionReader(p.f, 0, size), buf); err != nil {
		return fmt.Errorf("hash part file: %w", err)
	}
	if _, err := p.f.Seek(size, io.SeekStart); err != nil {
		return fmt.Errorf("seek part file: %w", err)
	}
	p.size, p.meta, p.sidecar, p.resumed = size, m, true, true
	return nil
}

// resumable tells whether the part file is worth keeping after a failure:
// it has bytes, and a later attempt will be allowed to resume from them.
func (p *part) resumable(t record.Task) bool {
	return !p.private && p.size > 0 && p.sidecar && p.meta.URL == t.URL && (p.meta.validator() != "" || t.SHA256 != "")
}

// reset empties the part file for a transfer from the first byte.
func (p *part) reset() error {
	p.h.Reset()
	p.size, p.meta, p.hinted, p.resumed = 0, meta{}, 0, false
	if err := p.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate part file: %w", err)
	}
	if _, err := p.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("seek part file: %w", err)
	}
	if p.sidecar {
		if err := os.Remove(p.metaPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove part meta: %w", err)
		}
		p.sidecar = false
	}
	return nil
}

// begin records the validators of a transfer that starts at byte 0, before
// any body byte is written, so that bytes on disk never lack their meta. It
// is written even without a validator: its URL and size still let a task
// with an expected sha256 resume.
func (p *part) begin(m meta) error {
	p.meta = m
	if m.Size >= 0 && m.Size < resumeMin {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode part meta: %w", err)
	}
	if err := writeMeta(p.metaPath, append(b, '\n')); err != nil {
		return fmt.Errorf("write part meta: %w", err)
	}
	p.sidecar = true
	return nil
}

// writeMeta is os.WriteFile that does not follow a symbolic link at path,
// for the reason openPart does not.
func writeMeta(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o644)
	if errors.Is(err, unix.ELOOP) {
		return fmt.Errorf("%s is a symbolic link", path)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// remove deletes the part file and its sidecar; the lock goes with close.
// The sidecar goes first, so that a sidecar never outlives its part file and
// a fresh part file never has one.
func (p *part) remove() {
	if p.path == "" {
		return // renamed into place
	}
	if p.sidecar || !p.fresh && !p.private {
		os.Remove(p.metaPath)
	}
	os.Remove(p.path)
}

// close releases the lock.
func (p *part) close() {
	if p.f != nil {
		p.f.Close()
		p.f = nil
	}
}

// maxMeta bounds a sidecar: ours are one short JSON line.
const maxMeta = 64 << 10

// readMeta reads a sidecar. It is opened without following a link and
// without blocking on a FIFO, and must be a small regular file: whoever can
// write the download directory could have put anything at its name, and
// neither a resume nor Clean may read through it or hang on it.
func readMeta(path string) (meta, error) {
	f, fi, err := openRegular(path)
	if err != nil {
		return meta{}, err
	}
	defer f.Close()
	if fi.Size() > maxMeta {
		return meta{}, fmt.Errorf("%s is no sidecar of dl's", path)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return meta{}, err
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return meta{}, err
	}
	return m, nil
}

// contentRange parses "bytes first-last/total" (total may be "*", then -1)
// and the "bytes */total" of a 416 (first and last are then -1).
func contentRange(h string) (first, last, total int64, err error) {
	spec, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, 0, 0, fmt.Errorf("bad content-range %q", h)
	}
	rng, tot, ok := strings.Cut(spec, "/")
	if !ok {
		return 0, 0, 0, fmt.Errorf("bad content-range %q", h)
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total < 0 {
			return 0, 0, 0, fmt.Errorf("bad content-range %q", h)
		}
	}
	if rng == "*" {
		return -1, -1, total, nil
	}
	a, b, ok := strings.Cut(rng, "-")
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || first < 0 || last < first || (total >= 0 && last >= total) {
		return 0, 0, 0, fmt.Errorf("bad content-range %q", h)
	}
	return first, last, total, nil
}
