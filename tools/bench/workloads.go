package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sample is one measured run of one tool on one workload.
type sample struct {
	Workload string             `json:"workload"`
	Tool     string             `json:"tool"`
	Rep      int                `json:"rep"`
	N        int                `json:"n"`     // files (rows for dl-select | dl-enqueue)
	Bytes    int64              `json:"bytes"` // body bytes in all
	Secs     float64            `json:"secs"`  // the timed part
	Rate     float64            `json:"rate"`  // in Unit
	Unit     string             `json:"unit"`
	RSS      map[string]int64   `json:"rss_kib"` // peak per process name (largest of its instances)
	CPU      map[string]float64 `json:"cpu_s"`   // user+system per process name (sum of its instances)
	Extra    map[string]float64 `json:"extra,omitempty"`
	Conc     int                `json:"concurrency,omitempty"`
	Workers  int                `json:"workers,omitempty"`
	Err      string             `json:"error,omitempty"` // failed, or a wrong file
}

func (s *sample) take(r run) {
	if s.RSS == nil {
		s.RSS, s.CPU = map[string]int64{}, map[string]float64{}
	}
	if s.Extra == nil {
		s.Extra = map[string]float64{}
	}
	// The busy share of the longest part of the run stands for the run.
	if r.secs > s.Extra["longest_s"] {
		s.Extra["longest_s"] = r.secs
		s.Extra["machine_busy_pct"] = 100 * r.busy
	}
	for i, n := range r.names {
		s.RSS[n] = max(s.RSS[n], r.rssKiB[i])
		s.CPU[n] += r.cpu[i]
	}
}

func (s *sample) fail(err error) {
	if err != nil && s.Err == "" {
		s.Err = oneLine(err.Error())
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", "; ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

const runTimeout = 30 * time.Minute

func (b *bench) dlBin(name string) string { return filepath.Join(b.e.bin, name) }

// dlEnv is the environment of the dl tools for one run: the benchmark's
// database and table, and Redis keys under a prefix of the run's own.
func (b *bench) dlEnv(table, keys string) []string {
	return []string{
		"DL_MYSQL_DSN=" + b.e.dsn(), "DL_TABLE=" + table,
		"DL_REDIS_URL=" + b.e.redisURL, "DL_QUEUE=" + keys + "queue", "DL_KEY_PREFIX=" + keys,
		"DL_STATS_EVERY=0",
	}
}

// e2eOpts shape an end-to-end dl run.
type e2eOpts struct {
	workers, conc int
	fsync         bool
	fsyncEach     bool // per-file fsyncs instead of dl's default group syncfs; the tool is then "dl --fsync-each"
	// wrap, when set, gives the MySQL DSN and Redis URL each tool uses
	// (the profile run puts counting proxies in between) and a command
	// prefix (perf record).
	wrap func(tool string, worker int) (dsn, redisURL string, prefix []string)
}

// e2eDL runs dl-select | dl-enqueue, then o.workers pipelines of
// dl-fetch --mode batch | dl-mark, from all rows pending to all done. Extra
// has the two phases' seconds ("enqueue_s", "fetch_s").
func (b *bench) e2eDL(ctx context.Context, workload string, rows []row, o e2eOpts) sample {
	s := sample{Workload: workload, Tool: "dl", N: len(rows), Unit: "files/s", Conc: o.conc, Workers: o.workers}
	if o.fsyncEach {
		s.Tool = "dl --fsync-each"
	}
	n := b.e.next()
	table := fmt.Sprintf("dl%d", n)
	keys := fmt.Sprintf("%s%d:", b.e.prefix, n)
	defer func() {
		b.e.dropTable(context.WithoutCancel(ctx), table)
		_ = deleteKeys(context.WithoutCancel(ctx), b.e.rdb, keys+"*")
	}()
	if err := b.e.dlTable(ctx, table, rows); err != nil {
		s.fail(err)
		return s
	}
	dir, err := b.e.freshDir(workload + "-dl")
	if err != nil {
		s.fail(err)
		return s
	}
	env := b.dlEnv(table, keys)
	tool := func(name string, worker int, args ...string) step {
		st := step{name: name, bin: b.dlBin(name), args: args, env: env}
		if o.wrap != nil {
			dsn, rurl, prefix := o.wrap(name, worker)
			st.env = append(append([]string{}, env...), "DL_MYSQL_DSN="+dsn, "DL_REDIS_URL="+rurl)
			if len(prefix) > 0 {
				st.args = append(append(append([]string{}, prefix[1:]...), st.bin), st.args...)
				st.bin = prefix[0]
			}
		}
		return st
	}
	logs := dir + "/logs"
	enq := group(ctx, logs, runTimeout, pipeline{steps: []step{
		tool("dl-select", 0, "--limit", "0"), tool("dl-enqueue", 0)}})
	s.take(enq)
	if enq.err != nil {
		s.fail(enq.err)
		return s
	}
	var ws []pipeline
	for w := range o.workers {
		ws = append(ws, pipeline{steps: []step{
			tool("dl-fetch", w, "--mode", "batch", "--concurrency", strconv.Itoa(o.conc), "--dir", dir+"/d", "--fsync="+strconv.FormatBool(o.fsync), "--fsync-each="+strconv.FormatBool(o.fsyncEach)),
			tool("dl-mark", w)}})
	}
	cpu0 := b.serverCPU()
	fetch := group(ctx, logs, runTimeout, ws...)
	s.take(fetch)
	b.phases(&s, rows, enq.secs, fetch.secs, cpu0)
	if fetch.err != nil {
		s.fail(fetch.err)
		return s
	}
	s.fail(b.checkTable(ctx, table, rows))
	return s
}

// phases records an end-to-end run's two phases, its rate over both, and
// what the servers used since cpu0 (taken as the workers' phase began).
func (b *bench) phases(s *sample, rows []row, enqSecs, fetchSecs float64, cpu0 map[string]float64) {
	s.Secs = enqSecs + fetchSecs
	s.Extra["enqueue_s"], s.Extra["fetch_s"] = enqSecs, fetchSecs
	for k, v := range b.serverCPU() {
		s.Extra[k+"_cpu_s"] = v - cpu0[k]
	}
	s.Rate = float64(len(rows)) / s.Secs
	s.Bytes = totalBytes(rows)
}

// checkTable verifies that every row is done and its file_path holds the
// right bytes.
func (b *bench) checkTable(ctx context.Context, table string, rows []row) error {
	byID := make(map[string]row, len(rows))
	for _, r := range rows {
		byID[r.id] = r
	}
	q, err := b.e.db.QueryContext(ctx, "SELECT id, status, COALESCE(file_path, '') FROM `"+table+"`")
	if err != nil {
		return fmt.Errorf("read rows: %w", err)
	}
	defer q.Close()
	type hit struct {
		path string
		r    row
	}
	var hits []hit
	notDone := 0
	for q.Next() {
		var id, path string
		var status int
		if err := q.Scan(&id, &status, &path); err != nil {
			return err
		}
		if status != 1 {
			notDone++
			continue
		}
		hits = append(hits, hit{path, byID[id]})
	}
	if err := q.Err(); err != nil {
		return err
	}
	if notDone > 0 || len(hits) != len(rows) {
		return fmt.Errorf("%d of %d rows not done", len(rows)-len(hits), len(rows))
	}
	return parallel(len(hits), func(i int) error { return b.sums.checkFile(hits[i].path, hits[i].r) })
}

func totalBytes(rows []row) int64 {
	var n int64
	for _, r := range rows {
		n += r.size
	}
	return n
}

// seedEnv is the original design's configuration ([config] in its file).
func (b *bench) seedEnv(dir string) []string {
	host, port, _ := net.SplitHostPort(b.e.mysqlCfg.Addr)
	rhost, rport, _ := net.SplitHostPort(b.e.rdb.Options().Addr)
	return []string{
		"SEED_DB_HOST=" + host, "SEED_DB_PORT=" + port, "SEED_DB_USER=" + b.e.mysqlCfg.User,
		"SEED_DB_PASSWORD=" + b.e.mysqlCfg.Passwd, "SEED_DB_NAME=" + b.e.dbName,
		"SEED_REDIS_HOST=" + rhost, "SEED_REDIS_PORT=" + rport, "SEED_REDIS_DB=" + strconv.Itoa(b.e.seedDB),
		"SEED_DOWNLOAD_DIR=" + dir,
	}
}

// seedBLPOPWait is how long an original worker in batch mode waits on the
// empty queue before it exits (its BLPOP timeout): not part of the work.
const seedBLPOPWait = 1.0

// e2eSeed runs the original design: its distributor (one round of at most
// 1,000 rows per run, repeated until no row is pending), then workers
// original worker processes in batch mode. Extra has "enqueue_s" and
// "fetch_s" (the workers' time, less the final BLPOP wait).
func (b *bench) e2eSeed(ctx context.Context, workload string, rows []row, workers int) sample {
	s := sample{Workload: workload, Tool: "original", N: len(rows), Unit: "files/s", Conc: 1, Workers: workers}
	defer func() {
		_ = b.e.cleanSeedKeys(context.WithoutCancel(ctx))
		b.e.dropTable(context.WithoutCancel(ctx), "files")
	}()
	if err := b.e.checkSeedDB(ctx); err != nil {
		s.fail(err)
		return s
	}
	if err := b.e.seedTable(ctx, rows); err != nil {
		s.fail(err)
		return s
	}
	dir, err := b.e.freshDir(workload + "-original")
	if err != nil {
		s.fail(err)
		return s
	}
	env := b.seedEnv(dir + "/d")
	seed := func(args ...string) step {
		return step{name: "original " + args[1], bin: b.e.python, args: append([]string{b.e.seed}, args...), env: env, dir: dir}
	}
	var enqSecs float64
	for round := 0; ; round++ {
		r := group(ctx, dir+"/logs", runTimeout, pipeline{steps: []step{seed("--role", "distributor", "--mode", "once")}})
		s.take(r)
		enqSecs += r.secs
		if r.err != nil {
			s.fail(r.err)
			return s
		}
		c, err := b.e.statusCounts(ctx, "files")
		if err != nil {
			s.fail(err)
			return s
		}
		if c[0] == 0 {
			break
		}
		if round > len(rows)/1000+2 {
			s.fail(fmt.Errorf("distributor left %d rows pending", c[0]))
			return s
		}
	}
	var ws []pipeline
	for range workers {
		ws = append(ws, pipeline{steps: []step{seed("--role", "worker", "--mode", "batch")}})
	}
	cpu0 := b.serverCPU()
	fetch := group(ctx, dir+"/logs", runTimeout, ws...)
	s.take(fetch)
	fetchSecs := max(fetch.secs-seedBLPOPWait, 0.001)
	b.phases(&s, rows, enqSecs, fetchSecs, cpu0)
	if fetch.err != nil {
		s.fail(fetch.err)
		return s
	}
	c, err := b.e.statusCounts(ctx, "files")
	if err != nil {
		s.fail(err)
		return s
	}
	if c[1] != len(rows) {
		s.fail(fmt.Errorf("%d of %d rows done (status counts %v)", c[1], len(rows), c))
	}
	s.fail(b.sums.checkDir(dir+"/d", rows, func(base string) string { return base }))
	return s
}

// writeURLs writes one URL per line.
func writeURLs(path string, rows []row, format func(row) string) error {
	var sb strings.Builder
	for _, r := range rows {
		sb.WriteString(format(r))
		sb.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}

// listTool runs one tool over a list of URLs (no database) into a fresh
// directory and checks every file. Tools: dl, curl, wget, aria2c.
func (b *bench) listTool(ctx context.Context, workload, tool string, rows []row, fsync bool) sample {
	s := sample{Workload: workload, Tool: tool, N: len(rows), Unit: "files/s", Bytes: totalBytes(rows)}
	dir, err := b.e.freshDir(workload + "-" + tool)
	if err != nil {
		s.fail(err)
		return s
	}
	d := dir + "/d"
	list := dir + "/urls.txt"
	format := func(r row) string { return r.url }
	switch tool {
	case "curl":
		list = dir + "/urls.curlrc"
		format = func(r row) string { return `url = "` + r.url + `"` }
	case "curl-null":
		list = dir + "/urls.curlrc"
		format = func(r row) string { return `url = "` + r.url + `"` + "\noutput = \"/dev/null\"" }
	}
	if err := writeURLs(list, rows, format); err != nil {
		s.fail(err)
		return s
	}
	var st step
	out := ""
	// curl and curl-null differ only in where the bodies go: files named
	// after the URLs, or the list's "output = /dev/null" lines.
	curl := func(args ...string) step {
		return step{name: "curl", bin: "curl", args: append([]string{"--parallel", "--parallel-max", strconv.Itoa(b.cfg.curlParallel),
			"-sS", "--no-progress-meter", "--fail"}, append(args, "-K", list)...)}
	}
	switch tool {
	case "dl":
		out = dir + "/results.jsonl"
		s.Tool = "dl-fetch"
		s.Conc = b.cfg.dlConc
		st = step{name: "dl-fetch", bin: b.dlBin("dl-fetch"), args: []string{"--concurrency", strconv.Itoa(b.cfg.dlConc),
			"--dir", d, "--fsync=" + strconv.FormatBool(fsync), "--stats-every", "0", "-"}}
	case "curl":
		s.Conc = b.cfg.curlParallel
		st = curl("--remote-name-all", "--output-dir", d)
	case "wget":
		s.Conc = 1
		st = step{name: "wget", bin: "wget", args: []string{"-q", "-P", d, "-i", list}}
	case "go-http":
		s.Tool, s.Conc = "Go net/http, no files", b.cfg.dlConc
		self, err := os.Executable()
		if err != nil {
			s.fail(err)
			return s
		}
		st = step{name: "go-http", bin: self, args: []string{"-transport-only", strconv.Itoa(b.cfg.dlConc)}}
	case "curl-null":
		s.Tool, s.Conc = "curl, no files", b.cfg.curlParallel
		st = curl()
	case "aria2c":
		s.Conc = b.cfg.ariaJobs
		st = step{name: "aria2c", bin: "aria2c", args: []string{"-q", "-j", strconv.Itoa(b.cfg.ariaJobs), "-d", d, "-i", list,
			"--file-allocation=none", "--auto-file-renaming=false", "--summary-interval=0"}}
	default:
		panic("unknown tool " + tool)
	}
	var in string
	if tool == "dl" || tool == "go-http" {
		in = list
	}
	r := group(ctx, dir+"/logs", runTimeout, pipeline{steps: []step{st}, in: in, out: out})
	s.take(r)
	s.Secs = r.secs
	s.Rate = float64(len(rows)) / r.secs
	if r.err != nil {
		s.fail(r.err)
		return s
	}
	switch tool {
	case "dl":
		s.fail(b.sums.checkResults(out, rows))
	case "go-http", "curl-null":
		// No file to check: each checks the status and the length itself.
	default:
		s.fail(b.sums.checkDir(d, rows, stripQuery))
	}
	return s
}

// bigFile downloads one large file with tool into a fresh directory, checks
// it and deletes it (a few large deletions do not slow the filesystem).
func (b *bench) bigFile(ctx context.Context, workload, tool string, r0 row, fsync bool) sample {
	s := sample{Workload: workload, Tool: tool, N: 1, Bytes: r0.size, Unit: "MB/s"}
	b.e.settleMemory()
	if tool == "original" {
		s = b.e2eSeed(ctx, workload, []row{r0}, 1)
		s.Unit = "MB/s"
		if s.Extra["fetch_s"] > 0 {
			s.Secs = s.Extra["fetch_s"] // the download, not the distributor round
			s.Rate = float64(r0.size) / s.Secs / 1e6
		}
		b.removeRunFiles()
		return s
	}
	dir, err := b.e.freshDir(workload + "-" + tool)
	if err != nil {
		s.fail(err)
		return s
	}
	d := dir + "/d"
	defer os.RemoveAll(d)
	var st step
	out := ""
	target := d + "/" + r0.name
	switch tool {
	case "dl":
		out = dir + "/results.jsonl"
		s.Tool = "dl-fetch --fsync=" + strconv.FormatBool(fsync)
		st = step{name: "dl-fetch", bin: b.dlBin("dl-fetch"), args: []string{"--dir", d, "--fsync=" + strconv.FormatBool(fsync), "--stats-every", "0", r0.url}}
	case "curl":
		st = step{name: "curl", bin: "curl", args: []string{"-sS", "--fail", "-o", target, r0.url}}
	case "wget":
		st = step{name: "wget", bin: "wget", args: []string{"-q", "-O", target, r0.url}}
	case "aria2c":
		st = step{name: "aria2c", bin: "aria2c", args: []string{"-q", "-d", d, "-o", r0.name, "--file-allocation=none", "--summary-interval=0", r0.url}}
	}
	r := group(ctx, dir+"/logs", runTimeout, pipeline{steps: []step{st}, out: out})
	s.take(r)
	s.Secs = r.secs
	s.Rate = float64(r0.size) / r.secs / 1e6
	if r.err != nil {
		s.fail(r.err)
		return s
	}
	if tool == "dl" {
		s.fail(b.sums.checkResults(out, []row{r0}))
	} else {
		s.fail(b.sums.checkFile(target, r0))
	}
	return s
}

// removeRunFiles deletes the downloads of the latest run (large files only).
func (b *bench) removeRunFiles() {
	matches, _ := filepath.Glob(fmt.Sprintf("%s/%03d-*/d", b.e.work, b.e.runs))
	for _, m := range matches {
		os.RemoveAll(m)
	}
}

// memFetch runs dl-fetch over rows (large files) at a concurrency of
// len(rows), so every transfer is in flight at once, and records its peak RSS.
func (b *bench) memFetch(ctx context.Context, workload string, rows []row) sample {
	s := sample{Workload: workload, Tool: "dl-fetch", N: len(rows), Bytes: totalBytes(rows), Unit: "MB/s", Conc: len(rows)}
	dir, err := b.e.freshDir(workload)
	if err != nil {
		s.fail(err)
		return s
	}
	defer os.RemoveAll(dir + "/d")
	if err := writeURLs(dir+"/urls.txt", rows, func(r row) string { return r.url }); err != nil {
		s.fail(err)
		return s
	}
	out := dir + "/results.jsonl"
	r := group(ctx, dir+"/logs", runTimeout, pipeline{in: dir + "/urls.txt", out: out, steps: []step{{name: "dl-fetch", bin: b.dlBin("dl-fetch"),
		args: []string{"--concurrency", strconv.Itoa(len(rows)), "--dir", dir + "/d", "--fsync=false", "--stats-every", "0", "-"}}}})
	s.take(r)
	s.Secs = r.secs
	s.Rate = float64(s.Bytes) / r.secs / 1e6
	if r.err != nil {
		s.fail(r.err)
		return s
	}
	s.fail(b.sums.checkResults(out, rows))
	return s
}

// selectEnqueue times dl-select --limit 0 | dl-enqueue over n pending rows.
func (b *bench) selectEnqueue(ctx context.Context, workload string, n int) sample {
	s := sample{Workload: workload, Tool: "dl-select | dl-enqueue", N: n, Unit: "rows/s"}
	k := b.e.next()
	table := fmt.Sprintf("sel%d", k)
	keys := fmt.Sprintf("%s%d:", b.e.prefix, k)
	defer func() {
		b.e.dropTable(context.WithoutCancel(ctx), table)
		_ = deleteKeys(context.WithoutCancel(ctx), b.e.rdb, keys+"*")
	}()
	if err := b.e.dlTable(ctx, table, files(b.e.origin, "s", n, 4096)); err != nil {
		s.fail(err)
		return s
	}
	dir, err := b.e.freshDir(workload)
	if err != nil {
		s.fail(err)
		return s
	}
	// dl-enqueue fills the queue to at most --renew-max tasks: this
	// workload measures one pass over all n rows.
	env := append(b.dlEnv(table, keys), fmt.Sprintf("DL_RENEW_MAX=%d", n))
	r := group(ctx, dir+"/logs", runTimeout, pipeline{steps: []step{
		{name: "dl-select", bin: b.dlBin("dl-select"), args: []string{"--limit", "0"}, env: env},
		{name: "dl-enqueue", bin: b.dlBin("dl-enqueue"), env: env}}})
	s.take(r)
	s.Secs = r.secs
	s.Rate = float64(n) / r.secs
	if r.err != nil {
		s.fail(r.err)
		return s
	}
	c, err := b.e.statusCounts(ctx, table)
	if err != nil {
		s.fail(err)
		return s
	}
	qlen, err := b.e.rdb.LLen(ctx, keys+"queue").Result()
	if err != nil {
		s.fail(err)
		return s
	}
	if c[2] != n || qlen != int64(n) {
		s.fail(fmt.Errorf("%d rows claimed and %d tasks queued, want %d of each", c[2], qlen, n))
	}
	return s
}

// serverCPU returns the CPU seconds so far of MariaDB, Redis and the
// origin. The servers are shared with whatever else runs on the machine,
// so their deltas over a run are an upper bound of what the run cost them.
func (b *bench) serverCPU() map[string]float64 {
	m := map[string]float64{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(comm))
		switch {
		case name == "mariadbd" || name == "mysqld":
			m["mariadbd"] += procCPU(pid)
		case name == "redis-server":
			m["redis"] += procCPU(pid)
		case b.e.originCmd != nil && pid == b.e.originCmd.Process.Pid:
			m["origin"] += procCPU(pid)
		}
	}
	return m
}

// procCPU reads utime+stime of a process in seconds (clock ticks of 100 Hz,
// as on every Linux this runs on).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	// Fields after the command name, which may contain spaces.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
}
