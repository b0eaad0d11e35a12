package fetch

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestCleanRemovesOnlyLeftoverParts(t *testing.T) {
	const sidecar = `{"url":"http://127.0.0.1/a","etag":"\"x\"","size":4194304}` + "\n"
	old := time.Now().Add(-48 * time.Hour)
	type file struct {
		name, text string
		fresh      bool // modified now rather than two days ago
		locked     bool // held by a transfer (flock)
		fifo       bool
		link       string // a symbolic link to this target instead of a file
	}
	cases := []struct {
		name  string
		files []file
		gone  []string // removed; every other file stays
	}{
		{"a kept part and its sidecar", []file{{name: "abc/k-a.iso.part", text: "1234"}, {name: "abc/k-a.iso.part.meta", text: sidecar}},
			[]string{"abc/k-a.iso.part", "abc/k-a.iso.part.meta"}},
		{"a part written lately", []file{{name: "abc/k-a.iso.part", text: "1234", fresh: true}, {name: "abc/k-a.iso.part.meta", text: sidecar}}, nil},
		{"a sidecar written lately", []file{{name: "abc/k-a.iso.part", text: "1234"}, {name: "abc/k-a.iso.part.meta", text: sidecar, fresh: true}}, nil},
		{"a part a transfer holds", []file{{name: "abc/k-a.iso.part", text: "1234", locked: true}, {name: "abc/k-a.iso.part.meta", text: sidecar}}, nil},
		{"a part without a sidecar may be a finished file named .part", []file{{name: "abc/k-video.part", text: "done"}}, nil},
		{"a sidecar that is not dl's", []file{{name: "abc/k-notes.part", text: "1234"}, {name: "abc/k-notes.part.meta", text: "my notes"}}, nil},
		{"a sidecar that is a FIFO", []file{{name: "abc/k-a.part", text: "1234"}, {name: "abc/k-a.part.meta", fifo: true}}, nil},
		{"a sidecar that is a link", []file{{name: "x.meta", text: sidecar}, {name: "abc/k-a.part", text: "1234"}, {name: "abc/k-a.part.meta", link: "../x.meta"}}, nil},
		{"a part that is a link", []file{{name: "y", text: "1234"}, {name: "abc/k-a.part", link: "../y"}, {name: "abc/k-a.part.meta", text: sidecar}}, nil},
		{"a sidecar whose part went", []file{{name: "abc/k-a.iso.part.meta", text: sidecar}}, []string{"abc/k-a.iso.part.meta"}},
		{"a private part of a killed transfer", []file{{name: "abc/.dl-12345.part", text: "1234"}, {name: "abc/.dl-12345.part.meta", text: sidecar}},
			[]string{"abc/.dl-12345.part", "abc/.dl-12345.part.meta"}},
		{"a private part without a sidecar", []file{{name: ".dl-987.part", text: "1234"}}, []string{".dl-987.part"}},
		{"a private part in use", []file{{name: "abc/.dl-12345.part", text: "1234", locked: true}}, nil},
		{"a private part written lately", []file{{name: "abc/.dl-12345.part", text: "1234", fresh: true}}, nil},
		{"a name like a private part's", []file{{name: "abc/.dl-x1.part", text: "1234"}}, nil},
		{"finished files", []file{{name: "abc/k-a.iso", text: "1234"}, {name: "abc/k-a.iso.meta", text: sidecar}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The download directory may be a link to where its files are
			// (a disk mounted elsewhere): the same files go.
			for _, run := range []struct{ dryRun, linked bool }{{true, false}, {false, false}, {true, true}, {false, true}} {
				dryRun := run.dryRun
				dir := t.TempDir()
				for _, f := range c.files {
					p := filepath.Join(dir, f.name)
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
					switch {
					case f.link != "":
						if err := os.Symlink(f.link, p); err != nil {
							t.Fatal(err)
						}
						continue
					case f.fifo:
						if err := syscall.Mkfifo(p, 0o644); err != nil {
							t.Fatal(err)
						}
					default:
						if err := os.WriteFile(p, []byte(f.text), 0o644); err != nil {
							t.Fatal(err)
						}
					}
					if !f.fresh {
						if err := os.Chtimes(p, old, old); err != nil {
							t.Fatal(err)
						}
					}
					if f.locked {
						h, err := os.Open(p)
						if err != nil {
							t.Fatal(err)
						}
						t.Cleanup(func() { h.Close() })
						if err := unix.Flock(int(h.Fd()), unix.LOCK_EX); err != nil {
							t.Fatal(err)
						}
					}
				}
				root := dir
				if run.linked {
					root = filepath.Join(t.TempDir(), "dl")
					if err := os.Symlink(dir, root); err != nil {
						t.Fatal(err)
					}
				}
				var got []string
				err := walkParts(context.Background(), CleanOptions{Dir: root, OlderThan: 24 * time.Hour, DryRun: dryRun}, func(c Cleaned) error {
					rel, _ := filepath.Rel(root, c.Path)
					got = append(got, rel)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				// The callback names each part once, its sidecar with it
				// (a sidecar alone is named itself).
				var want []string
				for _, g := range c.gone {
					if _, ok := isSidecarOf(g, c.gone); !ok {
						want = append(want, g)
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("dry run %v, linked %v: reported %q, want %q", dryRun, run.linked, got, want)
				}
				for _, f := range c.files {
					_, err := os.Lstat(filepath.Join(dir, f.name))
					removed := os.IsNotExist(err)
					if want := !dryRun && slices.Contains(c.gone, f.name); removed != want {
						t.Errorf("dry run %v, linked %v: %s removed %v, want %v (%v)", dryRun, run.linked, f.name, removed, want, err)
					}
				}
			}
		})
	}
}

// isSidecarOf tells whether name is the sidecar of a part among names.
func isSidecarOf(name string, names []string) (string, bool) {
	part := name[:max(len(name)-len(".meta"), 0)]
	return part, part+".meta" == name && slices.Contains(names, part)
}

func TestCleanLeavesAPrivatePartItsTransferHolds(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-48 * time.Hour)
	// A private part opened by openPrivatePart is locked, so Clean leaves it.
	pp, err := openPrivatePart(filepath.Join(dir, "k-b"))
	if err != nil {
		t.Fatal(err)
	}
	defer pp.close()
	if err := os.Chtimes(pp.path, old, old); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := walkParts(context.Background(), CleanOptions{Dir: dir, OlderThan: time.Hour}, func(c Cleaned) error { got = append(got, c.Path); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("cleaned a private part its transfer holds: %q", got)
	}
	pp.close()
	if err := walkParts(context.Background(), CleanOptions{Dir: dir, OlderThan: time.Hour}, func(c Cleaned) error { got = append(got, c.Path); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != pp.path {
		t.Fatalf("after its transfer let go, cleaned %q, want %q", got, pp.path)
	}
}
