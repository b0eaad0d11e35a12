package e2e

// Interoperability with the original design: the original Python downloader
// (../shared/seed/seed_downloader.py, the article's code with only the fixes
// it needs to run) and our tools on one database, one Redis and one origin.
// The script hard-codes its Redis key names, so every test here runs its own
// redis-server and points our tools at the original names.

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/dlkit/dl/internal/origin"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/testenv"
)

// The original script's fixed names and interpreter.
const (
	seedPython   = "/usr/bin/python3"
	seedQueue    = "download_queue"
	seedExitFlag = "download_exit_flag"
	seedLogName  = "downloader.log"
)

// seedColumns are the columns of the original table, in its order.
var seedColumns = []string{"id", "url", "status", "file_path", "download_time", "error_message", "created_at", "updated_at"}

var seedFound struct {
	once   sync.Once
	script string
	skip   string // why the tests cannot run here; empty when they can
	fail   string // what is broken on a machine that has the script
}

// seedScript returns the original script's path. Without ../shared (a user's
// checkout of the module alone) the test is skipped, saying so; with it, a
// missing interpreter or library fails the test: scripts/test installs them.
func seedScript(t *testing.T) string {
	t.Helper()
	seedFound.once.Do(func() {
		seedFound.script, seedFound.skip = findSeed()
		if seedFound.skip != "" {
			return
		}
		out, err := exec.Command(seedPython, "-c", "import pymysql, redis, requests").CombinedOutput()
		if err != nil {
			seedFound.fail = fmt.Sprintf("the original script %s needs %s with Debian's python3-pymysql, python3-redis and python3-requests "+
				"(scripts/test installs them when run as root; or: apt-get install python3-pymysql python3-redis python3-requests): %v\n%s",
				seedFound.script, seedPython, err, out)
		}
	})
	if seedFound.skip != "" {
		testenv.Missing(t, "the original design is not available: "+seedFound.skip)
	}
	if seedFound.fail != "" {
		t.Fatal(seedFound.fail)
	}
	return seedFound.script
}

// findSeed looks for shared/seed/seed_downloader.py beside the module root or
// beside any directory above it.
func findSeed() (script, skip string) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Sprintf("cannot tell where the module is: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "no go.mod above the working directory"
		}
		dir = parent
	}
	root := dir
	for {
		p := filepath.Join(dir, "shared", "seed", "seed_downloader.py")
		if _, err := os.Stat(p); err == nil {
			return p, ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Sprintf("the original Python downloader (shared/seed/seed_downloader.py beside %s or a directory above it) "+
				"is not in this checkout, so interoperability with it cannot be shown here", root)
		}
		dir = parent
	}
}

// seedEnv is an env on a Redis of the test's own, with the original key
// names, that also runs the original script against the same database,
// Redis and origin.
type seedEnv struct {
	*env
	script   string
	seedDir  string // the original worker's SEED_DOWNLOAD_DIR
	workDir  string // its working directory, where it appends to downloader.log
	seedVars []string
}

// newSeedEnv makes the environment; the table does not exist yet (see
// seedMakesTable and weMakeTable).
func newSeedEnv(t *testing.T) *seedEnv {
	t.Helper()
	script := seedScript(t)
	e := &env{t: t, bin: testenv.Binaries(t)}
	e.dsn, e.db = testenv.MySQL(t)
	redisURL, _, _ := testenv.StartRedisServer(t)
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("parse %s: %v", redisURL, err)
	}
	e.rdb = redis.NewClient(opt)
	t.Cleanup(func() { e.rdb.Close() })
	e.origin, e.base = testenv.StartOrigin(t)
	e.dir = t.TempDir()
	e.vars = []string{
		"DL_MYSQL_DSN=" + e.dsn, "DL_REDIS_URL=" + redisURL,
		"DL_QUEUE=" + seedQueue, "DL_KEY_PREFIX=download_",
		"DL_DIR=" + e.dir, "DL_LOG_LEVEL=debug",
	}

	cfg, err := mysql.ParseDSN(e.dsn)
	if err != nil {
		t.Fatalf("parse the test DSN: %v", err)
	}
	if cfg.Net != "tcp" {
		t.Fatalf("the original script connects over TCP only; point DL_TEST_MYSQL_DSN at a tcp(host:port) address, not %s", cfg.Net)
	}
	dbHost, dbPort, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		t.Fatalf("MySQL address %q: %v", cfg.Addr, err)
	}
	redisHost, redisPort, err := net.SplitHostPort(opt.Addr)
	if err != nil {
		t.Fatalf("Redis address %q: %v", opt.Addr, err)
	}
	s := &seedEnv{env: e, script: script, seedDir: t.TempDir(), workDir: t.TempDir()}
	s.seedVars = []string{
		"SEED_DB_HOST=" + dbHost, "SEED_DB_PORT=" + dbPort, "SEED_DB_USER=" + cfg.User, "SEED_DB_PASSWORD=" + cfg.Passwd,
		"SEED_DB_NAME=" + cfg.DBName,
		"SEED_REDIS_HOST=" + redisHost, "SEED_REDIS_PORT=" + redisPort, "SEED_REDIS_DB=" + strconv.Itoa(opt.DB),
		"SEED_DOWNLOAD_DIR=" + s.seedDir,
		// requests would send even loopback requests through a proxy from the environment.
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
		"PYTHONDONTWRITEBYTECODE=1", // the script's directory may be read-only
	}
	return s
}

// seed is the original script in role and mode.
func (e *seedEnv) seed(role, mode string) testenv.Proc {
	return testenv.Proc{Bin: seedPython, Args: []string{e.script, "--role", role, "--mode", mode}, Env: e.seedVars, Dir: e.workDir}
}

// runSeed runs the original script to its end and checks that it went well.
func (e *seedEnv) runSeed(role, mode string) {
	e.t.Helper()
	e.checkSeed(testenv.Pipeline(e.t, bg, nil, e.seed(role, mode)), role, mode)
}

// checkSeed fails the test when the original script failed. Its worker
// catches every error in its loop and logs it instead of exiting non-zero,
// so its log is read too: a task it could not even parse is an
// incompatibility, as is any crash.
func (e *seedEnv) checkSeed(r testenv.Result, role, mode string) {
	e.t.Helper()
	log := e.seedLog()
	if !r.OK() {
		e.t.Fatalf("original %s --mode %s failed:\n%s\n--- %s:\n%s", role, mode, r, seedLogName, log)
	}
	for _, bad := range []string{" - CRITICAL - ", "无效的任务格式", "处理任务时出错"} { // crash, invalid task, error handling a task
		if strings.Contains(log, bad) {
			e.t.Fatalf("original %s --mode %s logged %q:\n%s", role, mode, bad, log)
		}
	}
}

func (e *seedEnv) seedLog() string {
	b, err := os.ReadFile(filepath.Join(e.workDir, seedLogName))
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	return string(b)
}

// seedMakesTable lets the original worker create the table, as it does on
// start; its queue is empty, so batch mode then exits.
func (e *seedEnv) seedMakesTable() {
	e.t.Helper()
	e.runSeed("worker", "batch")
	if got := e.columns(); !slices.Equal(got, seedColumns) {
		e.t.Fatalf("the original script made columns %v, want %v", got, seedColumns)
	}
}

// weMakeTable lets our tools create the table.
func (e *seedEnv) weMakeTable() {
	e.t.Helper()
	e.run(e.proc("dl-select", "--limit", "1"))
}

// run runs a pipeline of our tools and returns its output; it must succeed.
func (e *seedEnv) run(procs ...testenv.Proc) string {
	e.t.Helper()
	r := testenv.Pipeline(e.t, bg, nil, procs...)
	if !r.OK() {
		e.t.Fatalf("pipeline failed:\n%s", r)
	}
	return r.Stdout
}

func (e *seedEnv) columns() []string {
	e.t.Helper()
	rs, err := e.db.Query("SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'files' ORDER BY ordinal_position")
	if err != nil {
		e.t.Fatal(err)
	}
	defer rs.Close()
	var cols []string
	for rs.Next() {
		var c string
		if err := rs.Scan(&c); err != nil {
			e.t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if err := rs.Err(); err != nil {
		e.t.Fatal(err)
	}
	return cols
}

// seedRow is a row's original columns as text ("NULL" for NULL), in
// seedColumns order after the id.
type seedRow [7]string

func (e *seedEnv) original() map[string]seedRow {
	e.t.Helper()
	// As text in SQL, so the comparison is of stored values, not of how the
	// driver decodes them.
	rs, err := e.db.Query(`SELECT id, url, CAST(status AS CHAR), IFNULL(file_path, 'NULL'), IFNULL(CAST(download_time AS CHAR), 'NULL'),
		IFNULL(error_message, 'NULL'), CAST(created_at AS CHAR), CAST(updated_at AS CHAR) FROM files`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rs.Close()
	m := map[string]seedRow{}
	for rs.Next() {
		var id string
		var r seedRow
		if err := rs.Scan(&id, &r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6]); err != nil {
			e.t.Fatal(err)
		}
		m[id] = r
	}
	if err := rs.Err(); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// queued returns the queue's payloads, decoded as the original worker
// decodes them: any JSON object.
func (e *seedEnv) queued() []map[string]any {
	e.t.Helper()
	vals, err := e.rdb.LRange(bg, seedQueue, 0, -1).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []map[string]any
	for _, v := range vals {
		var m map[string]any
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			e.t.Fatalf("queue entry %q: %v", v, err)
		}
		out = append(out, m)
	}
	return out
}

// result returns download_result:<id>, decoded.
func (e *seedEnv) result(id string) map[string]any {
	e.t.Helper()
	key := "download_result:" + id
	raw, err := e.rdb.Get(bg, key).Result()
	if err != nil {
		e.t.Fatalf("GET %s: %v", key, err)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		e.t.Fatalf("%s = %q: %v", key, raw, err)
	}
	ttl, err := e.rdb.TTL(bg, key).Result()
	if err != nil || ttl <= 23*time.Hour || ttl > 24*time.Hour {
		e.t.Errorf("%s: TTL %v (%v), want 24 h", key, ttl, err)
	}
	return v
}

// taskIDs returns the sorted ids of task lines.
func taskIDs(t *testing.T, out string) []string {
	t.Helper()
	var ids []string
	for _, l := range lines(out) {
		tk, err := record.ParseTask([]byte(l))
		if err != nil {
			t.Fatalf("task line %q: %v", l, err)
		}
		ids = append(ids, tk.ID)
	}
	sort.Strings(ids)
	return ids
}

// A table made and used by the original script, with rows in all four
// states, is upgraded in place by our tools without a changed value, and our
// tools then work on it: they download the pending rows and the row the
// original lost to a crashed worker, and leave its finished rows alone.
func TestSeedTableUpgradedInPlace(t *testing.T) {
	t.Parallel()
	e := newSeedEnv(t)
	e.seedMakesTable()

	// Rows the original finished: one done, one failed.
	e.insert([]file{
		{id: "done-a", name: "a/report.pdf", size: 3000},
		{id: "failed-a", name: "a/gone.bin", size: 10, knobs: []string{"status=404"}},
	})
	e.runSeed("distributor", "once")
	e.runSeed("worker", "batch")
	// A row the original distributor handed to a worker that died with it:
	// the worker had popped the task, so it is in neither the queue nor done.
	ours := e.insert([]file{{id: "stuck-a", name: "a/stuck.bin", size: 2500, wantOK: true}})
	e.runSeed("distributor", "once")
	if v, err := e.rdb.LPop(bg, seedQueue).Result(); err != nil || !strings.Contains(v, `"stuck-a"`) {
		t.Fatalf("popping the lost task: %q %v", v, err)
	}
	// Pending rows; pending-b has done-a's file name, which the original
	// would have marked done with done-a's bytes.
	ours = append(ours, e.insert([]file{
		{id: "pending-a", name: "p/data.csv", size: 777, wantOK: true},
		{id: "pending-b", name: "b/report.pdf", size: 4000, wantOK: true},
	})...)
	// A table in use for a while: its rows are older than any lease.
	e.exec("UPDATE files SET created_at = created_at - INTERVAL 3 DAY, updated_at = updated_at - INTERVAL 2 HOUR")

	before := e.original()
	wantStatus := map[string]string{"done-a": "1", "failed-a": "-1", "stuck-a": "2", "pending-a": "0", "pending-b": "0"}
	for id, want := range wantStatus {
		if got := before[id][1]; got != want {
			t.Fatalf("before the upgrade: row %s has status %s, want %s (%v)", id, got, want, before[id])
		}
	}
	if got, want := before["done-a"][2], filepath.Join(e.seedDir, "report.pdf"); got != want {
		t.Fatalf("row done-a: file_path %q, want the original's %q", got, want)
	}
	if got := sumFile(t, before["done-a"][2]); got != origin.Sum("a/report.pdf", 3000) {
		t.Fatalf("the original's file for done-a has sha256 %s", got)
	}
	if before["done-a"][3] == "NULL" || before["failed-a"][3] == "NULL" || !strings.Contains(before["failed-a"][4], "404") {
		t.Fatalf("the original left no download_time or error: %v %v", before["done-a"], before["failed-a"])
	}

	// Any of our tools upgrades the table when it starts; dl-select changes
	// no row.
	if got, want := taskIDs(t, e.run(e.proc("dl-select", "--limit", "0"))), []string{"pending-a", "pending-b"}; !slices.Equal(got, want) {
		t.Fatalf("dl-select on the original table selected %v, want %v", got, want)
	}
	after := e.original()
	if !maps.Equal(before, after) {
		for id := range before {
			if before[id] != after[id] {
				t.Errorf("row %s changed by the upgrade:\nbefore %q\nafter  %q", id, before[id], after[id])
			}
		}
		t.Fatalf("the upgrade changed original values (%d rows before, %d after)", len(before), len(after))
	}
	cols := e.columns()
	if len(cols) <= len(seedColumns) || !slices.Equal(cols[:len(seedColumns)], seedColumns) {
		t.Fatalf("columns after the upgrade %v: want the original ones first, unchanged, then ours", cols)
	}
	// Every added column is nullable or defaulted, and every existing row
	// holds its default: the original's INSERTs and UPDATEs keep working.
	for _, c := range cols[len(seedColumns):] {
		var nullable string
		var def *string
		if err := e.db.QueryRow("SELECT is_nullable, column_default FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'files' AND column_name = ?", c).Scan(&nullable, &def); err != nil {
			t.Fatal(err)
		}
		if nullable != "YES" && def == nil {
			t.Errorf("added column %s is NOT NULL without a default", c)
		}
		var n int
		if err := e.db.QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM files WHERE NOT (`%s` <=> DEFAULT(`%s`))", c, c)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("added column %s: %d existing rows differ from its default", c, n)
		}
	}
	var seedIndex int
	e.db.QueryRow("SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'files' AND index_name = 'idx_status'").Scan(&seedIndex)
	if seedIndex == 0 {
		t.Error("the original's index idx_status is gone")
	}

	// Our distributor takes the pending rows and the lost one, nothing else;
	// our worker downloads them.
	enq := e.run(e.proc("dl-select", "--expired", "--limit", "0"), e.proc("dl-enqueue"))
	if got, want := taskIDs(t, enq), []string{"pending-a", "pending-b", "stuck-a"}; !slices.Equal(got, want) {
		t.Fatalf("our distributor enqueued %v, want %v", got, want)
	}
	if n := len(lines(e.run(e.proc("dl-fetch", "--mode", "batch"), e.proc("dl-mark")))); n != 3 {
		t.Fatalf("our worker recorded %d results, want 3", n)
	}
	e.checkRows(ours)
	final := e.original()
	for _, id := range []string{"done-a", "failed-a"} {
		if final[id] != before[id] {
			t.Errorf("the original's finished row %s changed:\nbefore %q\nafter  %q", id, before[id], final[id])
		}
	}
	if final["pending-b"][2] == final["done-a"][2] {
		t.Errorf("pending-b recorded the original's file %s of another URL", final["done-a"][2])
	}
}

// The original worker downloads the tasks our distributor pushed (it ignores
// the fields it does not know), and our tools see its results: nothing is
// due or expired afterwards.
func TestSeedWorkerOnOurQueue(t *testing.T) {
	t.Parallel()
	e := newSeedEnv(t)
	e.weMakeTable()
	// Distinct base names: the original stores each file under its base name.
	files := e.insert([]file{
		{id: "1", name: "one/alpha.bin", size: 5000, wantOK: true},
		{id: "2", name: "two/beta.bin", size: 200 << 10, wantOK: true},
		{id: "3", name: "three/gamma.txt", size: 1, wantOK: true},
		{id: "4", name: "four/missing.bin", size: 10, knobs: []string{"status=404"}},
	})
	// Row 1 asks for a checksum and a name, which its payload carries; the
	// original worker ignores them, as it ignores the token.
	e.exec("UPDATE files SET expected_sha256 = ?, target_name = 'renamed.bin' WHERE id = '1'", origin.Sum(files[0].name, files[0].size))
	if got := taskIDs(t, e.run(e.proc("dl-select"), e.proc("dl-enqueue"))); len(got) != len(files) {
		t.Fatalf("our distributor enqueued %v, want all %d", got, len(files))
	}
	for _, p := range e.queued() {
		if p["id"] == nil || p["url"] == nil || p["token"] == nil {
			t.Fatalf("our payload %v lacks id, url or the claim token", p)
		}
		if p["id"] == "1" && (p["sha256"] != origin.Sum(files[0].name, files[0].size) || p["name"] != "renamed.bin") {
			t.Fatalf("our payload %v lacks the row's sha256 and name", p)
		}
	}

	e.runSeed("worker", "batch")

	if n, _ := e.rdb.LLen(bg, seedQueue).Result(); n != 0 {
		t.Fatalf("the original worker left %d tasks in the queue", n)
	}
	rows := e.rows()
	for _, f := range files {
		r := rows[f.id]
		if !f.wantOK {
			if r.status != -1 || !strings.Contains(r.errMsg.String, "404") {
				t.Errorf("row %s: status %d error %q, want -1 with the 404", f.id, r.status, r.errMsg.String)
			}
			continue
		}
		want := filepath.Join(e.seedDir, path.Base(f.name))
		if r.status != 1 || r.path.String != want || r.errMsg.Valid {
			t.Errorf("row %s: status %d path %q error %q, want 1 at %s", f.id, r.status, r.path.String, r.errMsg.String, want)
			continue
		}
		if got := sumFile(t, want); got != origin.Sum(f.name, f.size) {
			t.Errorf("row %s: the original's file has sha256 %s, want %s", f.id, got, origin.Sum(f.name, f.size))
		}
		if v := e.result(f.id); v["success"] != true || v["id"] != f.id {
			t.Errorf("the original's result for %s: %v", f.id, v)
		}
	}

	// Our tools read the original worker's outcome as final: nothing is due,
	// nothing is expired, and a queue worker of ours finds nothing to do.
	if out := e.run(e.proc("dl-select", "--expired", "--limit", "0")); out != "" {
		t.Fatalf("dl-select --expired after the original worker selected:\n%s", out)
	}
	if out := e.run(e.proc("dl-fetch", "--mode", "batch"), e.proc("dl-mark")); out != "" {
		t.Fatalf("our worker found work after the original worker:\n%s", out)
	}
	if n := e.countStatus(1); n != 3 {
		t.Fatalf("%d rows done, want 3", n)
	}
}

// Our worker takes the tasks the original distributor pushed — payloads
// without a claim token — and every row ends done with the right bytes, even
// two URLs with one file name, which the original gets wrong.
func TestOurWorkerOnSeedQueue(t *testing.T) {
	t.Parallel()
	e := newSeedEnv(t)
	e.seedMakesTable()
	files := e.insert([]file{
		{id: "1", name: "x/same.bin", size: 4000, wantOK: true},
		{id: "2", name: "y/same.bin", size: 6000, wantOK: true},
		{id: "3", name: "z/big.iso", size: 3 << 20, wantOK: true},
		{id: "4", name: "z/missing.bin", size: 10, knobs: []string{"status=404"}},
	})
	e.runSeed("distributor", "once")
	payloads := e.queued()
	if len(payloads) != len(files) {
		t.Fatalf("the original distributor pushed %d tasks, want %d", len(payloads), len(files))
	}
	for _, p := range payloads {
		if len(p) != 2 || p["id"] == nil || p["url"] == nil {
			t.Fatalf("the original's payload %v: want exactly id and url", p)
		}
	}
	if n := e.countStatus(2); n != len(files) {
		t.Fatalf("%d rows processing after the original distributor, want %d", n, len(files))
	}

	out := e.run(e.proc("dl-fetch", "--mode", "batch", "--retries", "0"), e.proc("dl-mark", "--max-attempts", "1"))
	if n := len(lines(out)); n != len(files) {
		t.Fatalf("our worker recorded %d results, want %d:\n%s", n, len(files), out)
	}
	e.checkRows(files)
	e.noPartials()
	var held, deliveries int
	e.db.QueryRow("SELECT COUNT(*) FROM files WHERE claim_token IS NOT NULL OR lease_until IS NOT NULL").Scan(&held)
	e.db.QueryRow("SELECT COUNT(*) FROM files WHERE deliveries = 1").Scan(&deliveries)
	if held != 0 || deliveries != len(files) {
		t.Fatalf("%d rows still held, %d delivered once: want 0 and %d", held, deliveries, len(files))
	}
	if n, _ := e.rdb.LLen(bg, seedQueue).Result(); n != 0 {
		t.Fatalf("%d tasks left in the queue", n)
	}
	if out := e.run(e.proc("dl-select", "--expired", "--limit", "0")); out != "" {
		t.Fatalf("rows due after our worker:\n%s", out)
	}
	for _, f := range files {
		if v := e.result(f.id); v["success"] != f.wantOK {
			t.Errorf("result of %s: %v", f.id, v)
		}
	}
}

// The original distributor pushes its tasks before it marks their rows 2, so
// a worker may pop a task whose row is still 0 — for good if the distributor
// dies in between. Here a trigger refuses its UPDATE (ours set a claim token;
// its does not), so the original's own code leaves exactly that: tokenless
// tasks in the queue for rows at 0. Our worker takes and finishes them.
func TestOurWorkerTakesSeedTasksOfPendingRows(t *testing.T) {
	t.Parallel()
	e := newSeedEnv(t)
	e.seedMakesTable()
	e.run(e.proc("dl-select", "--limit", "0")) // upgrade: the trigger reads claim_token
	files := e.insert([]file{
		{id: "5", name: "w/five.bin", size: 5000, wantOK: true},
		{id: "6", name: "w/six.bin", size: 6000, wantOK: true},
		{id: "7", name: "w/seven.bin", size: 7000, wantOK: true},
	})
	e.exec("CREATE TRIGGER refuse_seed_mark BEFORE UPDATE ON files FOR EACH ROW " +
		"IF OLD.status = 0 AND NEW.status = 2 AND NEW.claim_token IS NULL THEN " +
		"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'dltest: the distributor dies here'; END IF")
	r := testenv.Pipeline(t, bg, nil, e.seed("distributor", "once"))
	if r.OK() || !strings.Contains(r.Procs[0].Stderr, "the distributor dies here") {
		t.Fatalf("the original distributor's UPDATE was not refused:\n%s", r)
	}
	e.exec("DROP TRIGGER refuse_seed_mark")
	if n, _ := e.rdb.LLen(bg, seedQueue).Result(); n != int64(len(files)) || e.countStatus(0) != len(files) {
		t.Fatalf("queue %d, %d rows pending: want the original's %d tasks pushed and their rows still 0", n, e.countStatus(0), len(files))
	}

	out := e.run(e.proc("dl-fetch", "--mode", "batch"), e.proc("dl-mark"))
	if n := len(lines(out)); n != len(files) {
		t.Fatalf("our worker recorded %d results, want %d:\n%s", n, len(files), out)
	}
	e.checkRows(files)
	var delivered int
	e.db.QueryRow("SELECT COUNT(*) FROM files WHERE deliveries = 1 AND claim_token IS NULL").Scan(&delivered)
	if delivered != len(files) {
		t.Fatalf("%d rows taken once and released, want %d", delivered, len(files))
	}
}

// Side by side, a row can pass through both designs: our distributor claims
// it, an original worker fails it (leaving our claim token behind, since it
// only knows the original columns), the operator retries it the original way
// (UPDATE files SET status = 0 WHERE status = -1), and the original
// distributor hands it to one of our workers. That worker takes it over and
// finishes it.
func TestSeedRetryOfARowOurDistributorClaimed(t *testing.T) {
	t.Parallel()
	e := newSeedEnv(t)
	e.weMakeTable()
	files := e.insert([]file{{id: "x", name: "r/flaky.bin", size: 3000, knobs: []string{"fail=1"}, wantOK: true}})
	e.run(e.proc("dl-select"), e.proc("dl-enqueue"))
	e.runSeed("worker", "batch") // the origin's first answer is a 503
	if rows := e.rows(); rows["x"].status != -1 {
		t.Fatalf("the original worker left row x at %d, want -1 after the 503", rows["x"].status)
	}
	e.exec("UPDATE files SET status = 0 WHERE status = -1")
	e.runSeed("distributor", "once")

	out := e.run(e.proc("dl-fetch", "--mode", "batch"), e.proc("dl-mark"))
	if n := len(lines(out)); n != 1 {
		t.Fatalf("our worker recorded %d results, want 1 (row: %+v)", n, e.rows()["x"])
	}
	e.checkRows(files)
}

// The original exit flag, SET download_exit_flag 1, stops a worker of each
// kind running in forever mode.
func TestSeedExitFlagStopsBothWorkers(t *testing.T) {
	t.Parallel()
	e := newSeedEnv(t)
	e.weMakeTable()
	var fs []file
	for i := range 12 {
		fs = append(fs, file{id: fmt.Sprint(i), name: fmt.Sprintf("f/%d.bin", i), size: 1000, knobs: []string{"delay=100ms"}, wantOK: true})
	}
	files := e.insert(fs)
	e.run(e.proc("dl-select"), e.proc("dl-enqueue"))

	seedWorker := testenv.Start(t, bg, nil, e.seed("worker", "forever"))
	ourWorker := testenv.Start(t, bg, nil, e.proc("dl-fetch", "--concurrency", "4"), e.proc("dl-mark"))
	testenv.Eventually(t, 90*time.Second, 50*time.Millisecond, func() bool { return e.countStatus(1) == len(files) },
		"both workers to finish the %d tasks", len(files))

	e.run(e.proc("dl-flag", "set"))
	if v, _ := e.rdb.Get(bg, seedExitFlag).Result(); v != "1" {
		t.Fatalf("dl-flag set wrote %s = %q, want the original's \"1\"", seedExitFlag, v)
	}
	e.checkSeed(seedWorker.Wait(), "worker", "forever")
	if log := e.seedLog(); !strings.Contains(log, "检测到退出标志") { // "exit flag detected"
		t.Fatalf("the original worker exited without seeing the flag:\n%s", log)
	}
	r := ourWorker.Wait()
	if !r.OK() {
		t.Fatalf("our worker did not exit 0 on the flag:\n%s", r)
	}
	if !strings.Contains(r.Procs[0].Stderr, "exit flag is set") {
		t.Fatalf("our worker exited without seeing the flag:\n%s", r)
	}
	// Both kinds wrote correct rows; the original's under their base names.
	rows := e.rows()
	for _, f := range files {
		r := rows[f.id]
		if r.status != 1 || sumFile(t, r.path.String) != origin.Sum(f.name, f.size) {
			t.Errorf("row %s: status %d file %s", f.id, r.status, r.path.String)
		}
	}
	// And our flag reader sees the flag the original sets.
	e.run(e.proc("dl-flag", "clear"))
	if err := e.rdb.Set(bg, seedExitFlag, "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if out := e.run(e.proc("dl-flag", "status")); !strings.Contains(out, "set") {
		t.Fatalf("dl-flag status after the original's SET: %q", out)
	}
}

// download_result:<id> written by dl-mark carries the original's fields with
// the original's JSON types, beside ours.
func TestSeedResultKeyFields(t *testing.T) {
	t.Parallel()
	e := newSeedEnv(t)
	e.weMakeTable()
	// The original worker's results, for reference.
	e.insert([]file{
		{id: "seed-ok", name: "s/ok.bin", size: 100},
		{id: "seed-bad", name: "s/bad.bin", size: 10, knobs: []string{"status=404"}},
	})
	e.run(e.proc("dl-select"), e.proc("dl-enqueue"))
	e.runSeed("worker", "batch")
	// Ours.
	e.insert([]file{
		{id: "our-ok", name: "o/ok.bin", size: 100},
		{id: "our-bad", name: "o/bad.bin", size: 10, knobs: []string{"status=404"}},
	})
	e.run(e.proc("dl-select"), e.proc("dl-enqueue"))
	e.run(e.proc("dl-fetch", "--mode", "batch", "--retries", "0"), e.proc("dl-mark", "--max-attempts", "1"))

	for _, pair := range [][2]string{{"seed-ok", "our-ok"}, {"seed-bad", "our-bad"}} {
		theirs, ours := e.result(pair[0]), e.result(pair[1])
		for field, v := range theirs {
			o, ok := ours[field]
			if !ok {
				t.Errorf("%s: our result lacks the original's field %q (%v)", pair[1], field, ours)
				continue
			}
			if fmt.Sprintf("%T", o) != fmt.Sprintf("%T", v) {
				t.Errorf("%s: field %q is %T %v, the original's is %T %v", pair[1], field, o, o, v, v)
			}
		}
		if ours["id"] != pair[1] || ours["success"] != theirs["success"] {
			t.Errorf("%s: id %v success %v, want %s and %v", pair[1], ours["id"], ours["success"], pair[1], theirs["success"])
		}
		if m, _ := ours["message"].(string); m == "" {
			t.Errorf("%s: empty message", pair[1])
		}
		ts, _ := ours["timestamp"].(string)
		if at, err := time.ParseInLocation("2006-01-02 15:04:05", ts, time.Local); err != nil || time.Since(at).Abs() > 10*time.Minute {
			t.Errorf("%s: timestamp %q (%v), want the original's local \"YYYY-MM-DD hh:mm:ss\" of now", pair[1], ts, err)
		}
		for _, field := range []string{"outcome", "url", "bytes", "attempt"} {
			if _, ok := ours[field]; !ok {
				t.Errorf("%s: our own field %q is missing: %v", pair[1], field, ours)
			}
		}
	}
	if ours := e.result("our-ok"); ours["sha256"] != origin.Sum("o/ok.bin", 100) {
		t.Errorf("our-ok: sha256 %v", ours["sha256"])
	}
}
