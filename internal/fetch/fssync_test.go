package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dlkit/dl/internal/layout"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/testenv"
)

// TestFSSyncsKnowsFilesystems: syncfs serves only where it is a real sync.
func TestFSSyncsKnowsFilesystems(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want bool
	}{
		{"/proc", false},   // procfs: nothing there is a file of ours, syncfs means nothing
		{"/dev/shm", true}, // tmpfs
	} {
		fi, err := os.Stat(tc.dir)
		if err != nil {
			testenv.Missing(t, fmt.Sprintf("cannot check filesystem recognition: %v", err))
		}
		s := newFSSyncs(slog.New(slog.DiscardHandler))
		if _, ok := s.covers(fi); ok {
			t.Errorf("%s covered before it was seen", tc.dir)
		}
		s.see(tc.dir, fi)
		if _, ok := s.covers(fi); ok != tc.want {
			t.Errorf("%s: covered %v, want %v", tc.dir, ok, tc.want)
		}
		s.close()
	}
	var nilSyncs *fsSyncs // per-file syncs only (FsyncEach, or no fsync)
	fi, _ := os.Stat("/dev/shm")
	nilSyncs.see("/dev/shm", fi)
	if _, ok := nilSyncs.covers(fi); ok {
		t.Error("a nil fsSyncs covers a filesystem")
	}
}

// syncingFetcher is a Fetcher with durable writes whose download directory
// is on a filesystem that syncfs serves, counting syncfs calls and
// directory fsyncs; fail makes the next syncfs fail.
func syncingFetcher(t *testing.T, o Options) (f *Fetcher, syncfs, dirSyncs *atomic.Int32, fail *atomic.Bool) {
	t.Helper()
	o.Fsync = true
	f = newFetcher(t, o)
	fi, err := os.Stat(f.o.Dir)
	if err != nil {
		t.Fatal(err)
	}
	probe := newFSSyncs(slog.New(slog.DiscardHandler))
	probe.see(f.o.Dir, fi)
	if _, ok := probe.covers(fi); !ok && !o.FsyncEach {
		testenv.Missing(t, fmt.Sprintf("the temporary directory %s is not on a filesystem that syncfs serves (ext4, xfs, btrfs, f2fs, tmpfs): set TMPDIR to one", f.o.Dir))
	}
	probe.close()
	syncfs, dirSyncs, fail = new(atomic.Int32), new(atomic.Int32), new(atomic.Bool)
	if f.fss != nil {
		run := f.fss.group.Run
		f.fss.group.Run = func(dev uint64) error {
			syncfs.Add(1)
			if fail.CompareAndSwap(true, false) {
				return errors.New("sync filesystem: injected failure")
			}
			return run(dev)
		}
	}
	f.syncer.Run = func(dir string) error {
		dirSyncs.Add(1)
		return syncDir(dir)
	}
	return f, syncfs, dirSyncs, fail
}

// TestSyncfsServesManyFiles: with durable writes on a filesystem that
// syncfs serves, concurrent small files share syncfs calls and need no
// directory fsync, also for the shard directories they create; with
// FsyncEach every file's directory is synced instead.
func TestSyncfsServesManyFiles(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(content(4096, 3))
	}))
	defer srv.Close()
	const n = 64
	for _, each := range []bool{false, true} {
		t.Run(fmt.Sprintf("each=%v", each), func(t *testing.T) {
			f, syncfs, dirSyncs, _ := syncingFetcher(t, Options{Layout: layout.Sharded, FsyncEach: each})
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res := f.Fetch(context.Background(), record.Task{ID: fmt.Sprint(i), URL: fmt.Sprintf("%s/f%d", srv.URL, i)})
					checkDone(t, res, content(4096, 3))
				}()
			}
			wg.Wait()
			if each {
				if syncfs.Load() != 0 || dirSyncs.Load() < n {
					t.Errorf("FsyncEach: %d syncfs and %d directory fsyncs for %d files, want 0 and at least %d", syncfs.Load(), dirSyncs.Load(), n, n)
				}
				return
			}
			if got := syncfs.Load(); got < 1 || got > n {
				t.Errorf("%d syncfs calls for %d files, want 1..%d", got, n, n)
			}
			if got := dirSyncs.Load(); got != 0 {
				t.Errorf("%d directory fsyncs where syncfs serves, want 0", got)
			}
		})
	}
}

// TestSyncfsFailure: a syncfs error is the whole filesystem's, so each file
// the sync served is then synced alone: the file through its own descriptor,
// and every directory from its own up to the download directory's parent.
// When that succeeds the error was another file's and the file is done; when
// it fails too the file may not be on disk, so it must not stay at its final
// path as if complete: the result is a retryable failure naming both errors,
// and the retry downloads the file again.
func TestSyncfsFailure(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dirFails bool
	}{
		{"another file's error: done", false},
		{"the file's own error: taken away", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c counter
			srv := httptest.NewServer(c.wrap(func(w http.ResponseWriter, r *http.Request) {
				w.Write(content(4096, 4))
			}))
			defer srv.Close()
			root := filepath.Join(t.TempDir(), "downloads")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			f, _, _, fail := syncingFetcher(t, Options{Dir: root, Layout: layout.Sharded})
			task := record.Task{ID: "x", URL: srv.URL + "/x"}
			final := f.paths(task).final
			var synced []string
			var dirFail atomic.Bool
			run := f.syncer.Run
			f.syncer.Run = func(dir string) error {
				synced = append(synced, dir) // one transfer: no concurrent calls
				if dirFail.CompareAndSwap(true, false) {
					return errors.New("sync directory: injected failure")
				}
				return run(dir)
			}
			fail.Store(true)
			dirFail.Store(tc.dirFails)
			res := f.Fetch(context.Background(), task)
			if !tc.dirFails {
				checkDone(t, res, content(4096, 4))
				want := []string{filepath.Dir(final), root, filepath.Dir(root)}
				if fmt.Sprint(synced) != fmt.Sprint(want) {
					t.Errorf("directories synced alone: %q, want %q", synced, want)
				}
				return
			}
			if res.Outcome != record.Failed || !res.Retryable ||
				!strings.Contains(res.Error, "sync filesystem: injected failure") || !strings.Contains(res.Error, "sync directory: injected failure") {
				t.Fatalf("after a failed syncfs and a failed sync alone: %+v, want a retryable failure naming both", res)
			}
			if _, err := os.Stat(final); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("final file after a failed sync: %v, want it gone", err)
			}
			checkDone(t, f.Fetch(context.Background(), task), content(4096, 4))
			if c.n() != 2 {
				t.Errorf("%d requests, want 2: the retry must download again", c.n())
			}
		})
	}
}

// TestSyncfsAfterClose: a transfer that finishes after Close still gets its
// file synced.
func TestSyncfsAfterClose(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(content(100, 5))
	}))
	defer srv.Close()
	f, syncfs, _, _ := syncingFetcher(t, Options{})
	checkDone(t, f.Fetch(context.Background(), record.Task{ID: "a", URL: srv.URL + "/a"}), content(100, 5))
	f.Close()
	checkDone(t, f.Fetch(context.Background(), record.Task{ID: "b", URL: srv.URL + "/b"}), content(100, 5))
	if got := syncfs.Load(); got != 2 {
		t.Errorf("%d syncfs calls for a file before and one after Close, want 2", got)
	}
}

// TestFoundFileSyncedBeforeReport: a file found at its final path may have
// been renamed there by a transfer that has not synced it yet (another
// worker given the same task, a process that died first), so with durable
// writes it is synced before it is reported done: by a look before the
// download, and by the rename that finds it after one (ExpectNew).
func TestFoundFileSyncedBeforeReport(t *testing.T) {
	body := content(3000, 6)
	for _, tc := range []struct {
		name            string
		expectNew, each bool
		requests        int32
	}{
		{"look, syncfs", false, false, 0},
		{"look, fsync each", false, true, 0},
		{"rename, syncfs", true, false, 1},
		{"rename, fsync each", true, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c counter
			srv := httptest.NewServer(c.wrap(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
			defer srv.Close()
			f, syncfs, _, _ := syncingFetcher(t, Options{Layout: layout.Sharded, ExpectNew: tc.expectNew, FsyncEach: tc.each})
			task := record.Task{ID: "7", URL: srv.URL + "/found", SHA256: sha(body)}
			final := f.paths(task).final
			var fileDirSynced atomic.Bool
			run := f.syncer.Run
			f.syncer.Run = func(dir string) error {
				if dir == filepath.Dir(final) {
					fileDirSynced.Store(true)
				}
				return run(dir)
			}
			if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(final, body, 0o644); err != nil {
				t.Fatal(err)
			}
			checkDone(t, f.Fetch(context.Background(), task), body)
			if got := int32(c.n()); got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
			if tc.each {
				if !fileDirSynced.Load() {
					t.Errorf("the found file's directory was not synced before it was reported")
				}
				return
			}
			if syncfs.Load() < 1 {
				t.Errorf("no syncfs before the found file was reported")
			}
		})
	}
}

// TestFoundFileSyncFailureKeepsIt: when the sync of a found file fails, the
// result is a retryable failure, but the file stays (it may be old, its
// origin gone, and a syncfs error may be another file's); the retry syncs
// it again and reports it without downloading.
func TestFoundFileSyncFailureKeepsIt(t *testing.T) {
	body := content(3000, 7)
	var c counter
	srv := httptest.NewServer(c.wrap(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()
	f, syncfs, _, fail := syncingFetcher(t, Options{})
	task := record.Task{ID: "8", URL: srv.URL + "/kept"}
	final := f.paths(task).final
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(final, body, 0o644); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	res := f.Fetch(context.Background(), task)
	if res.Outcome != record.Failed || !res.Retryable || !strings.Contains(res.Error, "injected failure") {
		t.Fatalf("after a failed sync of a found file: %+v, want a retryable failure naming the sync", res)
	}
	if got, err := os.ReadFile(final); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("found file after a failed sync: %v, want it kept", err)
	}
	checkDone(t, f.Fetch(context.Background(), task), body)
	if c.n() != 0 || syncfs.Load() != 2 {
		t.Errorf("%d requests and %d syncfs calls, want 0 and 2", c.n(), syncfs.Load())
	}
}

// TestPublishedFileThatLostItsBytesIsDownloadedAgain: with a syncfs serving
// the files, a file is renamed into place before its data are durable. A
// power cut before the syncfs may keep the rename (the journal commits it)
// without the data (ext4 and xfs write a new file's blocks, and its size,
// only at writeback): an empty or short file under the final name, whose
// row is still processing. Its next delivery, or a re-run of the list, must
// download it again, not report that file done as a file found in place.
// The test leaves what the power cut leaves: the file, cut short.
func TestPublishedFileThatLostItsBytesIsDownloadedAgain(t *testing.T) {
	body := content(300000, 11)
	for _, tc := range []struct {
		name      string
		expectNew bool
		left      int64 // bytes that survived
	}{
		{"look, nothing survived", false, 0},
		{"look, a part survived", false, 65536},
		{"rename, nothing survived", true, 0},
		{"rename, a part survived", true, 65536},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c counter
			srv := httptest.NewServer(c.wrap(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
			defer srv.Close()
			f, _, _, _ := syncingFetcher(t, Options{ExpectNew: tc.expectNew})
			task := record.Task{ID: "9", URL: srv.URL + "/lost.bin"}
			probe := filepath.Join(f.o.Dir, "probe")
			if err := os.WriteFile(probe, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := unix.Setxattr(probe, "user.dl.probe", []byte("1"), 0); err != nil {
				testenv.Missing(t, fmt.Sprintf("the temporary directory's filesystem keeps no user extended attributes (%v): set TMPDIR to one that does", err))
			}
			os.Remove(probe)
			first := f.Fetch(context.Background(), task)
			checkDone(t, first, body)
			if err := os.Truncate(first.Path, tc.left); err != nil {
				t.Fatal(err)
			}

			res := f.Fetch(context.Background(), task)
			checkDone(t, res, body)
			if n := c.n(); n != 2 {
				t.Errorf("%d requests, want 2", n)
			}
		})
	}
}

// TestSealIsTheDigestsBytesAndAnOlderHexSealIsRead: the seal is the 32
// bytes of the sha256, small enough to stay in an ext4 inode (its 64 hex
// characters took a disk block per file). A file an older dl sealed in hex
// is still judged by it: trusted when it matches, downloaded again when
// the bytes it names are gone.
func TestSealIsTheDigestsBytesAndAnOlderHexSealIsRead(t *testing.T) {
	body := content(5000, 12)
	for _, tc := range []struct {
		name     string
		hexSeal  func(sum string) string // "" keeps the seal dl wrote
		requests int
	}{
		{"the seal as written", nil, 1},
		{"an older dl's hex seal of these bytes", func(sum string) string { return sum }, 1},
		{"an older dl's hex seal of bytes since lost", func(string) string { return strings.Repeat("ab", 32) }, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c counter
			srv := httptest.NewServer(c.wrap(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
			defer srv.Close()
			f, _, _, _ := syncingFetcher(t, Options{})
			task := record.Task{ID: "7", URL: srv.URL + "/sealed.bin"}
			first := f.Fetch(context.Background(), task)
			checkDone(t, first, body)
			var b [128]byte
			n, err := unix.Getxattr(first.Path, sealName, b[:])
			if err != nil {
				testenv.Missing(t, fmt.Sprintf("the temporary directory's filesystem keeps no user extended attributes (%v): set TMPDIR to one that does", err))
			}
			if got := hex.EncodeToString(b[:n]); n != sha256.Size || got != first.SHA256 {
				t.Fatalf("seal of %d bytes %q, want the 32 bytes of %s", n, b[:n], first.SHA256)
			}
			if tc.hexSeal != nil {
				if err := unix.Setxattr(first.Path, sealName, []byte(tc.hexSeal(first.SHA256)), 0); err != nil {
					t.Fatal(err)
				}
			}
			checkDone(t, f.Fetch(context.Background(), task), body)
			if got := c.n(); got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
		})
	}
}
