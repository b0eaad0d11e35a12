package testenv

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// SmallDisk mounts a tmpfs of size bytes on a fresh directory and returns
// it, so that a test can fill a real filesystem (ENOSPC) without touching the
// machine's own; with readOnly it is mounted read-only (EROFS). Mounting
// needs root (CAP_SYS_ADMIN): without it the test is Missing. The mount is
// detached at cleanup.
func SmallDisk(t testing.TB, size int64, readOnly bool) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dl-smalldisk-")
	if err != nil {
		t.Fatalf("testenv: small disk: %v", err)
	}
	var flags uintptr = unix.MS_NOSUID | unix.MS_NODEV
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", flags, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		os.Remove(dir)
		Missing(t, fmt.Sprintf("cannot mount a %d-byte tmpfs on %s (needs root): %v", size, dir, err))
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("testenv: unmount small disk %s: %v", dir, err)
		}
		os.Remove(dir)
	})
	return dir
}
