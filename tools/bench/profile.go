package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// profileResult is what the profile run found.
type profileResult struct {
	Sample sample `json:"sample"`
	// Per tool: MySQL statements and Redis commands by kind, bursts
	// (≈ round trips) and connections, all over the run.
	MySQL map[string]proxyCounts `json:"mysql"`
	Redis map[string]proxyCounts `json:"redis"`
	// Per profiled process: perf's hottest symbols (self time) and
	// inclusive time of a few functions that tell where the time goes.
	Perf map[string]string `json:"perf"`
}

type proxyCounts struct {
	Counts map[string]int64 `json:"counts"`
	Bursts int64            `json:"bursts"`
	Conns  int64            `json:"connections"`
}

// profile runs the end-to-end small-file workload once with counting
// proxies in front of MySQL and Redis for every tool, and perf recording
// the first worker's dl-fetch and dl-mark. Timings of this run are not
// comparable with the others (proxies add a hop; perf adds overhead).
func (b *bench) profile(ctx context.Context, rows []row) (*profileResult, error) {
	tools := []string{"dl-select", "dl-enqueue", "dl-fetch", "dl-mark"}
	myp := map[string]*proxy{}
	rp := map[string]*proxy{}
	ropt := b.e.rdb.Options()
	for _, t := range tools {
		m, err := startProxy("mysql", b.e.mysqlCfg.Addr)
		if err != nil {
			return nil, err
		}
		defer m.close()
		r, err := startProxy("redis", ropt.Addr)
		if err != nil {
			return nil, err
		}
		defer r.close()
		myp[t], rp[t] = m, r
	}
	perf, _ := exec.LookPath("perf")
	dir, err := os.MkdirTemp(b.e.work, "perf-")
	if err != nil {
		return nil, err
	}
	perfData := map[string]string{}
	wrap := func(tool string, worker int) (string, string, []string) {
		var prefix []string
		if perf != "" && worker == 0 && (tool == "dl-fetch" || tool == "dl-mark") {
			out := filepath.Join(dir, tool+".data")
			perfData[tool] = out
			prefix = []string{perf, "record", "-q", "-F", "499", "-g", "-o", out, "--"}
		}
		u := fmt.Sprintf("redis://%s/%d", rp[tool].addr(), ropt.DB)
		return b.e.dsnVia(myp[tool].addr()), u, prefix
	}
	s := b.e2eDL(ctx, "profile", rows, e2eOpts{workers: 2, conc: b.cfg.e2eConc, fsync: true, wrap: wrap})
	res := &profileResult{Sample: s, MySQL: map[string]proxyCounts{}, Redis: map[string]proxyCounts{}, Perf: map[string]string{}}
	for _, t := range tools {
		myp[t].close()
		rp[t].close()
		c, bu, co := myp[t].snapshot()
		res.MySQL[t] = proxyCounts{c, bu, co}
		c, bu, co = rp[t].snapshot()
		res.Redis[t] = proxyCounts{c, bu, co}
	}
	for tool, data := range perfData {
		res.Perf[tool] = perfReport(ctx, data, tool)
	}
	return res, nil
}

// perfReport summarises a perf recording (CPU samples, on-CPU time only:
// waiting in fsync or on the network does not show): the share of the
// program, the kernel and libraries; the program's hottest functions by
// self time; and inclusive time of the program's functions, kernel work
// below them included.
func perfReport(ctx context.Context, data, prog string) string {
	report := func(args ...string) string {
		out, err := exec.CommandContext(ctx, "perf", append([]string{"report", "-i", data, "--stdio", "-g", "none"}, args...)...).Output()
		if err != nil {
			return fmt.Sprintf("perf report: %v\n", err)
		}
		return string(out)
	}
	var b strings.Builder
	b.WriteString("on-CPU samples by object:\n")
	b.WriteString(keepRows(report("--no-children", "--sort", "dso"), 6, ""))
	b.WriteString("\nself time in the program (functions over 0.5% of all samples):\n")
	b.WriteString(keepRows(report("--no-children", "--sort", "symbol", "--dsos", prog, "--percent-limit", "0.5"), 25, ""))
	b.WriteString("\ninclusive time of the program's functions (over 2%, kernel time below them included):\n")
	b.WriteString(keepRows(report("--children", "--sort", "symbol", "--percent-limit", "2"), 45, "[.]"))
	return b.String()
}

var perfTail = regexp.MustCompile(`(\s+-)*\s*$`)

// keepRows drops perf's comments and blank lines and the empty columns at
// the end of each line, keeps lines containing must, and at most n rows.
func keepRows(s string, n int, must string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") || !strings.Contains(l, must) {
			continue
		}
		out = append(out, perfTail.ReplaceAllString(l, ""))
		if len(out) == n {
			break
		}
	}
	return strings.Join(out, "\n") + "\n"
}
