package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/dlkit/dl/internal/layout"
	"github.com/dlkit/dl/internal/record"
)

// TestDiskRefusedClassifies: permission errors stop the worker only when
// they come from the download directory's filesystem (the directory, what is
// below it, or the parents it has to create); the same codes from the
// network or from a path elsewhere are the task's ordinary failures.
func TestDiskRefusedClassifies(t *testing.T) {
	f := newFetcher(t, Options{Dir: "/srv/downloads"})
	pathErr := func(op, path string, errno syscall.Errno) error {
		return fmt.Errorf("open part file: %w", &fs.PathError{Op: op, Path: path, Err: errno})
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"full", pathErr("write", "/srv/downloads/abc/x.part", syscall.ENOSPC), true},
		{"over quota", pathErr("write", "/srv/downloads/abc/x.part", syscall.EDQUOT), true},
		{"read-only", pathErr("mkdir", "/srv/downloads/abc", syscall.EROFS), true},
		{"below the floor", fmt.Errorf("free space on /srv/downloads is 1 GiB, below --min-free 5 GiB: %w", syscall.ENOSPC), true},
		{"part file denied", pathErr("open", "/srv/downloads/abc/x.part", syscall.EACCES), true},
		{"shard directory denied", pathErr("mkdir", "/srv/downloads/abc", syscall.EACCES), true},
		{"download directory denied", pathErr("mkdir", "/srv/downloads", syscall.EACCES), true},
		{"a parent of the download directory denied", pathErr("mkdir", "/srv", syscall.EACCES), true},
		{"immutable directory", pathErr("open", "/srv/downloads/abc/x.part", syscall.EPERM), true},
		{"rename denied", fmt.Errorf("rename part file: %w", &os.LinkError{Op: "rename", Old: "/srv/downloads/a.part", New: "/srv/downloads/a", Err: syscall.EPERM}), true},
		{"write denied", &localError{fmt.Errorf("write part file: %w", &fs.PathError{Op: "write", Path: "/srv/downloads/a.part", Err: syscall.EACCES})}, true},
		{"download directory is a file", pathErr("mkdir", "/srv/downloads/abc", syscall.ENOTDIR), true},
		{"a file under a file", pathErr("stat", "/srv/downloads/abc/x", syscall.ENOTDIR), true},
		{"download directory links nowhere", fmt.Errorf("create directory: /srv/downloads -> /mnt/nas/dl: %w", errDanglingDir), true},
		{"not a directory elsewhere", pathErr("open", "/etc/dl/token/x", syscall.ENOTDIR), false},
		{"a sibling of the download directory", pathErr("open", "/srv/downloads2/x", syscall.EACCES), false},
		{"a path elsewhere", pathErr("open", "/etc/dl/token", syscall.EACCES), false},
		{"connect denied", fmt.Errorf("GET http://h/f: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EACCES)}), false},
		{"send denied by a firewall", fmt.Errorf("GET http://h/f: %w", &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPERM)}), false},
		{"bare permission errno", fmt.Errorf("lock part file: %w", syscall.EACCES), false},
		{"i/o error", pathErr("write", "/srv/downloads/abc/x.part", syscall.EIO), true},
		{"i/o error of a sync", fmt.Errorf("sync part file: %w", &fs.PathError{Op: "sync", Path: "/srv/downloads/abc/x.part", Err: syscall.EIO}), true},
		{"i/o error elsewhere", pathErr("open", "/etc/dl/token", syscall.EIO), false},
		{"i/o error of the network", fmt.Errorf("GET http://h/f: %w", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.EIO)}), false},
		{"status", errors.New("GET http://h/f: status 403 Forbidden"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.diskRefused(tc.err); got != tc.want {
				t.Errorf("diskRefused(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestFetchPermissionDenied: a download directory the worker may not write
// (its user was not given it) is the worker's failure, like a full disk:
// Local, no attempt charged, no retry, no request. Root writes anywhere, so
// as root the test runs itself again as nobody.
func TestFetchPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsNobody(t)
		return
	}
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Write([]byte("x"))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name   string
		layout layout.Layout
		dir    func(locked string) string // the download directory, given a directory we may not write
	}{
		{"shard directory", layout.Sharded, func(locked string) string { return locked }},
		{"part file", layout.Flat, func(locked string) string { return locked }},
		{"download directory itself", layout.Sharded, func(locked string) string { return filepath.Join(locked, "dl") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requests.Store(0)
			locked := t.TempDir()
			if err := os.Chmod(locked, 0o555); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(locked, 0o755) })
			dir := tc.dir(locked)
			f := newFetcher(t, Options{Dir: dir, Layout: tc.layout, Fsync: true, Retries: 3})
			task := record.Task{ID: "1", URL: srv.URL + "/f", Attempt: 2}
			res := f.Fetch(context.Background(), task)
			if res.Outcome != record.Failed || !res.Local || !res.Retryable || res.Attempt != task.Attempt ||
				!strings.Contains(res.Error, "permission denied") || !strings.Contains(res.Error, dir) {
				t.Fatalf("got %+v; want a Local, retryable failure naming %s and permission denied, attempt %d", res, dir, task.Attempt)
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("origin saw %d requests; want none (nothing can be stored)", n)
			}
		})
	}
}

// runAsNobody runs the calling test again in a child process as the user
// nobody, for a test that needs permissions to be enforced, and fails as the
// child fails, or when that cannot be arranged: a root that cannot drop its
// privileges must not pass a test it did not run.
func runAsNobody(t *testing.T) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("running as root, and cannot find the test binary to run again as nobody: %v", err)
	}
	// The build directory is private to root: nobody runs a copy.
	bin := filepath.Join(t.TempDir(), "fetch.test")
	if err := copyExecutable(exe, bin); err != nil {
		t.Fatalf("running as root, and cannot copy the test binary for nobody: %v", err)
	}
	for d := filepath.Dir(bin); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	cmd := exec.Command(bin, "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = append(os.Environ(), "TMPDIR="+os.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running as root, and cannot run the test as nobody: %v", err)
	}
	t.Logf("as nobody:\n%s", out)
	if err != nil {
		t.Fatalf("as nobody: %v", err)
	}
	// A child that matched no test would pass having checked nothing.
	if !strings.Contains(string(out), "--- PASS: "+t.Name()+" ") {
		t.Fatalf("as nobody, %s did not run", t.Name())
	}
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
