// Command bench measures dl against its peers on one machine, in one run:
// the original Python design (seed_downloader.py), curl, wget and aria2c,
// all downloading from the repo's origin (internal/origin, served by
// dl-origin) with the local MariaDB and Redis. Peers alternate and repeat,
// each run gets a fresh directory, and every downloaded file is checked
// against origin.Sum: a fast wrong answer is a failure. It writes a table
// (results.md), the samples (results.json), a scaling plot (scaling.svg via
// gnuplot) and a profile summary (profile.txt) to the output directory.
//
// scripts/bench installs what is missing, builds the binaries and runs it;
// see scripts/bench --help.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is what the flags set.
type config struct {
	quick        bool
	reps         int
	only         map[string]bool
	out          string
	dlConc       int // dl-fetch - on a list
	e2eConc      int // each queue worker
	curlParallel int
	ariaJobs     int

	// sizes
	e2eN, seedE2eN int
	listN          int
	latN, seedLatN int
	bigSize        int64
	memN           int
	memSize        int64
	selN           []int
	scaleConc      []int
	scaleWorkers   []int
	scaleSeedN     [2]int // small, latency
	scaleMinN      [2]int // least rows per dl point: small, latency
	ariaN          int    // aria2c takes a prefix of the list: it is ~50× slower
	profN          int
	profLatency    bool // profile the latency-bound workload instead of the end-to-end one
}

func fullSizes(c *config) {
	c.reps = 3
	c.e2eN, c.seedE2eN = 20000, 2000
	c.listN = 20000
	c.latN, c.seedLatN = 5000, 200
	c.bigSize = 1 << 30
	c.memN, c.memSize = 32, 1<<30
	c.selN = []int{100_000, 1_000_000}
	c.scaleConc = []int{1, 2, 4, 8, 16, 32, 64, 128}
	c.scaleWorkers = []int{1, 2, 3, 4}
	c.scaleSeedN = [2]int{1000, 100}
	c.scaleMinN = [2]int{400, 60}
	c.ariaN = 5000
	c.profN = 20000
}

func quickSizes(c *config) {
	c.reps = 1
	c.e2eN, c.seedE2eN = 2000, 200
	c.listN = 2000
	c.latN, c.seedLatN = 500, 20
	c.bigSize = 64 << 20
	c.memN, c.memSize = 32, 16<<20
	c.selN = []int{5_000, 50_000}
	c.scaleConc = []int{1, 64}
	c.scaleWorkers = []int{1, 2}
	c.scaleSeedN = [2]int{100, 20}
	c.scaleMinN = [2]int{200, 20}
	c.ariaN = 500
	c.profN = 2000
}

var logStart = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %6.1fs  %s\n", time.Since(logStart).Seconds(), fmt.Sprintf(format, args...))
}

func main() {
	if err := mainErr(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func mainErr() error {
	var c config
	var only, work, bin, seed, mysqlDSN, redisURL string
	var seedDB int
	var keep bool
	var replot string
	var transport int
	flag.IntVar(&transport, "transport-only", 0, "internal: GET the URLs on stdin with this many at a time, dropping the bodies (workload 2's breakdown)")
	flag.StringVar(&replot, "replot", "", "remake results.md, profile.txt and scaling.svg in --out from a results.json, measuring nothing")
	flag.BoolVar(&c.quick, "quick", false, "every workload at a small size, one run each (a smoke check of a few minutes)")
	flag.IntVar(&c.reps, "reps", 0, "runs of each tool per workload (default 3, 1 with --quick)")
	flag.StringVar(&only, "only", "", "comma-separated workloads to run: e2e,list,latency,big,static,memory,scaling,profile (default all)")
	flag.StringVar(&c.out, "out", "bench", "directory for results.md, results.json, scaling.svg, profile.txt")
	flag.StringVar(&work, "work", "", "scratch directory (default: a new one under $TMPDIR); removed at the end unless --keep")
	flag.BoolVar(&keep, "keep", false, "keep the scratch directory (downloads and logs)")
	flag.StringVar(&bin, "bin", "", "directory with the dl-* binaries and dl-origin (required)")
	flag.StringVar(&seed, "seed", "", "the original design's seed_downloader.py (empty: skip it)")
	flag.StringVar(&mysqlDSN, "mysql", "root@tcp(127.0.0.1:3306)/", "MySQL DSN of a user that may create a database")
	flag.StringVar(&redisURL, "redis", "redis://127.0.0.1:6379/0", "Redis URL; dl's keys go under dlbench:<pid>:")
	flag.IntVar(&seedDB, "seed-redis-db", 9, "Redis database for the original design, whose key names are fixed")
	flag.IntVar(&c.dlConc, "dl-concurrency", 64, "dl-fetch --concurrency on a list of URLs")
	flag.IntVar(&c.e2eConc, "worker-concurrency", 64, "dl-fetch --concurrency of each queue worker")
	flag.IntVar(&c.curlParallel, "curl-parallel", 64, "curl --parallel-max")
	flag.IntVar(&c.ariaJobs, "aria2c-jobs", 16, "aria2c -j")
	flag.BoolVar(&c.profLatency, "profile-latency", false, "profile the latency-bound workload (3) instead of the end-to-end one (1)")
	flag.Parse()
	reps := c.reps
	if c.quick {
		quickSizes(&c)
	} else {
		fullSizes(&c)
	}
	if reps > 0 {
		c.reps = reps
	}
	if only != "" {
		c.only = map[string]bool{}
		for _, w := range strings.Split(only, ",") {
			c.only[strings.TrimSpace(w)] = true
		}
	}
	if transport > 0 {
		return runTransportOnly(transport)
	}
	if replot != "" {
		return replotFrom(context.Background(), replot, c)
	}
	if bin == "" {
		return fmt.Errorf("--bin is required (scripts/bench builds the binaries and passes it)")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if work != "" && !keep && within(c.out, work) {
		return fmt.Errorf("--out %s is inside the scratch directory %s, which is removed at the end: pick another --out, or --keep", c.out, work)
	}
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "dlbench-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	if !keep {
		defer func() {
			logf("removing %s", work)
			os.RemoveAll(work)
		}()
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	e := &env{bin: bin, seed: seed, python: "/usr/bin/python3", work: work}
	defer e.close()
	if err := e.openServices(ctx, mysqlDSN, redisURL, seedDB); err != nil {
		return err
	}
	if err := e.startOrigin(); err != nil {
		return err
	}
	logf("origin %s, database %s, redis keys %s*, original on redis db %d, scratch %s", e.origin, e.dbName, e.prefix, seedDB, work)
	b := &bench{e: e, cfg: c, began: time.Now(), loadStart: loadAvg()}
	runErr := b.all(ctx)
	if err := b.write(ctx, nil); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	if bad := b.wrong(); bad != "" {
		return fmt.Errorf("dl failed or downloaded a wrong file: %s", bad)
	}
	return nil
}

// within tells whether path is dir or lies under it.
func within(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// bench holds the run's state and results.
type bench struct {
	e         *env
	cfg       config
	sums      sums
	began     time.Time
	loadStart string

	samples []sample
	scaling []sample
	prof    *profileResult
}

func (b *bench) want(w string) bool { return b.cfg.only == nil || b.cfg.only[w] }

func (b *bench) add(s sample) {
	b.log(s)
	b.samples = append(b.samples, s)
}

func (b *bench) log(s sample) {
	msg := fmt.Sprintf("%-13s %-24s n=%-7d %8.2fs %9.1f %-7s", s.Workload, s.Tool, s.N, s.Secs, s.Rate, s.Unit)
	if s.Workers > 0 {
		msg += fmt.Sprintf(" w=%d c=%d", s.Workers, s.Conc)
	}
	for _, k := range sortedKeys(s.RSS) {
		msg += fmt.Sprintf(" %s=%dMiB", k, (s.RSS[k]+1023)/1024)
	}
	if s.Err != "" {
		msg += "  ERROR: " + s.Err
	}
	logf("%s", msg)
}

// rotate returns tools starting at rep's position, so that no tool always
// runs first (after the setup) or last.
func rotate[T any](tools []T, rep int) []T {
	k := rep % len(tools)
	return append(append([]T{}, tools[k:]...), tools[:k]...)
}

func (b *bench) all(ctx context.Context) error {
	steps := []struct {
		name string
		fn   func(context.Context)
	}{
		{"e2e", b.runE2E}, {"list", b.runList}, {"latency", b.runLatency}, {"big", b.runBig},
		{"static", b.runStatic}, {"memory", b.runMemory}, {"scaling", b.runScaling}, {"profile", b.runProfile},
	}
	for _, s := range steps {
		if !b.want(s.name) {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		logf("== %s", s.name)
		s.fn(ctx)
	}
	return ctx.Err()
}

// Workload 1: small files end to end, dl and the original design.
func (b *bench) runE2E(ctx context.Context) {
	rows := files(b.e.origin, "e", b.cfg.e2eN, 4096)
	seedRows := rows[:b.cfg.seedE2eN]
	b.sums.prime(rows)
	tools := []string{"dl", "original", "dl --fsync-each", "disk floor"}
	for rep := range b.cfg.reps {
		for _, t := range rotate(tools, rep) {
			var s sample
			if t == "dl" || t == "dl --fsync-each" {
				s = b.e2eDL(ctx, "e2e", rows, e2eOpts{workers: 2, conc: b.cfg.e2eConc, fsync: true, fsyncEach: t != "dl"})
			} else if t == "disk floor" {
				s = b.diskFloor(ctx, "e2e", len(rows), b.cfg.e2eConc)
			} else if b.e.seed != "" {
				s = b.e2eSeed(ctx, "e2e", seedRows, 2)
			} else {
				continue
			}
			s.Rep = rep
			b.add(s)
		}
	}
}

// Workload 2: the same URLs through dl-fetch - and the peers, no database.
func (b *bench) runList(ctx context.Context) {
	rows := files(b.e.origin, "e", b.cfg.listN, 4096)
	b.sums.prime(rows)
	// The last two download no file: they split the cost of a small file
	// into HTTP and the rest (see transportOnly).
	tools := []string{"dl", "curl", "wget", "aria2c", "go-http", "curl-null"}
	for rep := range b.cfg.reps {
		for _, t := range rotate(tools, rep) {
			rs := rows
			if t == "aria2c" {
				rs = rows[:min(b.cfg.ariaN, len(rows))]
			}
			s := b.listTool(ctx, "list", t, rs, false)
			s.Rep = rep
			b.add(s)
		}
	}
}

// Workload 3: latency-bound, each response delayed 100 ms, 2 workers.
// The rate is the workers' phase: the target is workers × concurrency / 0.1 s.
func (b *bench) runLatency(ctx context.Context) {
	rows := files(b.e.origin, "l", b.cfg.latN, 4096, "delay=100ms")
	b.sums.prime(rows)
	tools := []string{"dl", "original"}
	for rep := range b.cfg.reps {
		for _, t := range rotate(tools, rep) {
			var s sample
			if t == "dl" {
				s = b.e2eDL(ctx, "latency", rows, e2eOpts{workers: 2, conc: b.cfg.e2eConc, fsync: true})
			} else if b.e.seed != "" {
				s = b.e2eSeed(ctx, "latency", rows[:b.cfg.seedLatN], 2)
			} else {
				continue
			}
			workersPhase(&s)
			s.Rep = rep
			b.add(s)
		}
	}
}

// workersPhase makes a sample's rate that of its workers' phase.
func workersPhase(s *sample) {
	if f := s.Extra["fetch_s"]; f > 0 {
		s.Secs = f
		s.Rate = float64(s.N) / f
	}
}

// Workload 4: one large file.
func (b *bench) runBig(ctx context.Context) {
	r0 := files(b.e.origin, "big", 1, b.cfg.bigSize)[0]
	b.sums.prime([]row{r0})
	b.bigRuns(ctx, "big", r0, true)
}

// bigRuns alternates the large-file tools on r0: dl-fetch with the final
// sync off and on, and curl; with peers, wget, aria2c and the original
// design too.
func (b *bench) bigRuns(ctx context.Context, workload string, r0 row, peers bool) {
	type tool struct {
		name  string
		fsync bool
	}
	tools := []tool{{"dl", false}, {"curl", false}, {"dl", true}}
	if peers {
		tools = append(tools, tool{"wget", false}, tool{"aria2c", false})
		if b.e.seed != "" {
			tools = append(tools, tool{"original", false})
		}
	}
	for rep := range b.cfg.reps {
		for _, t := range rotate(tools, rep) {
			s := b.bigFile(ctx, workload, t.name, r0, t.fsync)
			s.Rep = rep
			b.add(s)
		}
	}
}

// Workload 5: memory with many large transfers in flight, and the
// distributor's halves over many rows.
func (b *bench) runMemory(ctx context.Context) {
	rows := files(b.e.origin, "m", b.cfg.memN, b.cfg.memSize)
	logf("hashing %d expected files of %d MiB", len(rows), b.cfg.memSize>>20)
	b.sums.prime(rows)
	b.add(b.memFetch(ctx, "memory", rows))
	for _, n := range b.cfg.selN {
		b.add(b.selectEnqueue(ctx, "distribute", n))
	}
}

// Workload 6: files/s against concurrency and worker processes.
func (b *bench) runScaling(ctx context.Context) {
	type wl struct {
		name  string
		knobs []string
		seedN int
		// n picks a row count that keeps each point a few seconds long.
		n func(workers, conc int) int
	}
	wls := []wl{
		{"small", nil, b.cfg.scaleSeedN[0], func(w, c int) int { return clamp(300*w*c, b.cfg.scaleMinN[0], b.cfg.e2eN/5) }},
		{"latency", []string{"delay=100ms"}, b.cfg.scaleSeedN[1], func(w, c int) int { return clamp(15*w*c, b.cfg.scaleMinN[1], b.cfg.latN) }},
	}
	for _, w := range wls {
		for _, workers := range b.cfg.scaleWorkers {
			if b.e.seed != "" {
				rows := files(b.e.origin, "s"+w.name[:1], w.seedN, 4096, w.knobs...)
				b.sums.prime(rows)
				s := b.e2eSeed(ctx, "scale-"+w.name, rows, workers)
				workersPhase(&s)
				b.scaling = append(b.scaling, s)
				b.log(s)
			}
			for _, conc := range b.cfg.scaleConc {
				rows := files(b.e.origin, "s"+w.name[:1], w.n(workers, conc), 4096, w.knobs...)
				b.sums.prime(rows)
				s := b.e2eDL(ctx, "scale-"+w.name, rows, e2eOpts{workers: workers, conc: conc, fsync: true})
				workersPhase(&s)
				b.scaling = append(b.scaling, s)
				b.log(s)
			}
		}
	}
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }

// Workload 7: statements, commands and CPU profile of an end-to-end run.
func (b *bench) runProfile(ctx context.Context) {
	rows := files(b.e.origin, "e", b.cfg.profN, 4096)
	if b.cfg.profLatency {
		rows = files(b.e.origin, "l", b.cfg.latN, 4096, "delay=100ms")
	}
	b.sums.prime(rows)
	p, err := b.profile(ctx, rows)
	if err != nil {
		logf("profile: %v", err)
		return
	}
	b.prof = p
	b.add(p.Sample)
}

// wrong names the dl samples that failed.
func (b *bench) wrong() string {
	var bad []string
	for _, s := range append(append([]sample{}, b.samples...), b.scaling...) {
		if s.Err != "" && strings.HasPrefix(s.Tool, "dl") {
			bad = append(bad, s.Workload+"/"+s.Tool+": "+s.Err)
		}
	}
	return strings.Join(bad, "; ")
}

// results is results.json: everything the tables and the plot are made of.
type results struct {
	Machine machine         `json:"machine"`
	Quick   bool            `json:"quick"`
	Reps    int             `json:"reps"`
	Samples []sample        `json:"samples"`
	Profile *profileResult  `json:"profile,omitempty"`
	Config  map[string]int  `json:"config"`
	Targets []targetVerdict `json:"targets"`
}

func (b *bench) write(ctx context.Context, m *machine) error {
	if m == nil {
		d := describeMachine(ctx, b)
		m = &d
	}
	out := results{Machine: *m, Quick: b.cfg.quick, Reps: b.cfg.reps, Samples: append(append([]sample{}, b.samples...), b.scaling...),
		Profile: b.prof, Config: map[string]int{"dl_concurrency": b.cfg.dlConc, "worker_concurrency": b.cfg.e2eConc,
			"curl_parallel": b.cfg.curlParallel, "aria2c_jobs": b.cfg.ariaJobs},
		Targets: b.targets()}
	js, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.cfg.out, "results.json"), js, 0o644); err != nil {
		return err
	}
	md := b.markdown(out.Machine, out.Targets)
	if err := os.WriteFile(filepath.Join(b.cfg.out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if b.prof != nil {
		if err := os.WriteFile(filepath.Join(b.cfg.out, "profile.txt"), []byte(b.profileText()), 0o644); err != nil {
			return err
		}
	}
	if len(b.scaling) > 0 {
		if err := b.plot(ctx, *m); err != nil {
			logf("plot: %v", err)
		}
	}
	fmt.Print(md)
	logf("wrote %s", strings.Join([]string{"results.md", "results.json", "scaling.svg", "profile.txt"}, ", ")+" in "+b.cfg.out)
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// replotFrom remakes the report from a results.json.
func replotFrom(ctx context.Context, path string, c config) error {
	js, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r results
	if err := json.Unmarshal(js, &r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	c.quick, c.reps = r.Quick, r.Reps
	c.dlConc, c.e2eConc, c.curlParallel, c.ariaJobs = r.Config["dl_concurrency"], r.Config["worker_concurrency"], r.Config["curl_parallel"], r.Config["aria2c_jobs"]
	b := &bench{cfg: c, prof: r.Profile}
	concs, workers := map[int]bool{}, map[int]bool{}
	for _, s := range r.Samples {
		switch {
		case strings.HasPrefix(s.Workload, "scale-"):
			b.scaling = append(b.scaling, s)
			if s.Tool == "dl" {
				concs[s.Conc] = true
			}
			workers[s.Workers] = true
		case (s.Workload == "big" || s.Workload == "big-static") && s.N > 0: // one size for both
			b.cfg.bigSize = s.Bytes / int64(s.N)
			b.samples = append(b.samples, s)
		case s.Workload == "memory" && s.N > 0:
			b.cfg.memSize = s.Bytes / int64(s.N)
			b.samples = append(b.samples, s)
		default:
			b.samples = append(b.samples, s)
		}
	}
	b.cfg.scaleConc, b.cfg.scaleWorkers = sortedInts(concs), sortedInts(workers)
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	return b.write(ctx, &r.Machine)
}

func sortedInts(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
