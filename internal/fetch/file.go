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
	"sync"
)

// bufSize is the copy buffer: large reads keep system calls per byte low,
// which is what lets one transfer approach curl's speed.
const bufSize = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// hashFile returns the sha256 and size of a file.
func hashFile(path string, buf []byte) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("open existing file: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, buf)
	if err != nil {
		return "", 0, fmt.Errorf("hash existing file: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ensureDir creates dir and its missing parents. With durable, each new
// directory's entry is synced in its parent, or a crash could lose the
// directory and with it every file renamed into it.
func ensureDir(dir string, durable bool) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("create directory: %s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("create directory: %w", err)
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := ensureDir(parent, durable); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // another transfer made it
		}
		return fmt.Errorf("create directory: %w", err)
	}
	if durable {
		return syncDir(parent)
	}
	return nil
}

// syncDir makes the entries of dir (a rename, a new file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}
