package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// machine is what the figures were measured on.
type machine struct {
	Date     string            `json:"date"`
	CPU      string            `json:"cpu"`
	Cores    int               `json:"cores"`
	MemGiB   float64           `json:"mem_gib"`
	Kernel   string            `json:"kernel"`
	OS       string            `json:"os"`
	Load     string            `json:"load_at_start"`
	LoadEnd  string            `json:"load_at_end"`
	Versions map[string]string `json:"versions"`
	Commit   string            `json:"commit"`
	Duration string            `json:"duration"`
}

func describeMachine(ctx context.Context, b *bench) machine {
	m := machine{Date: b.began.UTC().Format("2006-01-02 15:04 MST"), Cores: runtime.NumCPU(), Versions: map[string]string{},
		Duration: time.Since(b.began).Round(time.Second).String()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if bs, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(bs), "\n", 2)[0], "MemTotal:"), "%f", &kb)
		m.MemGiB = kb / (1 << 20)
	}
	m.Kernel = firstLine(cmdOut(ctx, "uname", "-r"))
	if bs, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(bs), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	m.Load, m.LoadEnd = b.loadStart, loadAvg()
	m.Versions["go"] = runtime.Version()
	var v string
	if err := b.e.admin.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err == nil {
		m.Versions["mariadb"] = v
	}
	if info, err := b.e.rdb.Info(ctx, "server").Result(); err == nil {
		for _, l := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
				m.Versions["redis"] = v
			}
		}
	}
	m.Versions["curl"] = word(cmdOut(ctx, "curl", "--version"), 1)
	m.Versions["wget"] = word(cmdOut(ctx, "wget", "--version"), 2)
	m.Versions["aria2c"] = word(cmdOut(ctx, "aria2c", "--version"), 2)
	m.Versions["python"] = word(cmdOut(ctx, b.e.python, "--version"), 1)
	m.Versions["gnuplot"] = strings.Join(strings.Fields(firstLine(cmdOut(ctx, "gnuplot", "--version")))[1:], " ")
	m.Commit = firstLine(cmdOut(ctx, "git", "rev-parse", "--short", "HEAD"))
	if m.Commit != "" && strings.TrimSpace(cmdOut(ctx, "git", "status", "--porcelain", "--", "cmd", "internal")) != "" {
		m.Commit += " (with uncommitted changes under cmd/ or internal/)"
	}
	if v := os.Getenv("DL_BENCH_SOURCE"); v != "" {
		m.Commit = v
	}
	return m
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	bs, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(string(bs))[:3], " ")
}

func cmdOut(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// word returns the i-th word of s's first line (a version number).
func word(s string, i int) string {
	f := strings.Fields(firstLine(s))
	if i < len(f) {
		return f[i]
	}
	return ""
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64{}, xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// agg is the samples of one tool on one workload.
type agg struct {
	workload, tool, unit string
	n                    int
	rates                []float64 // of the correct runs
	cpu                  []float64 // CPU seconds of all processes, per correct run
	busy                 []float64 // machine busy %, per correct run
	srv                  []float64 // CPU seconds of MariaDB + Redis over the workers' phase, per correct run
	runs, bad            int
	rss                  map[string]int64
	errs                 []string
	conc                 int
}

func (a agg) med() float64 { return median(a.rates) }

// aggregate groups the samples in the order they first appear.
func aggregate(samples []sample) []*agg {
	var out []*agg
	idx := map[string]*agg{}
	for _, s := range samples {
		k := s.Workload + "\x00" + s.Tool + "\x00" + itoa(s.N)
		a := idx[k]
		if a == nil {
			a = &agg{workload: s.Workload, tool: s.Tool, unit: s.Unit, n: s.N, rss: map[string]int64{}, conc: s.Conc}
			idx[k] = a
			out = append(out, a)
		}
		a.runs++
		if s.Err != "" {
			a.bad++
			a.errs = append(a.errs, s.Err)
		} else {
			a.rates = append(a.rates, s.Rate)
			var c float64
			for _, v := range s.CPU {
				c += v
			}
			a.cpu = append(a.cpu, c)
			if v, ok := s.Extra["machine_busy_pct"]; ok {
				a.busy = append(a.busy, v)
			}
			if _, ok := s.Extra["mariadbd_cpu_s"]; ok {
				a.srv = append(a.srv, s.Extra["mariadbd_cpu_s"]+s.Extra["redis_cpu_s"])
			}
		}
		for p, v := range s.RSS {
			a.rss[p] = max(a.rss[p], v)
		}
	}
	return out
}

func (b *bench) find(workload, tool string) *agg {
	for _, a := range aggregate(b.samples) {
		if a.workload == workload && a.tool == tool {
			return a
		}
	}
	return nil
}

var workloadTitle = map[string]string{
	"e2e":         "1. small files end to end (4 KiB; select | enqueue, then 2 workers fetch | mark; fsync on)",
	"list":        "2. small files, no database (the same URLs from a list; no final sync)",
	"latency":     "3. latency-bound (4 KiB, each response delayed 100 ms; 2 workers; rate of the workers' phase)",
	"big":         "4. one large file",
	"list-static": "2s. the list of workload 2 from a static origin (nginx, sendfile: an origin that costs the machine little, as a remote one costs nothing)",
	"big-static":  "4s. the large file of workload 4 from the static origin",
	"memory":      "5a. memory: dl-fetch with every large transfer in flight (fsync off)",
	"distribute":  "5b. dl-select --limit 0 | dl-enqueue over pending rows",
	"profile":     "7. profile run (counting proxies and perf attached: not a speed figure)",
}

func (b *bench) markdown(m machine, targets []targetVerdict) string {
	var w strings.Builder
	mode := "full"
	if b.cfg.quick {
		mode = "quick (small sizes: a smoke check, not the figures)"
	}
	fmt.Fprintf(&w, "## Results (%s mode, %d run(s) per tool, medians)\n\n", mode, b.cfg.reps)
	fmt.Fprintf(&w, "Measured %s on %d cores (%s), %.0f GiB RAM, %s, kernel %s; load average %s at the start and %s at the end; took %s. dl at %s.\n\n",
		m.Date, m.Cores, m.CPU, m.MemGiB, m.OS, m.Kernel, m.Load, m.LoadEnd, m.Duration, m.Commit)
	fmt.Fprintf(&w, "Versions: %s.\n\n", versions(m.Versions))
	w.WriteString("Rates are medians of the correct runs; CPU is user+system of all the run's processes (median), per file (or in all, for one large file); server CPU is what MariaDB and Redis used during the workers' phase (read from /proc; they are shared, so it is an upper bound); machine busy is the share of all cores not idle during the run's longest phase (everything on the machine: on a shared machine, what the run did not use was used by others); peak RSS is the largest of each process kind over the runs (GNU time). The original design runs on a prefix of the rows where it would take minutes, aria2c on a prefix of the list; rates are per second, so they compare. In workload 2, \"Go net/http, no files\" (the list's requests made as dl-fetch makes them, bodies dropped) and \"curl, no files\" (bodies to /dev/null) write nothing: beside dl-fetch and curl they split a small file's CPU into HTTP and what is done with the body.\n\n")
	fmt.Fprintf(&w, "Settings: queue workers run `dl-fetch --concurrency %d`; `dl-fetch -` on a list runs `--concurrency %d`; curl `--parallel --parallel-max %d`; aria2c `-j %d`; wget is sequential.\n\n",
		b.cfg.e2eConc, b.cfg.dlConc, b.cfg.curlParallel, b.cfg.ariaJobs)
	w.WriteString("| workload | tool | files | median | runs ok | CPU ms/file | server CPU ms/file | machine busy | peak RSS (MiB) |\n|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	last := ""
	for _, a := range aggregate(b.samples) {
		title := ""
		if a.workload != last {
			title = workloadTitle[a.workload]
			last = a.workload
		}
		if a.workload == "profile" || strings.HasPrefix(a.workload, "scale-") {
			continue
		}
		rate := "—"
		if len(a.rates) > 0 {
			rate = fmt.Sprintf("%s %s", human(a.med()), a.unit)
		}
		ok := fmt.Sprintf("%d/%d", a.runs-a.bad, a.runs)
		if a.bad > 0 {
			ok += " ✗"
		}
		var rss []string
		for _, p := range sortedKeys(a.rss) {
			rss = append(rss, fmt.Sprintf("%s %.0f", p, float64(a.rss[p])/1024))
		}
		n := fmt.Sprintf("%d", a.n)
		if a.workload == "big" || a.workload == "big-static" || a.workload == "memory" {
			n = fmt.Sprintf("%d × %d MiB", a.n, b.cfg.bigSize>>20)
			if a.workload == "memory" {
				n = fmt.Sprintf("%d × %d MiB", a.n, b.cfg.memSize>>20)
			}
		}
		cpu := "—"
		if len(a.cpu) > 0 {
			cpu = fmt.Sprintf("%.2f", median(a.cpu)*1000/float64(a.n))
			if a.unit == "MB/s" {
				cpu = fmt.Sprintf("%.1f s", median(a.cpu))
			}
		}
		srv := "—"
		if len(a.srv) > 0 {
			srv = fmt.Sprintf("%.2f", median(a.srv)*1000/float64(a.n))
			if a.unit == "MB/s" {
				srv = fmt.Sprintf("%.1f s", median(a.srv))
			}
		}
		busy := "—"
		if len(a.busy) > 0 {
			busy = fmt.Sprintf("%.0f%%", median(a.busy))
		}
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", cell(title), cell(a.tool), n, rate, ok, cpu, srv, busy, strings.Join(rss, ", "))
	}
	w.WriteString("\n")
	for _, a := range aggregate(b.samples) {
		for _, e := range a.errs {
			fmt.Fprintf(&w, "- ✗ %s / %s: %s\n", a.workload, a.tool, e)
		}
	}
	if len(targets) > 0 {
		w.WriteString("\n### Targets\n\n| target | measured | met |\n|---|---|---|\n")
		for _, t := range targets {
			met := "no"
			if t.Met {
				met = "yes"
			}
			fmt.Fprintf(&w, "| %s | %s | %s |\n", cell(t.Target), cell(t.Measured), met)
		}
	}
	if len(b.scaling) > 0 {
		w.WriteString("\n### Scaling (files/s of the workers' phase, one run per point)\n\n")
		w.WriteString(b.scalingTable())
	}
	if b.prof != nil {
		w.WriteString("\n### Statements and commands per file (profile run)\n\n")
		w.WriteString(b.countsTable())
	}
	return w.String()
}

// cell escapes the pipe characters of a markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func versions(v map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(v) {
		if v[k] != "" {
			parts = append(parts, k+" "+v[k])
		}
	}
	return strings.Join(parts, "; ")
}

func human(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// targetVerdict is one of the targets, checked.
type targetVerdict struct {
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

func (b *bench) targets() []targetVerdict {
	var out []targetVerdict
	if dl, orig := b.find("e2e", "dl"), b.find("e2e", "original"); dl != nil && len(dl.rates) > 0 {
		t := targetVerdict{Target: "1. small files end to end: ≥ 3,000 files/s and ≥ 10× the original"}
		t.Measured = fmt.Sprintf("dl %s files/s", human(dl.med()))
		t.Met = dl.med() >= 3000 && dl.bad == 0
		if orig != nil && len(orig.rates) > 0 {
			r := dl.med() / orig.med()
			t.Measured += fmt.Sprintf(", original %s files/s: %.1f×", human(orig.med()), r)
			t.Met = t.Met && r >= 10
		}
		if f := b.find("e2e", "disk floor"); f != nil && len(f.rates) > 0 {
			t.Measured += fmt.Sprintf("; the disk alone (no network, no database) %s files/s: dl at %.0f%% of it", human(f.med()), 100*dl.med()/f.med())
		}
		out = append(out, t)
	}
	for _, wl := range []struct{ name, peers string }{{"list", "curl --parallel, wget -i, aria2c -i"}, {"list-static", "curl --parallel (static origin)"}} {
		dl := b.find(wl.name, "dl-fetch")
		if dl == nil || len(dl.rates) == 0 {
			continue
		}
		t := targetVerdict{Target: "2. dl-fetch - ahead of " + wl.peers, Met: dl.bad == 0}
		parts := []string{fmt.Sprintf("dl-fetch %s files/s", human(dl.med()))}
		for _, p := range []string{"curl", "wget", "aria2c"} {
			if a := b.find(wl.name, p); a != nil && len(a.rates) > 0 {
				parts = append(parts, fmt.Sprintf("%s %s (%.2f×)", p, human(a.med()), dl.med()/a.med()))
				t.Met = t.Met && dl.med() > a.med()
			}
		}
		t.Measured = strings.Join(parts, ", ")
		out = append(out, t)
	}
	if dl := b.find("latency", "dl"); dl != nil && len(dl.rates) > 0 {
		ideal := float64(2*b.cfg.e2eConc) / 0.1
		t := targetVerdict{Target: fmt.Sprintf("3. latency-bound: ≥ 80%% of 2 × %d / 0.1 s = %.0f files/s", b.cfg.e2eConc, 0.8*ideal)}
		t.Measured = fmt.Sprintf("dl %s files/s (%.0f%% of ideal)", human(dl.med()), 100*dl.med()/ideal)
		if o := b.find("latency", "original"); o != nil && len(o.rates) > 0 {
			t.Measured += fmt.Sprintf(", original %s files/s", human(o.med()))
		}
		t.Met = dl.med() >= 0.8*ideal && dl.bad == 0
		out = append(out, t)
	}
	for _, wl := range []struct{ name, origin string }{{"big", ""}, {"big-static", " (static origin)"}} {
		dl, curl := b.find(wl.name, "dl-fetch --fsync=false"), b.find(wl.name, "curl")
		if dl == nil || curl == nil || len(dl.rates) == 0 || len(curl.rates) == 0 {
			continue
		}
		t := targetVerdict{Target: "4. one large file: ≥ 0.9× curl's MB/s (sync off)" + wl.origin}
		t.Measured = fmt.Sprintf("dl %s MB/s, curl %s MB/s: %.2f×", human(dl.med()), human(curl.med()), dl.med()/curl.med())
		if on := b.find(wl.name, "dl-fetch --fsync=true"); on != nil && len(on.rates) > 0 {
			t.Measured += fmt.Sprintf("; with --fsync=true %s MB/s", human(on.med()))
		}
		t.Met = dl.med() >= 0.9*curl.med() && dl.bad == 0
		out = append(out, t)
	}
	if m := b.find("memory", "dl-fetch"); m != nil {
		rss := float64(m.rss["dl-fetch"]) / 1024
		out = append(out, targetVerdict{Target: fmt.Sprintf("5. dl-fetch < 64 MiB with %d transfers of %d MiB in flight", m.n, b.cfg.memSize>>20),
			Measured: fmt.Sprintf("%.0f MiB", rss), Met: rss < 64 && m.bad == 0})
	}
	var dist []*agg
	for _, a := range aggregate(b.samples) {
		if a.workload == "distribute" {
			dist = append(dist, a)
		}
	}
	if len(dist) >= 2 {
		lo, hi := dist[0], dist[len(dist)-1]
		t := targetVerdict{Target: fmt.Sprintf("5. dl-select | dl-enqueue flat in memory from %d to %d rows", lo.n, hi.n)}
		var parts []string
		flat := true
		for _, p := range []string{"dl-select", "dl-enqueue"} {
			a, z := float64(lo.rss[p])/1024, float64(hi.rss[p])/1024
			parts = append(parts, fmt.Sprintf("%s %.0f → %.0f MiB", p, a, z))
			flat = flat && z <= 1.25*a+4
		}
		parts = append(parts, fmt.Sprintf("%s → %s rows/s", human(lo.med()), human(hi.med())))
		t.Measured = strings.Join(parts, "; ")
		t.Met = flat && lo.bad == 0 && hi.bad == 0
		out = append(out, t)
	}
	return out
}

// scalingTable lays the scaling samples out as workload × workers rows and
// concurrency columns.
func (b *bench) scalingTable() string {
	var w strings.Builder
	concs := b.cfg.scaleConc
	w.WriteString("| workload | tool | workers |")
	for _, c := range concs {
		fmt.Fprintf(&w, " c=%d |", c)
	}
	w.WriteString("\n|---|---|---:|")
	for range concs {
		w.WriteString("---:|")
	}
	w.WriteString("\n")
	for _, wl := range []string{"scale-small", "scale-latency"} {
		for _, workers := range b.cfg.scaleWorkers {
			for _, tool := range []string{"original", "dl"} {
				cells := map[int]string{}
				any := false
				for _, s := range b.scaling {
					if s.Workload == wl && s.Tool == tool && s.Workers == workers {
						v := human(s.Rate)
						if s.Err != "" {
							v += " ✗"
						}
						cells[s.Conc] = v
						any = true
					}
				}
				if !any {
					continue
				}
				fmt.Fprintf(&w, "| %s | %s | %d |", strings.TrimPrefix(wl, "scale-"), tool, workers)
				for _, c := range concs {
					v := cells[c]
					if v == "" {
						v = " "
					}
					fmt.Fprintf(&w, " %s |", v)
				}
				w.WriteString("\n")
			}
		}
	}
	return w.String()
}

func (b *bench) countsTable() string {
	p := b.prof
	n := p.Sample.N
	var w strings.Builder
	what := "4 KiB files"
	if b.cfg.profLatency {
		what = "4 KiB files delayed 100 ms"
	}
	fmt.Fprintf(&w, "%d %s, 2 workers at c=%d; ran in %.1f s under the proxies and perf (%s).\n\n", n, what, b.cfg.e2eConc, p.Sample.Secs, okOr(p.Sample.Err))
	w.WriteString("| tool | MySQL statements / file | MySQL round trips / file | Redis commands / file | Redis round trips / file |\n|---|---:|---:|---:|---:|\n")
	var tm, tr, tc, tb float64
	for _, t := range []string{"dl-select", "dl-enqueue", "dl-fetch", "dl-mark"} {
		m, r := p.MySQL[t], p.Redis[t]
		ms, rc := total(m.Counts), total(r.Counts)
		tm += float64(ms)
		tr += float64(m.Bursts)
		tc += float64(rc)
		tb += float64(r.Bursts)
		fmt.Fprintf(&w, "| %s | %.4f | %.4f | %.4f | %.4f |\n", t, float64(ms)/float64(n), float64(m.Bursts)/float64(n),
			float64(rc)/float64(n), float64(r.Bursts)/float64(n))
	}
	fmt.Fprintf(&w, "| all | %.4f | %.4f | %.4f | %.4f |\n\n", tm/float64(n), tr/float64(n), tc/float64(n), tb/float64(n))
	for _, t := range []string{"dl-select", "dl-enqueue", "dl-fetch", "dl-mark"} {
		fmt.Fprintf(&w, "- %s: MySQL %s (%d connections); Redis %s (%d connections)\n", t,
			describe(p.MySQL[t].Counts, n), p.MySQL[t].Conns, describe(p.Redis[t].Counts, n), p.Redis[t].Conns)
	}
	return w.String()
}

func okOr(e string) string {
	if e == "" {
		return "every file checked"
	}
	return "ERROR: " + e
}

func total(m map[string]int64) int64 {
	var t int64
	for _, v := range m {
		t += v
	}
	return t
}

func (b *bench) profileText() string {
	var w strings.Builder
	w.WriteString(b.countsTable())
	for _, t := range sortedKeys(b.prof.Perf) {
		fmt.Fprintf(&w, "\n=== perf: %s (first worker) ===\n%s", t, b.prof.Perf[t])
	}
	return w.String()
}

// plot writes scaling.svg with gnuplot: for each workload, files/s against
// concurrency per process (one line per worker count) and against worker
// processes (dl at its best concurrency and the original, one transfer per
// process).
func (b *bench) plot(ctx context.Context, m machine) error {
	gp, err := exec.LookPath("gnuplot")
	if err != nil {
		return fmt.Errorf("gnuplot not installed: %w", err)
	}
	var s strings.Builder
	block := func(name string, rows []string) {
		fmt.Fprintf(&s, "$%s << EOD\n%s\nEOD\n", name, strings.Join(rows, "\n"))
	}
	cmax := b.cfg.scaleConc[len(b.cfg.scaleConc)-1]
	for _, wl := range []string{"small", "latency"} {
		for _, workers := range b.cfg.scaleWorkers {
			var rows []string
			for _, x := range b.scaling {
				if x.Workload == "scale-"+wl && x.Tool == "dl" && x.Workers == workers && x.Err == "" {
					rows = append(rows, fmt.Sprintf("%d %.2f", x.Conc, x.Rate))
				}
			}
			if len(rows) == 0 {
				rows = []string{"1 NaN"}
			}
			block(fmt.Sprintf("%s_dl_%d", wl, workers), rows)
		}
		var orig, best []string
		for _, workers := range b.cfg.scaleWorkers {
			top := 0.0
			for _, x := range b.scaling {
				if x.Workload != "scale-"+wl || x.Workers != workers || x.Err != "" {
					continue
				}
				if x.Tool == "original" {
					orig = append(orig, fmt.Sprintf("%d %.2f", workers, x.Rate))
				} else if x.Conc == cmax || x.Conc == 64 {
					top = max(top, x.Rate)
				}
			}
			if top > 0 {
				best = append(best, fmt.Sprintf("%d %.2f", workers, top))
			}
		}
		if len(orig) == 0 {
			orig = []string{"1 NaN"}
		}
		if len(best) == 0 {
			best = []string{"1 NaN"}
		}
		block(wl+"_orig", orig)
		block(wl+"_best", best)
	}
	svg := filepath.Join(b.cfg.out, "scaling.svg")
	fmt.Fprintf(&s, `set terminal svg size 1100,820 dynamic font "sans,11" background rgb "white"
set output %q
set multiplot layout 2,2 title "dl scaling on %d cores (files/s, workers' phase; %s)"
set grid
set key top left font ",9" spacing 0.9
set logscale x 2
set logscale y 10
set xlabel "transfers per process (--concurrency)"
set ylabel "files/s"
`, svg, m.Cores, strings.Fields(m.Date + " ")[0])
	titles := map[string]string{"small": "4 KiB files, fsync on", "latency": "4 KiB files delayed 100 ms"}
	for _, wl := range []string{"small", "latency"} {
		top := 1.0
		for _, x := range b.scaling {
			if x.Workload == "scale-"+wl {
				top = max(top, x.Rate)
			}
		}
		// Head room above the lines for the key.
		fmt.Fprintf(&s, "set title %q\nset key top left\nset yrange [*:%.0f]\nplot ", "dl: "+titles[wl]+", by concurrency", top*15)
		var parts []string
		for _, workers := range b.cfg.scaleWorkers {
			parts = append(parts, fmt.Sprintf("$%s_dl_%d using 1:2 with linespoints lw 2 title 'dl, %d worker(s)'", wl, workers, workers))
		}
		parts = append(parts, fmt.Sprintf("$%s_orig using (1):2 with points pt 7 ps 1.2 lc rgb 'black' title 'original (1 per process), 1..%d workers'", wl, b.cfg.scaleWorkers[len(b.cfg.scaleWorkers)-1]))
		if wl == "latency" {
			parts = append(parts, fmt.Sprintf("[1:%d] x*10 with lines dt 2 lc rgb 'gray' title 'ideal, 1 worker (c / 0.1 s)'", cmax))
		}
		s.WriteString(strings.Join(parts, ", \\\n  ") + "\n")
		fmt.Fprintf(&s, `set title %q
set key bottom right
set yrange [*:*]
unset logscale x
set xlabel "worker processes"
set xtics 1
plot $%s_best using 1:2 with linespoints lw 2 title 'dl (best of c=64 and c=%d)', \
  $%s_orig using 1:2 with linespoints lw 2 lc rgb 'black' title 'original'
set logscale x 2
set xtics autofreq
set xlabel "transfers per process (--concurrency)"
`, "dl and the original: "+titles[wl]+", by processes", wl, cmax, wl)
	}
	s.WriteString("unset multiplot\n")
	script := filepath.Join(b.cfg.out, "scaling.gp")
	if err := os.WriteFile(script, []byte(s.String()), 0o644); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, gp, script).CombinedOutput()
	if err != nil {
		return fmt.Errorf("gnuplot: %w: %s", err, out)
	}
	return nil
}
