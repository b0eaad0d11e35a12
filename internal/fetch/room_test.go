package fetch

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRoomWarnsOnceWhenItCannotLook: a floor that cannot be kept (statfs
// fails: here the download directory would lie under a regular file) lets
// the task through, for the writes to tell, and says so once in the log.
func TestRoomWarnsOnceWhenItCannotLook(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	r := newRoom(filepath.Join(file, "dl"), 1<<40, slog.New(slog.NewTextHandler(&logs, nil)))
	r.every = 0
	for range 3 {
		if err := r.check(); err != nil {
			t.Fatalf("check: %v; want nil (the floor cannot be told)", err)
		}
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "--min-free is not kept") || !strings.Contains(lines[0], "not a directory") {
		t.Fatalf("logs:\n%s\nwant one warning naming the error", logs.String())
	}
}

// TestRoomRefusesBelowTheFloor: with a floor above any disk's free space,
// the check refuses with ENOSPC, naming the directory.
func TestRoomRefusesBelowTheFloor(t *testing.T) {
	dir := t.TempDir()
	r := newRoom(filepath.Join(dir, "not-yet-made"), 1<<62, slog.New(slog.DiscardHandler))
	err := r.check()
	if err == nil || !strings.Contains(err.Error(), "below --min-free") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("check: %v; want a refusal naming %s", err, dir)
	}
	if newRoom(dir, 0, nil) != nil {
		t.Fatal("a floor of 0 should need no room at all")
	}
}

func TestHumanBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0.0 MiB"},
		{900 << 10, "0.9 MiB"},
		{1<<30 - 1, "1024.0 MiB"},
		{1 << 30, "1.0 GiB"},
		{5 << 30, "5.0 GiB"},
		{1536 << 30, "1536.0 GiB"},
	} {
		if got := humanBytes(c.n); got != c.want {
			t.Errorf("humanBytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
