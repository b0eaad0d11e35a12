package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Part files that no transfer will come back for stay on disk: the part
// kept for a resume of a row that then failed for good (or was deleted),
// and the private part of a transfer killed beside a busy shared one
// (openPrivatePart). Clean removes them once they are old, and never one
// that a transfer may still use:
//
//   - a part is a part only with its sidecar beside it, naming the URL it
//     holds: a file named "x.part" without one may be a finished download
//     of a URL whose name ends in .part, and is left alone. Parts below
//     resumeMin have no sidecar, but a transfer removes those itself when
//     it fails, and a killed one's is reused by the task's next delivery;
//   - a private part is ".dl-<digits>.part", a name no layout gives a file;
//   - both the part and its sidecar must be older than the age given: a live
//     transfer writes more often than its stall timeout;
//   - the part is removed under its lock (flock), after checking that the
//     name still holds the file locked: a transfer that holds or takes the
//     lock is never removed from under it, and one that opens the name
//     after the removal creates a new file.

// CleanOptions bound a Clean.
type CleanOptions struct {
	Dir       string        // the download directory
	OlderThan time.Duration // only parts untouched for this long
	DryRun    bool          // report, remove nothing
}

// Cleaned is one removed part file.
type Cleaned struct {
	Path  string // the part file; its sidecar, if any, went with it
	Bytes int64
}

// Clean removes the leftover part files under o.Dir (with DryRun, only
// names them), writes the path of each to out, one a line, and logs how
// many and how large. A file it cannot remove is logged and left.
func Clean(ctx context.Context, o CleanOptions, out io.Writer) error {
	var n, size int64
	err := walkParts(ctx, o, func(c Cleaned) error {
		n, size = n+1, size+c.Bytes
		_, err := fmt.Fprintln(out, c.Path)
		return err
	})
	if err != nil {
		return err
	}
	verb := "removed"
	if o.DryRun {
		verb = "would remove"
	}
	slog.Info(verb+" leftover part files", "dir", o.Dir, "files", n, "bytes", size, "older_than", o.OlderThan)
	return nil
}

// walkParts walks o.Dir and calls removed for each leftover part file it
// removes (or would remove, with DryRun). It needs no Fetcher: the lock and
// the sidecar are the whole protocol.
func walkParts(ctx context.Context, o CleanOptions, removed func(Cleaned) error) error {
	cutoff := time.Now().Add(-o.OlderThan)
	root := filepath.Clean(o.Dir)
	if fi, err := os.Lstat(root); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		// The download directory may be a link (a disk mounted elsewhere),
		// which WalkDir would take for a file: a trailing slash has it
		// followed, and the links below it still are not.
		root += string(filepath.Separator)
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			// A subdirectory we may not read holds nothing of ours.
			return fs.SkipDir
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		c, ok, err := cleanOne(path, d.Name(), cutoff, o.DryRun)
		if err != nil {
			// One file's trouble (a permission, a read-only disk) is no
			// reason to leave the others.
			slog.Warn("part file left in place", "path", path, "err", err)
			return nil
		}
		if !ok {
			return nil
		}
		return removed(c)
	})
	if err != nil {
		return fmt.Errorf("clean part files in %s: %w", o.Dir, err)
	}
	return nil
}

// cleanOne removes path if it is a leftover part file older than cutoff;
// ok tells whether it was (or, with dryRun, would be).
func cleanOne(path, name string, cutoff time.Time, dryRun bool) (c Cleaned, ok bool, err error) {
	metaPath := path + ".meta"
	switch {
	case strings.HasSuffix(name, ".part.meta"):
		return cleanSidecar(path, cutoff, dryRun)
	case isPrivatePart(name):
	case strings.HasSuffix(name, ".part"):
		if !oldSidecar(metaPath, cutoff) {
			return Cleaned{}, false, nil // not known to be a part, or in use
		}
	default:
		return Cleaned{}, false, nil
	}
	if !olderThan(path, cutoff) {
		return Cleaned{}, false, nil
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) {
		return Cleaned{}, false, nil
	}
	if err != nil {
		return Cleaned{}, false, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	file := os.NewFile(uintptr(fd), path)
	defer file.Close()
	if err := flock(fd); errors.Is(err, errBusy) {
		return Cleaned{}, false, nil // a transfer holds it
	} else if err != nil {
		return Cleaned{}, false, err
	}
	// Under the lock: the name must still be this file, and the file still
	// old (a transfer may have written it between the look and the lock).
	fi, same, err := samePath(file, path)
	if err != nil || !same || fi.ModTime().After(cutoff) {
		return Cleaned{}, false, err
	}
	if !dryRun {
		// The sidecar first, as part.remove does: it never outlives its part.
		if err := os.Remove(metaPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Cleaned{}, false, err
		}
		if err := os.Remove(path); err != nil {
			return Cleaned{}, false, err
		}
	}
	return Cleaned{Path: path, Bytes: fi.Size()}, true, nil
}

// cleanSidecar removes an old sidecar whose part file is gone (a crash
// between the two removals); one beside its part goes with the part.
func cleanSidecar(path string, cutoff time.Time, dryRun bool) (Cleaned, bool, error) {
	if _, err := os.Lstat(strings.TrimSuffix(path, ".meta")); !errors.Is(err, fs.ErrNotExist) {
		return Cleaned{}, false, nil
	}
	if !oldSidecar(path, cutoff) {
		return Cleaned{}, false, nil
	}
	if !dryRun {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Cleaned{}, false, err
		}
	}
	return Cleaned{Path: path}, true, nil
}

// isPrivatePart tells whether name is one openPrivatePart gives:
// os.CreateTemp's pattern ".dl-*.part" with its random digits.
func isPrivatePart(name string) bool {
	digits, ok := strings.CutPrefix(name, ".dl-")
	if !ok {
		return false
	}
	digits, ok = strings.CutSuffix(digits, ".part")
	if !ok || digits == "" {
		return false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// oldSidecar tells whether path is a part file's sidecar (dl's meta, with
// a URL) last modified before cutoff.
func oldSidecar(path string, cutoff time.Time) bool {
	if !olderThan(path, cutoff) {
		return false
	}
	m, err := readMeta(path)
	return err == nil && m.URL != ""
}

// olderThan tells whether path exists and was last modified before cutoff.
func olderThan(path string, cutoff time.Time) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode().IsRegular() && fi.ModTime().Before(cutoff)
}
