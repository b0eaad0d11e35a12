package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// step is one process of a pipeline.
type step struct {
	name string   // label in reports (e.g. "dl-fetch")
	bin  string   // program
	args []string // arguments
	env  []string // added to the driver's environment
	dir  string   // working directory; "" for the driver's
}

// run is how a pipeline ended: the wall time from the first start to the
// last exit, and each process's peak RSS (ru_maxrss) and CPU time.
type run struct {
	secs   float64
	rssKiB []int64
	cpu    []float64 // user+system seconds
	names  []string
	busy   float64 // share of the machine's CPU time that was not idle, 0..1
	err    error
}

// peak returns the largest peak RSS (KiB) of the processes named name.
func (r run) peak(name string) int64 {
	var m int64
	for i, n := range r.names {
		if n == name && r.rssKiB[i] > m {
			m = r.rssKiB[i]
		}
	}
	return m
}

// pipeline runs steps like "a | b | c", stdin from the file in (or
// /dev/null) and the last stdout into the file out (or /dev/null); each
// process's stderr goes to logDir/<label>.<i>.log. Several pipelines can run
// side by side: see group.
type pipeline struct {
	steps []step
	in    string
	out   string
}

// group starts pipelines together and waits for all of them; secs is from
// the first start to the last exit. Every process is ended when ctx is done.
func group(ctx context.Context, logDir string, timeout time.Duration, ps ...pipeline) run {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var cmds []*exec.Cmd
	var names []string
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
		closers = nil
	}
	fail := func(err error) run {
		closeAll()
		for _, c := range cmds {
			if c.Process != nil {
				_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
				_ = c.Wait()
			}
		}
		return run{err: err}
	}
	var timeFiles []string
	for pi, p := range ps {
		in, err := openIn(p.in)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, in)
		prev := in
		for si, s := range p.steps {
			// ru_maxrss of a process the driver waits for would be wrong:
			// Go starts children with vfork, and Linux carries the
			// parent's high-water mark across the exec. time(1) forks
			// from a small process and reports its child's own peak.
			timeFile := filepath.Join(logDir, fmt.Sprintf("%s.%d.%d.time", s.name, pi, si))
			cmd := exec.Command(timeBin, append([]string{"-f", "%M %U %S", "-o", timeFile, s.bin}, s.args...)...)
			timeFiles = append(timeFiles, timeFile)
			cmd.Env = append(baseEnv(), s.env...)
			cmd.Dir = s.dir
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Stdin = prev
			logf, err := os.Create(filepath.Join(logDir, fmt.Sprintf("%s.%d.%d.log", s.name, pi, si)))
			if err != nil {
				return fail(fmt.Errorf("create log: %w", err))
			}
			closers = append(closers, logf)
			cmd.Stderr = logf
			if si == len(p.steps)-1 {
				out, err := openOut(p.out)
				if err != nil {
					return fail(err)
				}
				closers = append(closers, out)
				cmd.Stdout = out
			} else {
				r, w, err := os.Pipe()
				if err != nil {
					return fail(fmt.Errorf("pipe: %w", err))
				}
				closers = append(closers, r, w)
				cmd.Stdout = w
				prev = r
			}
			cmds = append(cmds, cmd)
			names = append(names, s.name)
		}
	}
	idle0, total0 := cpuTimes()
	start := time.Now()
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			return fail(fmt.Errorf("start %s: %w", c.Path, err))
		}
	}
	// The children hold their own copies; ours must go so that EOF reaches
	// each reader when its writer exits.
	closeAll()
	stop := context.AfterFunc(ctx, func() {
		for _, c := range cmds {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		}
	})
	defer stop()
	r := run{names: names, rssKiB: make([]int64, len(cmds)), cpu: make([]float64, len(cmds))}
	var errs []error
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (see %s)", names[i], err, logDir))
		}
		r.rssKiB[i], r.cpu[i] = readTime(timeFiles[i])
	}
	r.secs = time.Since(start).Seconds()
	if idle1, total1 := cpuTimes(); total1 > total0 {
		r.busy = 1 - float64(idle1-idle0)/float64(total1-total0)
	}
	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("timed out after %s", timeout))
	}
	r.err = errors.Join(errs...)
	return r
}

// baseEnv is the driver's environment without DL_* variables, so that a
// user's settings (say, a production DSN) never reach a benchmark run.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DL_") {
			env = append(env, kv)
		}
	}
	return env
}

// cpuTimes returns the machine's idle and total CPU time in ticks, from
// /proc/stat: the busy share over a run says how much of the machine the
// run (and whatever else runs on it) had.
func cpuTimes() (idle, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
		if i < 8 { // guest time is already in user
			total += v
		}
	}
	return idle, total
}

// timeBin is GNU time, which measures each process.
const timeBin = "/usr/bin/time"

// readTime reads what time(1) wrote: peak RSS in KiB, user and system
// seconds. A process killed by a signal leaves no figures: zeros.
func readTime(path string) (rssKiB int64, cpu float64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	// time(1) writes "Command exited with non-zero status N" first then.
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var user, sys float64
	if _, err := fmt.Sscanf(lines[len(lines)-1], "%d %f %f", &rssKiB, &user, &sys); err != nil {
		return 0, 0
	}
	return rssKiB, user + sys
}

func openIn(path string) (*os.File, error) {
	if path == "" {
		path = os.DevNull
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open input: %w", err)
	}
	return f, nil
}

func openOut(path string) (*os.File, error) {
	if path == "" {
		path = os.DevNull
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create output: %w", err)
	}
	return f, nil
}

// tail returns the last lines of a log file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
