package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/origin"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/testenv"
)

var bg = context.Background()

// The original design end to end: distributor round, then two workers in
// batch mode, every row done or failed, every file right, results in Redis.
func TestPipelineEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := manyFiles(300, 4096)
	files = append(files,
		file{id: "gone", name: "gone.bin", size: 10, knobs: []string{"status=404"}},
		file{id: "short", name: "short.bin", size: 5000, knobs: []string{"short=100"}},
		file{id: "big", name: "big.iso", size: 8 << 20, wantOK: true})
	e.insert(files)

	r := testenv.Pipeline(t, bg, nil, e.proc("dl-select", "--limit", "0"), e.proc("dl-enqueue"))
	if !r.OK() {
		t.Fatalf("distributor round failed:\n%s", r)
	}
	if n := len(lines(r.Stdout)); n != len(files) {
		t.Fatalf("enqueued %d, want %d", n, len(files))
	}
	if n := e.countStatus(2); n != len(files) {
		t.Fatalf("%d rows processing after the round, want %d", n, len(files))
	}
	if n, _ := e.rdb.LLen(bg, e.queue()).Result(); n != int64(len(files)) {
		t.Fatalf("queue holds %d, want %d", n, len(files))
	}

	var wg sync.WaitGroup
	results := make([]testenv.Result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = testenv.Pipeline(t, bg, nil,
				e.proc("dl-fetch", "--mode", "batch", "--concurrency", "8", "--retries", "0"), e.proc("dl-mark", "--max-attempts", "1"))
		}()
	}
	wg.Wait()
	total := 0
	for _, r := range results {
		if !r.OK() {
			t.Fatalf("worker failed:\n%s", r)
		}
		total += len(lines(r.Stdout))
	}
	if total != len(files) {
		t.Fatalf("workers recorded %d results, want %d", total, len(files))
	}
	e.checkRows(files)
	e.noPartials()
	if e.countStatus(2) != 0 || e.countStatus(0) != 0 {
		t.Fatal("rows left pending or processing")
	}
	// The original design's result key, kept 24 h.
	raw, err := e.rdb.Get(bg, e.prefix+"download_result:1").Result()
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(raw), &v); err != nil || v["success"] != true || v["id"] != "1" {
		t.Fatalf("result key %s", raw)
	}
	if ttl, _ := e.rdb.TTL(bg, e.prefix+"download_result:1").Result(); ttl < 23*time.Hour {
		t.Fatalf("result key TTL %v", ttl)
	}
}

// One machine, no queue: dl-select | dl-fetch - | dl-mark.
func TestSelectFetchMarkWithoutQueue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := e.insert(manyFiles(50, 1000))
	r := testenv.Pipeline(t, bg, nil, e.proc("dl-select", "--limit", "50"), e.proc("dl-fetch", "-"), e.proc("dl-mark"))
	if !r.OK() {
		t.Fatalf("pipeline failed:\n%s", r)
	}
	e.checkRows(files)
	if n, _ := e.rdb.LLen(bg, e.queue()).Result(); n != 0 {
		t.Fatalf("queue used: %d entries", n)
	}
}

// One file, nothing else: no MySQL or Redis reachable.
func TestFetchURLNeedsNoServices(t *testing.T) {
	t.Parallel()
	o, base := testenv.StartOrigin(t)
	_ = o
	dir := t.TempDir()
	u := origin.URL(base, "one/file.iso", 123456)
	stdout, stderr, err := testenv.Run(t, bg, filepath.Join(testenv.Binaries(t), "dl-fetch"),
		[]string{"DL_MYSQL_DSN=root@tcp(127.0.0.1:1)/none", "DL_REDIS_URL=redis://127.0.0.1:1/0"}, nil, "--dir", dir, u)
	if err != nil {
		t.Fatalf("dl-fetch URL: %v\n%s", err, stderr)
	}
	var res record.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("result line %q: %v", stdout, err)
	}
	if res.Outcome != record.Done || res.Bytes != 123456 || res.SHA256 != origin.Sum("one/file.iso", 123456) || res.HTTP != 200 {
		t.Fatalf("result %+v", res)
	}
	if got := sumFile(t, res.Path); got != res.SHA256 {
		t.Fatalf("file %s sha256 %s", res.Path, got)
	}
	if rel, err := filepath.Rel(dir, res.Path); err != nil || strings.HasPrefix(rel, "..") {
		t.Fatalf("file %s outside %s", res.Path, dir)
	}
	// Nor does a dl.env whose MySQL and Redis settings no tool could use.
	u = origin.URL(base, "two/file.iso", 1000)
	if _, stderr, err := testenv.Run(t, bg, filepath.Join(testenv.Binaries(t), "dl-fetch"),
		[]string{"DL_MYSQL_DSN=root@tcp(127.0.0.1:1)/", "DL_TABLE=files-x", "DL_REDIS_URL=http://x"}, nil, "--dir", dir, u); err != nil {
		t.Fatalf("dl-fetch URL with unusable DL_MYSQL_DSN, DL_TABLE and DL_REDIS_URL: %v\n%s", err, stderr)
	}
	// A failed download fails the command, as with curl and wget.
	_, stderr, err = testenv.Run(t, bg, filepath.Join(testenv.Binaries(t), "dl-fetch"), nil, nil,
		"--dir", dir, "--retries", "0", origin.URL(base, "missing", 1, "status=404"))
	if err == nil || !strings.Contains(stderr, "1 of 1 downloads failed") {
		t.Fatalf("404 exit %v, stderr %s", err, stderr)
	}
}

// Two URLs with the same base name never share a file, and names cannot
// escape the download directory.
func TestNamesNeverCollideOrEscape(t *testing.T) {
	t.Parallel()
	_, base := testenv.StartOrigin(t)
	dir := t.TempDir()
	urls := []string{
		origin.URL(base, "a/same.bin", 100), origin.URL(base, "b/same.bin", 200),
		base + "/files/..%2F..%2Fescape.bin?size=10", base + "/files/%2e%2e/x?size=10",
	}
	in := strings.Join(urls, "\n") + "\n"
	stdout, stderr, err := testenv.Run(t, bg, filepath.Join(testenv.Binaries(t), "dl-fetch"), nil, strings.NewReader(in), "--dir", dir, "-")
	if err != nil {
		t.Fatalf("dl-fetch -: %v\n%s", err, stderr)
	}
	seen := map[string]bool{}
	for _, l := range lines(stdout) {
		var r record.Result
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if r.Outcome != record.Done {
			continue // the origin may refuse the odd paths; what matters is where files land
		}
		abs, _ := filepath.Abs(r.Path)
		if rel, err := filepath.Rel(dir, abs); err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("%s escaped %s", r.Path, dir)
		}
		if seen[r.Path] {
			t.Fatalf("two URLs downloaded to %s", r.Path)
		}
		seen[r.Path] = true
	}
	if len(seen) < 2 {
		t.Fatalf("only %d files done:\n%s", len(seen), stdout)
	}
}

// Two dl-enqueue fed the same lines at the same moment never enqueue a row twice.
func TestConcurrentEnqueueClaimsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := e.insert(manyFiles(2000, 10))
	sel, stderr, err := testenv.Run(t, bg, e.tool("dl-select"), e.vars, nil, "--limit", "0")
	if err != nil {
		t.Fatalf("dl-select: %v\n%s", err, stderr)
	}
	var wg sync.WaitGroup
	outs := make([]string, 3)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, stderr, err := testenv.Run(t, bg, e.tool("dl-enqueue"), e.vars, strings.NewReader(sel), "--batch", "100")
			if err != nil {
				t.Errorf("dl-enqueue: %v\n%s", err, stderr)
			}
			outs[i] = out
		}()
	}
	wg.Wait()
	queued, err := e.rdb.LRange(bg, e.queue(), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, q := range queued {
		var tk record.Task
		if err := json.Unmarshal([]byte(q), &tk); err != nil {
			t.Fatal(err)
		}
		seen[tk.ID]++
	}
	if len(queued) != len(files) || len(seen) != len(files) {
		t.Fatalf("queue holds %d entries for %d rows, want %d each", len(queued), len(seen), len(files))
	}
	echoed := 0
	for _, o := range outs {
		echoed += len(lines(o))
	}
	if echoed != len(files) {
		t.Fatalf("echoed %d lines, want %d", echoed, len(files))
	}
}

// Bad lines: one message each with its line number, the rest goes on, the
// exit status says so.
func TestBadInputLines(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.insert([]file{{id: "1", name: "a", size: 1}, {id: "2", name: "b", size: 1}})
	in := strings.Join([]string{
		`{"id":"1","url":"` + origin.URL(e.base, "a", 1) + `"}`,
		`not json at all`,
		`{"id":"3"}`,
		`{"id":"4","url":"ftp://h/x"}`,
		strings.Repeat("x", record.MaxLine+5),
		`{"id":"2","url":"` + origin.URL(e.base, "b", 1) + `"}`,
	}, "\n") + "\n"
	out, stderr, err := testenv.Run(t, bg, e.tool("dl-enqueue"), e.vars, strings.NewReader(in))
	if err == nil {
		t.Fatal("dl-enqueue exited 0 after bad lines")
	}
	if n := len(lines(out)); n != 2 {
		t.Fatalf("enqueued %d good lines, want 2:\n%s", n, stderr)
	}
	for _, want := range []string{"line=2", "line=3", "line=4", "line=5", "4 bad task lines skipped"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "goroutine ") {
		t.Fatalf("stack trace on bad input:\n%s", stderr)
	}
}

// Lines whose rows are not pending are skipped, and dl-enqueue says how
// many; when none was pending (lines for another table, say), it warns.
func TestEnqueueSaysWhatItSkipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := e.insert([]file{{id: "1", name: "a.bin", size: 10}})
	in := `{"id":"1","url":"` + files[0].url + `"}` + "\n" + `{"id":"not-a-row","url":"http://127.0.0.1:1/x"}` + "\n"
	out, stderr, err := testenv.Run(t, bg, e.tool("dl-enqueue"), e.vars, strings.NewReader(in))
	if err != nil || len(lines(out)) != 1 {
		t.Fatalf("dl-enqueue: %v, enqueued %q\n%s", err, out, stderr)
	}
	if !strings.Contains(stderr, "task lines skipped") || !strings.Contains(stderr, "skipped=1 lines=2") {
		t.Errorf("one line of two skipped, and stderr does not say so:\n%s", stderr)
	}
	// Row 1 is claimed now: neither line names a pending row.
	out, stderr, err = testenv.Run(t, bg, e.tool("dl-enqueue"), e.vars, strings.NewReader(in))
	if err != nil || out != "" {
		t.Fatalf("dl-enqueue: %v, enqueued %q\n%s", err, out, stderr)
	}
	if !strings.Contains(stderr, "level=WARN") || !strings.Contains(stderr, "no task line named a pending row") {
		t.Errorf("no line claimed, and stderr does not warn:\n%s", stderr)
	}
}

// A missing service: one clear line naming which and where, no password.
func TestMissingServicesGiveOneClearLine(t *testing.T) {
	t.Parallel()
	bin := testenv.Binaries(t)
	tests := []struct {
		tool string
		env  []string
		args []string
		want string
	}{
		{"dl-select", []string{"DL_MYSQL_DSN=dl:hunter2@tcp(127.0.0.1:1)/downloads"}, nil, "mysql at tcp(127.0.0.1:1)/downloads"},
		{"dl-flag", []string{"DL_REDIS_URL=redis://:hunter2@127.0.0.1:1/0"}, []string{"set"}, "redis at redis://:xxxxx@127.0.0.1:1/0"},
		{"dl-select", []string{"DL_MYSQL_DSN=not a dsn"}, nil, "mysql DSN"},
	}
	for _, tc := range tests {
		_, stderr, err := testenv.Run(t, bg, filepath.Join(bin, tc.tool), tc.env, nil, tc.args...)
		if err == nil {
			t.Errorf("%s exited 0 without its service", tc.tool)
		}
		if !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "hunter2") || len(lines(stderr)) != 1 {
			t.Errorf("%s stderr, want one line with %q and no password:\n%s", tc.tool, tc.want, stderr)
		}
	}
}

// TestDistributorStopsOnOptionsTheToolsRefuse: a value in dl.env the tools
// cannot use fails every round alike. The distributor exits 2 with the
// tool's line, as the tools and the worker do, so that systemd shows the
// unit failed, instead of logging "round failed" every interval forever
// while the unit looks active. A passing failure (MySQL away) still loops.
func TestDistributorStopsOnOptionsTheToolsRefuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"DL_LIMIT=1k"}, "DL_LIMIT"},
		{[]string{"DL_QUEUE_LEASE=0"}, "DL_QUEUE_LEASE"},
		{[]string{"DL_MAX_DELIVERIES=five"}, "DL_MAX_DELIVERIES"},
		// Values no server could accept: trying again every round cannot help.
		{[]string{"DL_TABLE=files-x"}, "DL_TABLE"},
		{[]string{"DL_MYSQL_DSN=root@tcp(127.0.0.1:3306)/"}, "DL_MYSQL_DSN"},
		{[]string{"DL_REDIS_URL=http://127.0.0.1:6379/0"}, "DL_REDIS_URL"},
		{[]string{"DL_REDIS_URL=redis-cluster://127.0.0.1:1", "DL_QUEUE={a}q", "DL_KEY_PREFIX={b}"}, "DL_REDIS_URL"},
	} {
		ctx, cancel := context.WithTimeout(bg, 20*time.Second)
		p := e.script("dl-distributor", append([]string{"DL_INTERVAL=200ms"}, tc.env...))
		r := testenv.Pipeline(t, ctx, nil, p)
		cancel()
		code := -1
		var ee *exec.ExitError
		if errors.As(r.Procs[0].Err, &ee) {
			code = ee.ExitCode()
		}
		if code != 2 || !strings.Contains(r.Procs[0].Stderr, tc.want) || strings.Count(r.Procs[0].Stderr, "round failed") > 0 {
			t.Errorf("%v: exit %d (%v), stderr:\n%s\nwant exit 2 at the first round, naming %s", tc.env, code, r.Procs[0].Err, r.Procs[0].Stderr, tc.want)
		}
	}
	d := testenv.Start(t, bg, nil, e.script("dl-distributor", []string{"DL_INTERVAL=200ms", "DL_MYSQL_DSN=root@tcp(127.0.0.1:1)/x"}))
	testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, func() bool {
		return strings.Count(d.Stderr(0), "round failed") >= 3
	}, "the loop going on while MySQL is away")
	d.Signal(syscall.SIGTERM)
	d.Wait()
}

// TestDistributorRefusesAnIntervalOfNothing: DL_INTERVAL is the pause
// between rounds. One that is no duration stops the distributor with one
// line naming it, exit 2, before any round; so does a pause of nothing (0s,
// 0ms, or below the 1ms that sleep is given), which used to pass and run the
// rounds back to back, a busy loop on MySQL and Redis.
func TestDistributorRefusesAnIntervalOfNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.insert([]file{{id: "due", name: "due.bin", size: 10}})
	for _, tc := range []struct{ interval, want string }{
		{"5", "is not a duration (e.g. 30s)"},
		{"-1s", "is not a duration (e.g. 30s)"},
		{"0s", "must be above 0"},
		{"0ms", "must be above 0"},
		{"0h0m0s", "must be above 0"},
		{"0.0s", "must be above 0"},
		{"100us", "must be above 0"},
	} {
		ctx, cancel := context.WithTimeout(bg, 10*time.Second) // a loop is killed past it
		r := testenv.Pipeline(t, ctx, nil, e.script("dl-distributor", []string{"DL_INTERVAL=" + tc.interval}))
		cancel()
		code := -1
		var ee *exec.ExitError
		if errors.As(r.Procs[0].Err, &ee) {
			code = ee.ExitCode()
		}
		stderr := r.Procs[0].Stderr
		if code != 2 || len(lines(stderr)) != 1 || !strings.Contains(stderr, "DL_INTERVAL="+tc.interval+" "+tc.want) {
			t.Errorf("DL_INTERVAL=%s: exit %d (%v), stderr:\n%s\nwant exit 2 and one line: DL_INTERVAL=%s %s",
				tc.interval, code, r.Procs[0].Err, stderr, tc.interval, tc.want)
		}
		if n := e.countStatus(0); n != 1 {
			t.Fatalf("DL_INTERVAL=%s: a round ran (%d rows pending, want 1)", tc.interval, n)
		}
	}
}

// dl-flag: every command prints the flag's new or current state on stdout;
// status exits 0 when set, 1 when clear and 2 when Redis could not be asked
// (as scripts/dl-distributor reads it).
func TestFlagStatusExitCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.prefix + "download_exit_flag"
	tests := []struct {
		env      []string
		args     []string
		wantCode int
		wantOut  string
	}{
		{nil, []string{"status"}, 1, key + ": clear\n"},
		{nil, []string{"set"}, 0, key + ": set\n"},
		{nil, []string{"status"}, 0, key + ": set\n"},
		{nil, []string{"set"}, 0, key + ": set\n"},
		{nil, []string{"clear"}, 0, key + ": clear\n"},
		{nil, []string{"status"}, 1, key + ": clear\n"},
		{[]string{"DL_REDIS_URL=redis://127.0.0.1:1/0"}, []string{"status"}, 2, ""},
		{[]string{"DL_REDIS_URL=http://x"}, []string{"status"}, 2, ""},
	}
	for _, tc := range tests {
		stdout, stderr, err := testenv.Run(t, bg, e.tool("dl-flag"), append(append([]string{}, e.vars...), tc.env...), nil, tc.args...)
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("dl-flag %v: %v", tc.args, err)
		}
		errLine := strings.HasPrefix(stderr, "dl-flag: ") || strings.Contains(stderr, "\ndl-flag: ")
		if code != tc.wantCode || stdout != tc.wantOut || (code > 1) != errLine {
			t.Fatalf("%v dl-flag %v: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, an error line on stderr only for exit 2",
				tc.env, tc.args, code, stdout, stderr, tc.wantCode, tc.wantOut)
		}
		if tc.args[0] == "set" {
			if v, _ := e.rdb.Get(bg, key).Result(); v != "1" {
				t.Fatalf("flag value %q", v)
			}
		}
	}
}

// forever mode: the exit flag stops a worker, which finishes what it has and exits 0.
func TestExitFlagStopsForeverWorker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := manyFiles(20, 100)
	for i := range files {
		files[i].knobs = []string{"delay=300ms"}
	}
	e.insert(files)
	if r := testenv.Pipeline(t, bg, nil, e.proc("dl-select"), e.proc("dl-enqueue")); !r.OK() {
		t.Fatalf("enqueue:\n%s", r)
	}
	w := testenv.Start(t, bg, nil, e.proc("dl-fetch", "--concurrency", "4"), e.proc("dl-mark"))
	testenv.Eventually(t, 60*time.Second, 50*time.Millisecond, func() bool { return e.countStatus(1) >= 4 }, "first downloads done")
	if _, stderr, err := testenv.Run(t, bg, e.tool("dl-flag"), e.vars, nil, "set"); err != nil {
		t.Fatalf("dl-flag set: %v %s", err, stderr)
	}
	r := w.Wait()
	if !r.OK() {
		t.Fatalf("worker did not exit 0 on the flag:\n%s", r)
	}
	// Whatever it had taken it finished, or gave back to pending if it had
	// not started it: no row failed, and none is held by it.
	if pending, done, queued := e.countStatus(0), e.countStatus(1), e.countStatus(2); pending+done+queued != len(files) {
		t.Fatalf("pending %d + done %d + processing %d != %d", pending, done, queued, len(files))
	}
	var held int
	e.db.QueryRow("SELECT COUNT(*) FROM files WHERE status = 2 AND worker IS NOT NULL").Scan(&held)
	if held != 0 {
		t.Fatalf("%d rows still taken by the stopped worker", held)
	}
}

// SIGTERM: stop taking tasks, finish the transfers in flight, record them, exit 0.
func TestSIGTERMFinishesInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := manyFiles(14, 100)
	for i := range files[2:] {
		files[i+2].knobs = []string{"delay=1500ms"}
	}
	e.insert(files)
	if r := testenv.Pipeline(t, bg, nil, e.proc("dl-select"), e.proc("dl-enqueue")); !r.OK() {
		t.Fatalf("enqueue:\n%s", r)
	}
	w := testenv.Start(t, bg, nil, e.proc("dl-fetch", "--concurrency", "4"), e.proc("dl-mark"))
	// Both tools are up (a row is marked) and four slow transfers are in flight.
	testenv.Eventually(t, 60*time.Second, 20*time.Millisecond, func() bool {
		var done, taken int
		e.db.QueryRow("SELECT COUNT(*) FROM files WHERE status = 1").Scan(&done)
		e.db.QueryRow("SELECT COUNT(*) FROM files WHERE status = 2 AND worker IS NOT NULL").Scan(&taken)
		return done >= 1 && taken >= 4 && e.underWay() >= 4
	}, "a row done and four downloads under way")
	before := e.countStatus(1)
	w.Signal(syscall.SIGTERM) // as systemd does: to every process of the unit
	r := w.Wait()
	if !r.OK() {
		t.Fatalf("worker did not exit 0 on SIGTERM:\n%s", r)
	}
	done := e.countStatus(1)
	if done < before+4-2 || done == len(files) {
		t.Fatalf("%d done after SIGTERM (%d before): want the transfers in flight finished and the rest left", done, before)
	}
	var taken int
	e.db.QueryRow("SELECT COUNT(*) FROM files WHERE status = 2 AND worker IS NOT NULL").Scan(&taken)
	if taken != 0 {
		t.Fatalf("%d taken rows left unfinished", taken)
	}
}

// The shell scripts: the distributor loop and two workers run until every
// row is done, and all exit 0 on the exit flag.
func TestScriptsDistributorAndWorkers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := e.insert(manyFiles(200, 2048))
	fast := []string{"DL_INTERVAL=200ms", "DL_LIMIT=50"}
	d := testenv.Start(t, bg, nil, e.script("dl-distributor", fast))
	w1 := testenv.Start(t, bg, nil, e.script("dl-worker", nil, "--concurrency", "4"))
	w2 := testenv.Start(t, bg, nil, e.script("dl-worker", nil, "--concurrency", "4"))
	testenv.Eventually(t, 90*time.Second, 100*time.Millisecond, func() bool { return e.countStatus(1) == len(files) }, "all rows done")
	if _, stderr, err := testenv.Run(t, bg, e.tool("dl-flag"), e.vars, nil, "set"); err != nil {
		t.Fatalf("dl-flag set: %v %s", err, stderr)
	}
	for name, p := range map[string]*testenv.Running{"distributor": d, "worker 1": w1, "worker 2": w2} {
		if r := p.Wait(); !r.OK() {
			t.Fatalf("%s did not exit 0 on the flag:\n%s", name, r)
		}
	}
	e.checkRows(files)
	if _, err := os.Stat(e.dir); err != nil {
		t.Fatal(err)
	}
}

// Ctrl-C in a terminal, systemctl kill and kill -- -PGID signal the worker
// script's whole process group. dl-fetch must see that as one signal (finish
// the download in flight), not as the script's forwarded copy plus its own,
// which is a second signal and abandons the download.
func TestWorkerScriptGroupSignalFinishesInFlight(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			files := e.insert([]file{{id: "slow", name: "slow.bin", size: 5000, knobs: []string{"delay=6s"}, wantOK: true}})
			if r := testenv.Pipeline(t, bg, nil, e.proc("dl-select"), e.proc("dl-enqueue")); !r.OK() {
				t.Fatalf("enqueue:\n%s", r)
			}
			w := testenv.Start(t, bg, nil, e.script("dl-worker", nil))
			testenv.Eventually(t, time.Minute, 20*time.Millisecond, func() bool {
				return e.inFlight("slow.bin")
			}, "the worker taking the slow row")
			w.Signal(sig) // to the script's process group, as the terminal does
			if n := e.countStatus(2); n != 1 {
				t.Fatalf("the row was no longer in flight at the signal (%d processing): the test proves nothing", n)
			}
			if r := w.Wait(); !r.OK() {
				t.Fatalf("worker script did not exit 0 on one %v to its group:\n%s", sig, r)
			}
			e.checkRows(files)
		})
	}
}

// The worker script killed outright (SIGKILL to its group: kill -9 -- -PGID,
// or a test's cleanup) must not leave its dl-fetch running on its own: it
// stops as on SIGTERM, finishing the download in flight, which dl-mark
// records.
func TestWorkerScriptKilledStopsItsPipeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := e.insert([]file{{id: "slow", name: "slow.bin", size: 5000, knobs: []string{"delay=6s"}, wantOK: true}})
	if r := testenv.Pipeline(t, bg, nil, e.proc("dl-select"), e.proc("dl-enqueue")); !r.OK() {
		t.Fatalf("enqueue:\n%s", r)
	}
	// Its output goes to a file, as to a terminal or the journal: a pipe
	// to the test would break with the script and end the tools anyway.
	log := filepath.Join(t.TempDir(), "worker.log")
	p := e.script("dl-worker", nil)
	p.Args = []string{"-c", `exec "$0" 2>"$1"`, p.Bin, log}
	p.Bin = "/bin/bash"
	w := testenv.Start(t, bg, nil, p)
	testenv.Eventually(t, time.Minute, 20*time.Millisecond, func() bool {
		return e.inFlight("slow.bin")
	}, "the worker taking the slow row")
	var pids []string
	for _, c := range children(t, w.Pid(0)) {
		pids = append(pids, fmt.Sprint(c.pid))
	}
	if len(pids) != 2 {
		t.Fatalf("the worker script has children %v, want dl-fetch and dl-mark", pids)
	}
	w.Signal(syscall.SIGKILL)
	w.Wait()
	testenv.Eventually(t, time.Minute, 50*time.Millisecond, func() bool {
		for _, pid := range pids {
			if _, err := os.Stat("/proc/" + pid); err == nil {
				return false
			}
		}
		return true
	}, "dl-fetch and dl-mark %v to end after their script was killed", pids)
	e.checkRows(files)
	if b, _ := os.ReadFile(log); !strings.Contains(string(b), "finishing work in flight") {
		t.Errorf("dl-fetch did not stop as on SIGTERM; its log:\n%s", b)
	}
}

// A minimal system (a container, a minimal Debian) has no procps, so no
// pkill: the worker script must still pass systemd's SIGTERM on to dl-fetch,
// which finishes the download in flight, and exit 0 once dl-mark has
// recorded it. It used to lose the signal silently, and systemd killed the
// worker mid-download at TimeoutStopSec. It passes the signal to the pid of
// its pipeline's process group, which must be dl-fetch's, whether setpriv
// runs it or the shell does (util-linux, which gives setpriv, may be absent
// too).
func TestWorkerScriptStopsWithoutProcps(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		tools []string // all that PATH holds besides the dl tools
	}{
		{"with setpriv", []string{"bash", "setpriv"}},
		{"without setpriv", []string{"bash"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := t.TempDir()
			for _, name := range tc.tools {
				target, err := exec.LookPath(name)
				if err != nil {
					testenv.Missing(t, fmt.Sprintf("%s is not installed", name))
				}
				if err := os.Symlink(target, filepath.Join(path, name)); err != nil {
					t.Fatal(err)
				}
			}
			e := newEnv(t)
			if _, err := os.Stat(e.tool("pkill")); err == nil {
				t.Fatalf("%s has a pkill: the test proves nothing", e.bin)
			}
			files := e.insert([]file{{id: "slow", name: "slow.bin", size: 5000, knobs: []string{"delay=6s"}, wantOK: true}})
			if r := testenv.Pipeline(t, bg, nil, e.proc("dl-select"), e.proc("dl-enqueue")); !r.OK() {
				t.Fatalf("enqueue:\n%s", r)
			}
			ctx, cancel := context.WithTimeout(bg, time.Minute) // Wait fails the test past it
			defer cancel()
			w := testenv.Start(t, ctx, nil, e.script("dl-worker", []string{"PATH=" + path}))
			testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, func() bool {
				return e.inFlight("slow.bin")
			}, "the worker taking the slow row:\n%s", w.Stderr(0))
			var leader []string
			for _, c := range children(t, w.Pid(0)) {
				if c.pid == c.pgid {
					leader = append(leader, c.name)
				}
			}
			if len(leader) != 1 || leader[0] != "dl-fetch" {
				t.Fatalf("the worker pipeline's group leads %v, want dl-fetch alone", leader)
			}
			w.SignalProc(0, syscall.SIGTERM) // as systemctl stop does (KillMode=mixed)
			if n := e.countStatus(2); n != 1 {
				t.Fatalf("the row was no longer in flight at the signal (%d processing): the test proves nothing", n)
			}
			if r := w.Wait(); !r.OK() {
				t.Fatalf("worker script did not exit 0 on SIGTERM:\n%s", r)
			}
			e.checkRows(files)
		})
	}
}

// child is a process some process started.
type child struct {
	pid, pgid int
	name      string // as the kernel keeps it, cut to 15 bytes
}

// children lists the processes whose parent is parent, from /proc.
func children(t *testing.T, parent int) []child {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []child
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			t.Fatalf("/proc/%d/stat: %q", pid, s)
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 3 {
			t.Fatalf("/proc/%d/stat: %q", pid, s)
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == parent {
			pgid, _ := strconv.Atoi(f[2])
			out = append(out, child{pid: pid, pgid: pgid, name: s[open+1 : end]})
		}
	}
	return out
}
