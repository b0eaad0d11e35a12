package fetch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dlkit/dl/internal/layout"
	"github.com/dlkit/dl/internal/record"
)

// TestShardLink: a symbolic link that something other than dl put at a
// shard directory's name in the download directory (to /etc, to another
// disk, to another shard, to nothing) is never written through nor read
// through: the task fails for good, naming the shard, before it asks the
// origin anything; the link and what it points to stay as they were. That
// holds with or without a look for a finished file first, with or without
// durable writes, and when the link comes only after the task's path was
// chosen (the directory is made just before the part file). The download
// directory itself, or a directory above it, may be a link (a disk mounted
// elsewhere): downloads go through it, and a later run finds the file.
func TestShardLink(t *testing.T) {
	body := content(4000, 23)
	secret := []byte("root:$6$not-for-you")
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Write(body)
	}))
	defer srv.Close()
	task := record.Task{ID: "1", URL: srv.URL + "/a.bin"}
	rel := layout.Sharded.Path(task)
	shardName, base := filepath.Dir(rel), filepath.Base(rel)

	// plant puts a link at the shard's name; outside is a directory the
	// link may lead to, dir the download directory. It returns the link's
	// target.
	type plant func(t *testing.T, dir, shard, outside string) string
	linkTo := func(target func(dir, outside string) string) plant {
		return func(t *testing.T, dir, shard, outside string) string {
			to := target(dir, outside)
			if err := os.Symlink(to, shard); err != nil {
				t.Fatal(err)
			}
			return to
		}
	}
	holding := func(name string, b []byte, p plant) plant {
		return func(t *testing.T, dir, shard, outside string) string {
			if err := os.WriteFile(filepath.Join(outside, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
			return p(t, dir, shard, outside)
		}
	}
	outsideDir := linkTo(func(_, outside string) string { return outside })
	tests := []struct {
		name   string
		plant  plant
		expect string // the task's sha256
		late   bool   // the link comes after the task's path was chosen
	}{
		{name: "link to a directory outside", plant: outsideDir},
		{name: "link to a directory outside, made late", plant: outsideDir, late: true},
		{name: "link to a directory holding the task's file", plant: holding(base, secret, outsideDir)},
		{name: "link to a directory holding the task's file, another sha256 expected", plant: holding(base, secret, outsideDir), expect: sha(body)},
		{name: "link to another shard", plant: func(t *testing.T, dir, shard, outside string) string {
			if err := os.Mkdir(filepath.Join(dir, "zzz"), 0o755); err != nil {
				t.Fatal(err)
			}
			return linkTo(func(string, string) string { return "zzz" })(t, dir, shard, outside)
		}},
		{name: "dangling link", plant: linkTo(func(_, outside string) string { return filepath.Join(outside, "unmounted") })},
		{name: "dangling link, made late", plant: linkTo(func(_, outside string) string { return filepath.Join(outside, "unmounted") }), late: true},
		{name: "link to a file", plant: holding("f", secret, linkTo(func(_, outside string) string { return filepath.Join(outside, "f") }))},
	}
	for _, tt := range tests {
		for _, o := range []Options{{}, {ExpectNew: true}, {Fsync: true}, {Fsync: true, ExpectNew: true}} {
			t.Run(fmt.Sprintf("%s, fsync %v, expect new %v", tt.name, o.Fsync, o.ExpectNew), func(t *testing.T) {
				dir, outside := t.TempDir(), t.TempDir()
				o.Dir = dir
				f := newFetcher(t, o)
				shard := filepath.Join(dir, shardName)
				task := task
				task.SHA256 = tt.expect
				var res record.Result
				asked := requests.Load()
				if tt.late {
					ps := f.paths(task) // the shard is missing: nothing to refuse yet
					tt.plant(t, dir, shard, outside)
					ps.url, _ = record.ParseURL(task.URL)
					o := f.attempt(context.Background(), task, ps, nopTransfer{}, func() {})
					res = record.Result{Outcome: record.Done}
					if o.err != nil {
						res = record.Result{Outcome: record.Failed, Error: o.err.Error(), Retryable: o.retryable}
					}
				} else {
					tt.plant(t, dir, shard, outside)
					res = f.Fetch(context.Background(), task)
				}
				target, _ := os.Readlink(shard)
				if res.Outcome != record.Failed || res.Retryable || res.Local ||
					!strings.Contains(res.Error, shard+" is a symbolic link") || !strings.Contains(res.Error, "not a shard directory") {
					t.Errorf("got %+v; want a final failure naming %s", res, shard)
				}
				if !tt.late && requests.Load() != asked {
					t.Errorf("the origin was asked %d times", requests.Load()-asked)
				}
				if target == "" {
					t.Errorf("the link at %s is gone", shard)
				}
				fi, err := os.Lstat(shard)
				if err != nil || fi.Mode().Type() != os.ModeSymlink {
					t.Errorf("%s is no longer the link: %v, %v", shard, fi, err)
				}
				if got := files(t, dir); len(got) != 0 {
					t.Errorf("written into the download directory: %v", got)
				}
				want := map[string]string{}
				for _, name := range []string{base, "f"} {
					if b, err := os.ReadFile(filepath.Join(outside, name)); err == nil {
						want[name] = string(b)
					}
				}
				entries, _ := os.ReadDir(outside)
				if len(entries) != len(want) {
					t.Errorf("written through the link: %s holds %d entries, want %d", outside, len(entries), len(want))
				}
				for name, b := range want {
					if b != string(secret) {
						t.Errorf("%s outside now holds %d bytes", name, len(b))
					}
				}
			})
		}
	}

	// The shard the part file went into is moved away and a link to it
	// put in its place during the transfer: the name the server suggests
	// is looked up in the shard again, and the file is not published
	// through the link.
	t.Run("link swapped in during the transfer", func(t *testing.T) {
		dir, outside := t.TempDir(), t.TempDir()
		task := record.Task{ID: "2"}
		var shard string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			moved := filepath.Join(outside, "moved")
			if err := os.Rename(shard, moved); err != nil {
				t.Error(err)
			}
			if err := os.Symlink(moved, shard); err != nil {
				t.Error(err)
			}
			w.Header().Set("Content-Disposition", `attachment; filename="named.bin"`)
			w.Write(body)
		}))
		defer srv.Close()
		task.URL = srv.URL + "/items/"
		shard = filepath.Join(dir, filepath.Dir(layout.Sharded.Path(task)))
		res := newFetcher(t, Options{Dir: dir}).Fetch(context.Background(), task)
		if res.Outcome != record.Failed || res.Retryable || !strings.Contains(res.Error, shard+" is a symbolic link") {
			t.Errorf("got %+v; want a final failure naming %s", res, shard)
		}
		if got := files(t, outside); len(got) != 0 {
			t.Errorf("published through the link: %v", got)
		}
	})

	// The download directory, or a directory above it, may be a link.
	for _, above := range []bool{false, true} {
		for _, fsync := range []bool{false, true} {
			t.Run(fmt.Sprintf("download directory a link, above it %v, fsync %v", above, fsync), func(t *testing.T) {
				mount := t.TempDir()
				link := filepath.Join(t.TempDir(), "dl")
				dir := link
				if above {
					dir = filepath.Join(link, "downloads")
				}
				if err := os.Symlink(mount, link); err != nil {
					t.Fatal(err)
				}
				f := newFetcher(t, Options{Dir: dir, Fsync: fsync})
				res := f.Fetch(context.Background(), task)
				checkDone(t, res, body)
				if want := filepath.Join(dir, rel); res.Path != want {
					t.Errorf("path %s; want %s", res.Path, want)
				}
				inMount := filepath.Join(mount, rel)
				if above {
					inMount = filepath.Join(mount, "downloads", rel)
				}
				if _, err := os.Lstat(inMount); err != nil {
					t.Errorf("the file is not on the mount: %v", err)
				}
				// A later run finds it there, without asking the origin.
				asked := requests.Load()
				again := newFetcher(t, Options{Dir: dir, Fsync: fsync}).Fetch(context.Background(), task)
				checkDone(t, again, body)
				if again.Path != res.Path || requests.Load() != asked {
					t.Errorf("found again at %s after %d requests; want %s after none", again.Path, requests.Load()-asked, res.Path)
				}
			})
		}
	}
}
