package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/origin"
	"github.com/dlkit/dl/internal/testenv"
)

// fast shortens every lease and pause so that recovery happens in seconds.
var fast = []string{"DL_LEASE=2s", "DL_QUEUE_LEASE=4s", "DL_INTERVAL=300ms", "DL_LIMIT=100",
	"DL_RETRY_BASE=200ms", "DL_RETRY_MAX=1s", "DL_STATS_EVERY=0"}

func (e *env) fastProc(name string, args ...string) testenv.Proc {
	return testenv.Proc{Bin: e.tool(name), Args: args, Env: e.with(fast...)}
}

// worker starts dl-fetch | dl-mark with the fast settings.
func (e *env) worker(args ...string) *testenv.Running {
	e.t.Helper()
	return testenv.Start(e.t, bg, nil, e.fastProc("dl-fetch", args...), e.fastProc("dl-mark"))
}

// steadyWorker is worker with a longer lease, for tests that assert that
// nothing is downloaded twice: a renewal delayed by a loaded machine must
// not look like a dead worker.
func (e *env) steadyWorker(args ...string) *testenv.Running {
	e.t.Helper()
	env := e.with(append(append([]string{}, fast...), "DL_LEASE=6s")...)
	return testenv.Start(e.t, bg, nil, testenv.Proc{Bin: e.tool("dl-fetch"), Args: args, Env: env}, e.fastProc("dl-mark"))
}

func (e *env) distributorLoop(extra ...string) *testenv.Running {
	e.t.Helper()
	return testenv.Start(e.t, bg, nil, e.script("dl-distributor", append(append([]string{}, fast...), extra...)))
}

func (e *env) count(where string) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow("SELECT COUNT(*) FROM files WHERE " + where).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// settle waits until no row is pending or processing, then stops every
// process with the exit flag and checks that each exits 0.
func (e *env) settle(timeout time.Duration, procs ...*testenv.Running) {
	e.t.Helper()
	testenv.Eventually(e.t, timeout, 100*time.Millisecond, func() bool { return e.count("status IN (0, 2)") == 0 },
		"every row done or failed")
	if _, stderr, err := testenv.Run(e.t, bg, e.tool("dl-flag"), e.vars, nil, "set"); err != nil {
		e.t.Fatalf("dl-flag set: %v %s", err, stderr)
	}
	for _, p := range procs {
		if r := p.Wait(); !r.OK() {
			e.t.Fatalf("a process did not exit 0 on the flag:\n%s", r)
		}
	}
}

func slowFiles(n int, delay string) []file {
	fs := manyFiles(n, 20000)
	for i := range fs {
		fs[i].knobs = []string{"delay=" + delay}
	}
	return fs
}

// Guarantee 1: SIGKILL of dl-fetch mid-download; its tasks are taken up again
// by a live worker within the lease and end done.
func TestWorkerKilledItsTasksComeBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := e.insert(slowFiles(30, "1s"))
	d := e.distributorLoop()
	a := e.worker("--concurrency", "8")
	testenv.Eventually(t, 60*time.Second, 20*time.Millisecond, func() bool { return e.count("status = 2 AND worker IS NOT NULL") >= 8 },
		"worker A holds eight tasks")
	a.SignalProc(0, syscall.SIGKILL) // dl-fetch only; dl-mark records what it got and exits
	a.Wait()
	killed := time.Now()
	b := e.worker("--concurrency", "8")
	e.settle(60*time.Second, d, b)
	t.Logf("all rows done %v after the kill (lease 2s)", time.Since(killed).Round(100*time.Millisecond))
	e.checkRows(files)
}

// Guarantee 2: SIGKILL of dl-mark: results it had not committed are lost with
// it, but their rows come back and end done.
func TestMarkKilledNothingLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := e.insert(slowFiles(40, "500ms"))
	d := e.distributorLoop()
	a := e.worker("--concurrency", "4")
	testenv.Eventually(t, 60*time.Second, 20*time.Millisecond, func() bool { return e.count("status = 1") >= 4 }, "some rows done")
	a.SignalProc(1, syscall.SIGKILL) // dl-mark, with results in the pipe that it never commits
	// dl-fetch fails at its next write to the closed pipe; the unit (or an
	// operator) restarts the worker. Stop it here in case it has nothing
	// left to write.
	a.SignalProc(0, syscall.SIGKILL)
	a.Wait()
	b := e.worker("--concurrency", "4")
	e.settle(60*time.Second, d, b)
	e.checkRows(files)
}

// Guarantee 2: SIGKILL of dl-enqueue at any moment (here: while it has
// claimed some batches), and of the distributor loop: the rows come back.
func TestEnqueueKilledNothingStuck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := e.insert(manyFiles(3000, 100))
	sel, stderr, err := testenv.Run(t, bg, e.tool("dl-select"), e.vars, nil, "--limit", "0")
	if err != nil {
		t.Fatalf("dl-select: %v %s", err, stderr)
	}
	// A slow reader of dl-enqueue's output stalls it mid-way: kill it then.
	enq := testenv.Start(t, bg, strings.NewReader(sel), e.fastProc("dl-enqueue", "--batch", "50"))
	testenv.Eventually(t, 60*time.Second, 5*time.Millisecond, func() bool { return e.count("status = 2") >= 500 }, "some claims")
	enq.Signal(syscall.SIGKILL)
	enq.Wait()
	d := e.distributorLoop()
	testenv.Eventually(t, 60*time.Second, 5*time.Millisecond, func() bool { return e.count("status = 2") > 0 }, "a round claims")
	d.Signal(syscall.SIGKILL)
	d.Wait()
	d = e.distributorLoop()
	w := e.worker("--concurrency", "16")
	e.settle(90*time.Second, d, w)
	e.checkRows(files[:50]) // all were checked done by settle; spot-check the files
}

// Guarantees 3 and 4: Redis goes away for 30 s and comes back empty (a
// restart without persistence), then MySQL goes away for 30 s: the tools stay
// up, wait, and the run completes.
func TestOutagesOfRedisAndMySQL(t *testing.T) {
	t.Parallel()
	e, o := newPrivateEnv(t)
	files := e.insert(slowFiles(200, "50ms"))
	d := e.distributorLoop()
	w := e.worker("--concurrency", "4")
	testenv.Eventually(t, 60*time.Second, 20*time.Millisecond, func() bool { return e.count("status = 1") >= 20 }, "a first part done")
	o.stopRedis()
	time.Sleep(30 * time.Second) // the outage itself, not a wait for a condition
	o.startRedis()
	testenv.Eventually(t, 60*time.Second, 20*time.Millisecond, func() bool { return e.count("status = 1") >= 100 }, "progress after Redis returned")
	o.stopMySQL()
	time.Sleep(30 * time.Second)
	o.startMySQL()
	defer func() {
		if t.Failed() {
			rows, _ := e.db.Query("SELECT status, COUNT(*), MIN(COALESCE(error_message,'')), COUNT(worker) FROM files GROUP BY status")
			for rows != nil && rows.Next() {
				var st, n, nw int
				var msg string
				rows.Scan(&st, &n, &msg, &nw)
				t.Logf("status %d: %d rows (%d with worker), e.g. %q", st, n, nw, msg)
			}
			t.Logf("distributor:\n%s\nfetch:\n%s\nmark:\n%s", tail(d.Stderr(0)), tail(w.Stderr(0)), tail(w.Stderr(1)))
		}
	}()
	e.settle(120*time.Second, d, w)
	e.checkRows(files)
	stderr := w.Stderr(0) + w.Stderr(1)
	if n := strings.Count(stderr, "unavailable; retrying"); n == 0 || n > 6 {
		t.Errorf("%d outage lines from the worker, want one per outage and tool:\n%s", n, stderr)
	}
}

// Guarantee 3: FLUSHALL in the middle of a run.
func TestRedisFlushallConverges(t *testing.T) {
	t.Parallel()
	e, _ := newPrivateEnv(t)
	files := e.insert(slowFiles(300, "20ms"))
	d := e.distributorLoop()
	w := e.worker("--concurrency", "4")
	testenv.Eventually(t, 60*time.Second, 20*time.Millisecond, func() bool { return e.count("status = 1") >= 30 }, "a first part done")
	if err := e.rdb.FlushAll(bg).Err(); err != nil {
		t.Fatal(err)
	}
	e.settle(90*time.Second, d, w)
	e.checkRows(files)
}

// The distributor looks at the exit flag every second and runs a round every
// DL_INTERVAL: a Redis outage is logged once when it starts and once when it
// ends, not on every look or round. It starts while Redis is away, so the
// first round fails (and says why) and the later ones wait.
func TestDistributorLogsRedisOutageOnce(t *testing.T) {
	t.Parallel()
	e, o := newPrivateEnv(t)
	e.insert(manyFiles(1, 10))
	o.stopRedis()
	d := e.distributorLoop("DL_LOG_LEVEL=info") // the lines an operator reads
	// The outage itself, not a wait for a condition: four looks at the flag.
	time.Sleep(4 * time.Second)
	o.startRedis()
	testenv.Eventually(t, 60*time.Second, 20*time.Millisecond, func() bool { return e.count("status = 2") == 1 },
		"a round after Redis returned claims the row:\n%s", d.Stderr(0))
	if _, stderr, err := testenv.Run(t, bg, e.tool("dl-flag"), e.vars, nil, "set"); err != nil {
		t.Fatalf("dl-flag set: %v %s", err, stderr)
	}
	if r := d.Wait(); !r.OK() {
		t.Fatalf("the distributor did not exit 0 on the flag:\n%s", r)
	}
	stderr := d.Stderr(0)
	for _, c := range []struct {
		text     string
		min, max int
	}{
		{"dl-distributor: redis unavailable; rounds wait until it returns: dl-flag: redis at", 1, 1},
		{"dl-distributor: redis is back after", 1, 1},
		{"dl-flag: redis at", 1, 1},
		{"connection refused", 2, 2}, // the outage line, and dl-enqueue's in the first round
		{"round failed", 0, 1},
	} {
		if n := strings.Count(stderr, c.text); n < c.min || n > c.max {
			t.Errorf("%d lines with %q, want %d to %d; stderr:\n%s", n, c.text, c.min, c.max, stderr)
		}
	}
}

// Guarantee 5: several distributors at once; without crashes every row is
// downloaded exactly once.
func TestSeveralDistributorsDownloadOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := e.insert(manyFiles(600, 512))
	d1, d2, d3 := e.distributorLoop(), e.distributorLoop(), e.distributorLoop()
	w1, w2 := e.steadyWorker("--concurrency", "8"), e.steadyWorker("--concurrency", "8")
	e.settle(90*time.Second, d1, d2, d3, w1, w2)
	e.checkRows(files)
	for _, f := range files {
		if n := e.origin.Requests(origin.Path(f.name)); n != 1 {
			t.Fatalf("%s requested %d times, want once", f.name, n)
		}
	}
}

// Guarantee 6: a download longer than the lease is not taken over while its
// worker is alive.
func TestLongDownloadNotTakenOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Lease 6 s, renewed every 2 s; the download takes 15 s.
	files := e.insert([]file{{id: "long", name: "long.bin", size: 1 << 20, knobs: []string{"delay=15s"}, wantOK: true}})
	d := e.distributorLoop()
	w1, w2 := e.steadyWorker("--concurrency", "2"), e.steadyWorker("--concurrency", "2")
	e.settle(60*time.Second, d, w1, w2)
	e.checkRows(files)
	if n := e.origin.Requests(origin.Path("long.bin")); n != 1 {
		t.Fatalf("the long download was requested %d times, want once", n)
	}
}

// Guarantee 7: transient failures are retried (in process, then in the row,
// across workers) up to the attempt limit; permanent ones fail at once.
func TestRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.insert([]file{
		{id: "flaky", name: "flaky.bin", size: 1000, knobs: []string{"fail=2"}},     // in process
		{id: "flakier", name: "flakier.bin", size: 1000, knobs: []string{"fail=4"}}, // needs a row-level retry
		{id: "down", name: "down.bin", size: 10, knobs: []string{"status=503"}},
		{id: "gone", name: "gone.bin", size: 10, knobs: []string{"status=404"}},
	})
	d := e.distributorLoop()
	w := e.worker("--concurrency", "4", "--retries", "2")
	e.settle(90*time.Second, d, w)
	got := map[string]string{}
	rows, err := e.db.Query("SELECT id, status, attempts, COALESCE(error_message, '') FROM files")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, msg string
		var status, attempts int
		rows.Scan(&id, &status, &attempts, &msg)
		got[id] = fmt.Sprintf("%d/%d", status, attempts)
		if id == "down" && !strings.Contains(msg, "gave up after 5 attempts") {
			t.Errorf("down: error %q", msg)
		}
		if id == "gone" && !strings.Contains(msg, "404") {
			t.Errorf("gone: error %q", msg)
		}
	}
	want := map[string]string{"flaky": "1/2", "flakier": "1/4", "down": "-1/5", "gone": "-1/1"}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: status/attempts %s, want %s", id, got[id], w)
		}
	}
	if n := e.origin.Requests(origin.Path("gone.bin")); n != 1 {
		t.Errorf("a 404 was requested %d times, want once", n)
	}
}

// Guarantee 10: a worker whose lease ran out while it was paused cannot
// overwrite the result of the worker that got its task.
func TestFencingOfAPausedWorker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The download takes 10 s, so A is surely stopped in the middle of it
	// even on a loaded machine (the condition below also says so).
	files := e.insert([]file{{id: "x", name: "x.bin", size: 5000, knobs: []string{"delay=10s"}, wantOK: true}})
	d := e.distributorLoop()
	a := e.worker("--concurrency", "1")
	testenv.Eventually(t, 30*time.Second, 10*time.Millisecond, func() bool { return e.inFlight("x.bin") }, "A takes the task and asks for it")
	a.SignalProc(0, syscall.SIGSTOP)
	if e.count("status = 2") != 1 {
		t.Fatal("A finished before it could be stopped")
	}
	var first string
	e.db.QueryRow("SELECT worker FROM files").Scan(&first)
	b := e.worker("--concurrency", "1")
	testenv.Eventually(t, 60*time.Second, 50*time.Millisecond, func() bool { return e.count("status = 1") == 1 }, "B finishes it:\n%s\n%s", d.Stderr(0), b.Stderr(0))
	var token string
	e.db.QueryRow("SELECT CONCAT(file_path, sha256) FROM files").Scan(&token)
	a.SignalProc(0, syscall.SIGCONT)
	defer func() {
		if t.Failed() {
			t.Logf("A's dl-fetch:\n%s\nA's dl-mark:\n%s\nB's dl-fetch:\n%s", tail(a.Stderr(0)), tail(a.Stderr(1)), tail(b.Stderr(0)))
		}
	}()
	testenv.Eventually(t, 120*time.Second, 50*time.Millisecond, func() bool {
		return strings.Contains(a.Stderr(1), "late result")
	}, "A's late result refused")
	var after string
	e.db.QueryRow("SELECT CONCAT(file_path, sha256) FROM files").Scan(&after)
	if after != token {
		t.Fatalf("row changed by the late worker: %s → %s", token, after)
	}
	e.settle(30*time.Second, d, a, b)
	e.checkRows(files)
}

// Guarantee 11: deliveries that end in a crash do not use up the retry
// budget, but a task that kills its worker every time ends failed.
func TestPoisonTaskFailsAfterDeliveries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.insert([]file{{id: "poison", name: "poison.bin", size: 10, knobs: []string{"delay=60s"}}})
	d := e.distributorLoop("DL_MAX_DELIVERIES=3")
	for i := 0; i < 3; i++ {
		w := testenv.Start(t, bg, nil,
			e.fastProc("dl-fetch", "--concurrency", "1"),
			e.fastProc("dl-mark"))
		testenv.Eventually(t, 60*time.Second, 20*time.Millisecond, func() bool {
			return e.count(fmt.Sprintf("deliveries = %d AND worker IS NOT NULL", i+1)) == 1
		}, "delivery %d", i+1)
		t.Logf("delivery %d at %v", i+1, time.Now().Format("15:04:05.000"))
		w.Signal(syscall.SIGKILL) // the task "crashes" its worker
		w.Wait()
	}
	defer func() {
		if t.Failed() {
			var st, del, att int
			e.db.QueryRow("SELECT status, deliveries, attempts FROM files").Scan(&st, &del, &att)
			t.Logf("row: status %d deliveries %d attempts %d; distributor:\n%s", st, del, att, d.Stderr(0))
		}
	}()
	testenv.Eventually(t, 60*time.Second, 50*time.Millisecond, func() bool { return e.count("status = -1") == 1 }, "poison row failed")
	_ = d.Stderr
	var msg string
	var attempts int
	e.db.QueryRow("SELECT error_message, attempts FROM files").Scan(&msg, &attempts)
	if !strings.Contains(msg, "3 deliveries ended without a result") || attempts != 0 {
		t.Fatalf("poison row: %q attempts %d", msg, attempts)
	}
	d.Signal(syscall.SIGTERM)
	d.Wait()
}

// Guarantee 9: a second SIGINT abandons transfers in flight; they are not
// lost but come back.
func TestSecondSignalAbandonsButLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := e.insert(slowFiles(10, "6s"))
	d := e.distributorLoop()
	a := e.worker("--concurrency", "4")
	testenv.Eventually(t, 60*time.Second, 20*time.Millisecond, func() bool { return e.count("status = 2 AND worker IS NOT NULL") >= 4 && e.underWay() >= 4 }, "four in flight")
	a.SignalProc(0, syscall.SIGINT)
	time.Sleep(200 * time.Millisecond) // two separate signals, as a user pressing ^C twice
	a.SignalProc(0, syscall.SIGINT)
	if r := a.Wait(); !strings.Contains(r.Procs[0].Stderr, "abandon") {
		t.Fatalf("no abandon on the second signal:\n%s", r)
	}
	b := e.worker("--concurrency", "10")
	e.settle(60*time.Second, d, b)
	e.checkRows(files)
}

// A second signal ends a worker that waits out a MySQL outage with tasks it
// has popped but not yet taken; their rows come back by their leases.
func TestSecondSignalEndsAWaitOnMySQL(t *testing.T) {
	t.Parallel()
	e, o := newPrivateEnv(t)
	files := e.insert(manyFiles(4, 1000))
	testenv.Pipeline(t, bg, nil, e.fastProc("dl-select", "--limit", "0"), e.fastProc("dl-enqueue"))
	held := e.queue() + "_held"
	if err := e.rdb.Rename(bg, e.queue(), held).Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 60*time.Second) // Wait fails the test past it
	defer cancel()
	w := testenv.Start(t, ctx, nil, e.fastProc("dl-fetch"), e.fastProc("dl-mark"))
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, func() bool {
		info, _ := e.rdb.Info(bg, "clients").Result()
		return strings.Contains(info, "blocked_clients:1")
	}, "dl-fetch waiting on the empty queue")
	o.stopMySQL()
	if err := e.rdb.Rename(bg, held, e.queue()).Err(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, func() bool {
		return strings.Contains(w.Stderr(0), "mysql unavailable; retrying")
	}, "dl-fetch waiting on MySQL with the tasks it popped")
	w.SignalProc(0, syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond) // two separate signals
	w.SignalProc(0, syscall.SIGTERM)
	w.Wait()
	o.startMySQL()
	d := e.distributorLoop()
	b := e.worker()
	e.settle(60*time.Second, d, b)
	e.checkRows(files)
}

// tail keeps the last log lines (no debug lines, no goroutine dumps) of a
// process, for failure messages.
func tail(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "SIGQUIT") {
			break
		}
		if !strings.Contains(l, "level=DEBUG") {
			keep = append(keep, l)
		}
	}
	if len(keep) > 40 {
		keep = keep[len(keep)-40:]
	}
	return strings.Join(keep, "\n")
}

// A worker whose disk fills up fails the files that met the full disk
// without charging their rows, gives back what it had not started, and
// stops with one line that says why, so that a full disk on one machine
// cannot fail the queue. Once there is room, every row ends done.
func TestFullDiskLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := e.insert(manyFiles(40, 64<<10))
	disk := testenv.SmallDisk(t, 512<<10, false) // room for about seven
	e.distributeAll()
	recorded := e.refusedWorker(disk, "no space left on device")
	if len(recorded) == 0 || len(recorded) >= len(files) {
		t.Fatalf("%d results recorded of %d files: the disk did not stop the worker", len(recorded), len(files))
	}
	if n := e.count("status = 0 AND error_message LIKE '%no space left on device%'"); n == 0 {
		t.Fatal("no row given back with the disk's error")
	}

	// With room again, a distributor round and a worker finish the rest.
	e.finishAll(files)
}

// distributeAll runs one distributor round over every due row.
func (e *env) distributeAll() {
	e.t.Helper()
	if r := testenv.Pipeline(e.t, bg, nil, e.proc("dl-select", "--limit", "0"), e.proc("dl-enqueue")); !r.OK() {
		e.t.Fatalf("distributor round failed:\n%s", r)
	}
}

// refusedWorker runs a worker whose download directory is dir, which
// refuses files, and checks that it stopped with one last line naming dir
// and saying want, and that it failed, charged and kept no row. It returns
// the result lines dl-mark recorded.
func (e *env) refusedWorker(dir, want string) []string {
	e.t.Helper()
	r := testenv.Pipeline(e.t, bg, nil,
		testenv.Proc{Bin: e.tool("dl-fetch"), Args: []string{"--mode", "batch", "--concurrency", "4"}, Env: e.with("DL_DIR=" + dir)},
		e.proc("dl-mark"))
	fetch, mark := r.Procs[0], r.Procs[1]
	if fetch.Err == nil || mark.Err != nil {
		e.t.Fatalf("want dl-fetch to fail and dl-mark to record what it got:\n%s", r)
	}
	last := lines(fetch.Stderr)
	if msg := last[len(last)-1]; !strings.Contains(msg, "stopped taking tasks") || !strings.Contains(msg, want) || !strings.Contains(msg, dir) {
		e.t.Fatalf("last line of dl-fetch's stderr %q does not say %q of %s", msg, want, dir)
	}
	if n := e.count("status = -1 OR attempts > 0"); n != 0 {
		e.t.Fatalf("%d rows failed or charged an attempt for a download directory that refused them", n)
	}
	if n := e.count("status = 2 AND worker IS NOT NULL"); n != 0 {
		e.t.Fatalf("%d rows still held by the stopped worker", n)
	}
	return lines(r.Stdout)
}

// finishAll runs a distributor round and a worker with the env's own
// download directory, and checks that every file is done and no part is
// left.
func (e *env) finishAll(files []file) {
	e.t.Helper()
	e.distributeAll()
	if r := testenv.Pipeline(e.t, bg, nil, e.proc("dl-fetch", "--mode", "batch", "--concurrency", "4"), e.proc("dl-mark")); !r.OK() {
		e.t.Fatalf("worker with its own download directory failed:\n%s", r)
	}
	e.checkRows(files)
	e.noPartials()
}

// A worker whose download directory is a file (a wrong DL_DIR), or a
// symbolic link to a directory that does not exist (a disk not mounted), can
// store nothing, whatever the task: it stops at the first task with one line
// that names the path, and charges and fails no row, as for a full disk,
// rather than running through the queue and using up every row's attempts
// in a few seconds. Pointed at a directory, the next worker does them all.
func TestDownloadDirNotADirectoryLosesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		make func(path string) error
		want string // in the last line of dl-fetch's stderr
	}{
		{"a file", func(p string) error { return os.WriteFile(p, []byte("not a directory"), 0o644) }, "not a directory"},
		{"a link to nowhere", func(p string) error { return os.Symlink(filepath.Join(filepath.Dir(p), "unmounted", "dl"), p) }, "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			files := e.insert(manyFiles(20, 4<<10))
			notDir := filepath.Join(t.TempDir(), "downloads")
			if err := tc.make(notDir); err != nil {
				t.Fatal(err)
			}
			e.distributeAll()
			e.refusedWorker(notDir, tc.want)
			e.finishAll(files)
		})
	}
}

// TestExpectedChecksumAndNameSurviveRedelivery: the sha256 and the name of
// a task line piped into dl-enqueue hold for every delivery of its row, not
// only the first: after a retryable failure and after its queue copy was
// lost and its queue lease ran out, the distributor's next rounds hand the
// row out again with them, so a wrong checksum still fails the row as a
// mismatch and the file is saved under the name the line gave. dl-select
// used to build those tasks from the id and url alone: the file was then
// accepted unverified and saved under the URL's name.
func TestExpectedChecksumAndNameSurviveRedelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	wrong := strings.Repeat("ab", 32)
	files := e.insert([]file{
		{id: "retried-sum", name: "a/retried.bin", size: 1000, knobs: []string{"fail=1"}},
		{id: "retried-name", name: "b/retried.bin", size: 1000, knobs: []string{"fail=1"}},
		{id: "lost-sum", name: "c/lost.bin", size: 1000},
		{id: "lost-name", name: "d/lost.bin", size: 1000},
	})
	line := func(f file, sum, name string) string {
		return fmt.Sprintf(`{"id":%q,"url":%q,"sha256":%q,"name":%q}`+"\n", f.id, f.url, sum, name)
	}
	enqueue := func(in string) {
		t.Helper()
		if _, stderr, err := testenv.Run(t, bg, e.tool("dl-enqueue"), e.with(fast...), strings.NewReader(in)); err != nil {
			t.Fatalf("dl-enqueue: %v\n%s", err, stderr)
		}
	}
	// Redis loses the first two tasks (a restart without persistence):
	// their rows come back when their queue leases run out.
	enqueue(line(files[2], wrong, "") + line(files[3], origin.Sum("d/lost.bin", 1000), "lost.pdf"))
	if err := e.rdb.Del(bg, e.queue()).Err(); err != nil {
		t.Fatal(err)
	}
	// These fail once, retryably, and are retried after their backoff.
	enqueue(line(files[0], wrong, "") + line(files[1], origin.Sum("b/retried.bin", 1000), "retried.pdf"))
	d := e.distributorLoop()
	w := e.worker("--concurrency", "4", "--retries", "0")
	e.settle(90*time.Second, d, w)
	rows := e.rows()
	for _, id := range []string{"retried-sum", "lost-sum"} {
		if r := rows[id]; r.status != -1 || !strings.Contains(r.errMsg.String, "does not match the expected "+wrong) {
			t.Errorf("%s: status %d, error %q; want failed as a checksum mismatch", id, r.status, r.errMsg.String)
		}
	}
	for id, name := range map[string]string{"retried-name": "-retried.pdf", "lost-name": "-lost.pdf"} {
		if r := rows[id]; r.status != 1 || !strings.HasSuffix(r.path.String, name) {
			t.Errorf("%s: status %d, file %q; want done, saved as …%s", id, r.status, r.path.String, name)
		}
	}
	// The lost ones reached no worker before their loss.
	if n := e.count("id LIKE 'retried-%' AND deliveries < 2"); n != 0 {
		t.Errorf("%d retried rows delivered once: the test did not redeliver them", n)
	}
}

// TestStopWhileWaitingForServices: a worker unit stopped while it waits for
// its services at start (DL_WAIT_FOR_SERVICES) ends at once. The script
// passes the stop to dl-fetch alone, so dl-mark learns of it only as its
// input ends; it used to wait on for the rest of the ten minutes, and the
// stop with it.
func TestStopWhileWaitingForServices(t *testing.T) {
	t.Parallel()
	e, o := newPrivateEnv(t)
	o.stopRedis()
	ctx, cancel := context.WithTimeout(bg, time.Minute) // Wait fails the test past it
	defer cancel()
	w := testenv.Start(t, ctx, nil, e.script("dl-worker", []string{"DL_WAIT_FOR_SERVICES=10m"}))
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, func() bool {
		return strings.Count(w.Stderr(0), "redis unavailable") == 2
	}, "dl-fetch and dl-mark waiting for Redis:\n%s", w.Stderr(0))
	w.SignalProc(0, syscall.SIGTERM) // as systemctl stop does (KillMode=mixed)
	begin := time.Now()
	r := w.Wait()
	if took := time.Since(begin); took > 20*time.Second {
		t.Errorf("the worker took %s to stop while waiting for Redis:\n%s", took, r)
	}
	// A stop asked for is a clean exit: systemd must not show the unit
	// failed (it used to exit 1, as for a wait that ran out).
	if !r.OK() || strings.Count(r.Procs[0].Stderr, `msg="stopped while waiting for redis"`) != 2 {
		t.Errorf("want exit 0 and dl-fetch and dl-mark each saying they stopped while waiting for redis:\n%s", r)
	}
}

// TestToolsStoppedWhileWaitingExitZero: every tool that waits for its
// services (DL_WAIT_FOR_SERVICES) and is stopped meanwhile (SIGTERM, as
// systemctl stop sends; Ctrl-C) exits 0 with one info line saying what it
// was waiting for. They used to exit 1 with the connection error, as if
// the wait had run out. The wait running out still fails.
func TestToolsStoppedWhileWaitingExitZero(t *testing.T) {
	t.Parallel()
	bin := testenv.Binaries(t)
	dsn, _ := testenv.MySQL(t)
	closed := func() string { // a port nothing listens on
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	noMySQL := "DL_MYSQL_DSN=root@tcp(" + closed() + ")/dl_wait"
	noRedis := "DL_REDIS_URL=redis://" + closed() + "/0"
	for _, tc := range []struct {
		tool    string
		args    []string
		away    string // the service that is away: mysql, redis
		wait    string // DL_WAIT_FOR_SERVICES
		wantOK  bool
		wantMsg string // on stderr, once
		input   string // written to the tool's input before the stop
	}{
		{"dl-select", nil, "mysql", "10m", true, `msg="stopped while waiting for mysql"`, ""},
		{"dl-enqueue", nil, "mysql", "10m", true, `msg="stopped while waiting for mysql"`, ""},
		{"dl-enqueue", nil, "redis", "10m", true, `msg="stopped while waiting for redis"`, ""},
		{"dl-fetch", nil, "mysql", "10m", true, `msg="stopped while waiting for mysql"`, ""},
		{"dl-fetch", nil, "redis", "10m", true, `msg="stopped while waiting for redis"`, ""},
		{"dl-mark", nil, "mysql", "10m", true, `msg="stopped while waiting for mysql"`, ""},
		{"dl-mark", nil, "redis", "10m", true, `msg="stopped while waiting for redis"`, ""},
		{"dl-mark", []string{"requeue"}, "mysql", "10m", true, `msg="stopped while waiting for mysql"`, ""},
		{"dl-stat", nil, "mysql", "10m", true, `msg="stopped while waiting for mysql"`, ""},
		{"dl-stat", nil, "redis", "10m", true, `msg="stopped while waiting for redis"`, ""},
		{"dl-fetch", nil, "redis", "1s", false, "(waited 1s for it)", ""},
		// Results already in its input are not recorded: no exit 0.
		{"dl-mark", nil, "mysql", "10m", false, "with results in its input: they are not recorded",
			`{"id":"x","url":"http://127.0.0.1:1/x","outcome":"done","path":"/nonexistent/x","bytes":1,"sha256":"` + strings.Repeat("0", 64) + `"}` + "\n"},
	} {
		t.Run(fmt.Sprintf("%s %s away %s", strings.Join(append([]string{tc.tool}, tc.args...), " "), tc.away, tc.wait), func(t *testing.T) {
			t.Parallel()
			vars := []string{"DL_MYSQL_DSN=" + dsn, "DL_REDIS_URL=redis://127.0.0.1:6379/0", "DL_DIR=" + t.TempDir(),
				"DL_KEY_PREFIX=dl_wait_test_never_used_", "DL_WAIT_FOR_SERVICES=" + tc.wait}
			if tc.away == "mysql" {
				vars = append(vars, noMySQL)
			} else {
				vars = append(vars, noRedis)
			}
			// An input that stays open, as a pipeline's does: dl-mark ends
			// its wait by itself when its input ends empty.
			in, keepOpen, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			defer keepOpen.Close()
			// Written before the start, so that the tool has read it long
			// before the stop, which waits for its first failed attempt.
			if _, err := keepOpen.WriteString(tc.input); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(bg, time.Minute) // Wait fails the test past it
			defer cancel()
			p := testenv.Start(t, ctx, in, testenv.Proc{Bin: filepath.Join(bin, tc.tool), Args: tc.args, Env: vars})
			if tc.wantOK || tc.input != "" {
				testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, func() bool {
					return strings.Contains(p.Stderr(0), tc.away+" unavailable")
				}, "%s waiting for %s:\n%s", tc.tool, tc.away, p.Stderr(0))
				p.Signal(syscall.SIGTERM)
			}
			r := p.Wait()
			if r.OK() != tc.wantOK || strings.Count(r.Procs[0].Stderr, tc.wantMsg) != 1 {
				t.Fatalf("want exit 0 %v and %q once:\n%s", tc.wantOK, tc.wantMsg, r)
			}
		})
	}
}
