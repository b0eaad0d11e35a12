package systemd_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/origin"
	"github.com/dlkit/dl/internal/testenv"
)

// fleet is the installed tools pointed at the test's own database, Redis
// keys, download directory and origin.
type fleet struct {
	t    *testing.T
	root string
	db   *sql.DB
	base string
	dir  string
	vars map[string]string
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{t: t, root: installed(t), dir: t.TempDir()}
	var dsn, redisURL, prefix string
	dsn, f.db = testenv.MySQL(t)
	redisURL, prefix, _ = testenv.Redis(t)
	_, f.base = testenv.StartOrigin(t)
	f.vars = map[string]string{
		"DL_MYSQL_DSN": dsn, "DL_REDIS_URL": redisURL,
		"DL_QUEUE": prefix + "download_queue", "DL_KEY_PREFIX": prefix + "download_",
		"DL_DIR": f.dir, "DL_INTERVAL": "200ms", "DL_LOG_LEVEL": "debug", "DL_CONCURRENCY": "4",
	}
	// The tools create the table; the test inserts rows into it.
	if _, stderr, err := testenv.Run(t, context.Background(), f.bin("dl-select"), f.env(), nil, "--limit", "1"); err != nil {
		t.Fatalf("dl-select: %v\n%s", err, stderr)
	}
	return f
}

func (f *fleet) bin(tool string) string { return filepath.Join(f.root, "usr", "local", "bin", tool) }

func (f *fleet) env() []string {
	var env []string
	for k, v := range f.vars {
		env = append(env, k+"="+v)
	}
	return env
}

func (f *fleet) service(name string) service { return execStart(f.t, f.root, name, f.vars) }

// stat is the installed dl-stat's --json.
func (f *fleet) stat() map[string]any {
	f.t.Helper()
	out, stderr, err := testenv.Run(f.t, context.Background(), f.bin("dl-stat"), f.env(), nil, "--json")
	if err != nil {
		f.t.Fatalf("dl-stat --json: %v\n%s", err, stderr)
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		f.t.Fatalf("dl-stat --json printed %q: %v", out, err)
	}
	return s
}

func rows(s map[string]any) map[string]float64 {
	out := map[string]float64{}
	for k, v := range s["rows"].(map[string]any) {
		out[k] = v.(float64)
	}
	return out
}

func (f *fleet) flag(cmd string) {
	f.t.Helper()
	if _, stderr, err := testenv.Run(f.t, context.Background(), f.bin("dl-flag"), f.env(), nil, cmd); err != nil {
		f.t.Fatalf("dl-flag %s: %v\n%s", cmd, err, stderr)
	}
}

// TestServicesRunTheFleet starts the distributor and two workers from their
// units' ExecStart lines, lets them download every row, and stops them with
// the exit flag: each must exit 0, the clean stop Restart=on-failure leaves
// alone.
func TestServicesRunTheFleet(t *testing.T) {
	f := newFleet(t)
	const n = 30
	sizes := map[string]int64{}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("f%d.bin", i)
		sizes[fmt.Sprint(i)] = int64(1000 * i)
		if _, err := f.db.Exec("INSERT INTO files (id, url) VALUES (?, ?)", fmt.Sprint(i), origin.URL(f.base, name, int64(1000*i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.db.Exec("INSERT INTO files (id, url) VALUES ('gone', ?)", origin.URL(f.base, "gone.bin", 10, "status=404")); err != nil {
		t.Fatal(err)
	}

	dist := start(t, f.service("dl-distributor.service"), f.dir)
	w1 := start(t, f.service("dl-worker@.service"), f.dir)
	w2 := start(t, f.service("dl-worker@.service"), f.dir)

	testenv.Eventually(t, 2*time.Minute, 200*time.Millisecond, func() bool {
		r := rows(f.stat())
		return r["done"] == n && r["failed"] == 1 && r["pending"] == 0 && r["processing"] == 0
	}, "every row done or failed, as dl-stat tells")
	s := f.stat()
	if errs := s["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["message"] != "GET <url>: status 404 Not Found" {
		t.Errorf("dl-stat errors %v", errs)
	}
	if lm := s["last_minute"].(map[string]any); lm["done"].(float64) != n {
		t.Errorf("dl-stat last minute %v, want %d done", lm, n)
	}

	f.flag("set")
	for _, p := range []*proc{dist, w1, w2} {
		if code := p.wait(t, time.Minute); code != 0 {
			t.Errorf("%s exited %d after the exit flag, want 0 (no restart); output:\n%s", p.name, code, p.stderr)
		}
	}

	rs, err := f.db.Query("SELECT id, file_path, bytes FROM files WHERE status = 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	got := 0
	for rs.Next() {
		var id, path string
		var size int64
		if err := rs.Scan(&id, &path, &size); err != nil {
			t.Fatal(err)
		}
		got++
		want := origin.Sum(fmt.Sprintf("f%s.bin", id), sizes[id])
		if size != sizes[id] || sum(t, path) != want {
			t.Errorf("row %s: %s of %d bytes does not hold the origin's file", id, path, size)
		}
	}
	if got != n {
		t.Errorf("%d rows done, want %d", got, n)
	}
}

// TestStopFinishesDownloadsInFlight plays systemctl stop: SIGTERM to each
// unit's main process only for the worker (KillMode=mixed), to the whole
// group for the distributor (KillMode=control-group). The worker must finish
// the download it has in flight, record it, and exit 0.
func TestStopFinishesDownloadsInFlight(t *testing.T) {
	f := newFleet(t)
	url := origin.URL(f.base, "slow.bin", 5000, "delay=4s")
	if _, err := f.db.Exec("INSERT INTO files (id, url) VALUES ('slow', ?)", url); err != nil {
		t.Fatal(err)
	}
	dist := start(t, f.service("dl-distributor.service"), f.dir)
	w := start(t, f.service("dl-worker@.service"), f.dir)
	testenv.Eventually(t, time.Minute, 50*time.Millisecond, func() bool {
		s := f.stat()
		return s["in_flight"].(map[string]any)["downloading"].(float64) == 1
	}, "the worker holding the slow row")

	if err := syscall.Kill(-dist.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var status int
	if err := f.db.QueryRow("SELECT status FROM files WHERE id = 'slow'").Scan(&status); err != nil || status != 2 {
		t.Fatalf("row is %d (%v) at the stop: the test did not stop the worker mid-download", status, err)
	}
	if code := w.wait(t, time.Minute); code != 0 {
		t.Errorf("worker exited %d on SIGTERM, want 0; output:\n%s", code, w.stderr)
	}
	dist.wait(t, time.Minute)
	if ws := dist.cmd.ProcessState.Sys().(syscall.WaitStatus); !(ws.Exited() && ws.ExitStatus() == 0) && !(ws.Signaled() && ws.Signal() == syscall.SIGTERM) {
		t.Errorf("distributor ended with %v on SIGTERM: systemd would call that a failure", ws)
	}
	var path sql.NullString
	if err := f.db.QueryRow("SELECT status, file_path FROM files WHERE id = 'slow'").Scan(&status, &path); err != nil || status != 1 {
		t.Fatalf("the download in flight at the stop ended as status %d (%v), want 1 (done and recorded); worker output:\n%s", status, err, w.stderr)
	}
	if sum(t, path.String) != origin.Sum("slow.bin", 5000) {
		t.Errorf("%s does not hold the origin's file", path.String)
	}
}

func sum(t *testing.T, path string) string {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Errorf("open %s: %v", path, err)
		return ""
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
