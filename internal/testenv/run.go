package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// DefaultTimeout bounds a Run or Pipeline whose context has no deadline.
// It is generous on purpose: the bound is there to turn a hang into a
// failure with evidence, not to measure speed.
const DefaultTimeout = 2 * time.Minute

// waitDelay is how long a process gets after SIGQUIT (a Go program prints
// every goroutine's stack and exits) before it is killed.
const waitDelay = 10 * time.Second

// Proc is one process of a pipeline.
type Proc struct {
	Bin  string   // a path, or a name looked up in PATH
	Args []string // arguments after the program name
	// Env is added to the environment the test runs in, minus every DL_*
	// variable, so that a developer's shell settings never reach (say) a
	// production database from a test.
	Env []string
	Dir string // working directory; empty for the test's own
}

// Exit is how one process ended.
type Exit struct {
	Name   string // base name of Bin
	Code   int    // exit code; -1 when killed by a signal
	Err    error  // nil for exit code 0
	Stderr string
}

// Result is what a pipeline produced.
type Result struct {
	Stdout string // of the last process
	Procs  []Exit // in pipeline order
}

// OK reports whether every process exited 0.
func (r Result) OK() bool {
	for _, p := range r.Procs {
		if p.Err != nil {
			return false
		}
	}
	return true
}

// String shows each process's exit and stderr, for failure messages.
func (r Result) String() string {
	var b strings.Builder
	for i, p := range r.Procs {
		fmt.Fprintf(&b, "--- [%d] %s: exit %d", i, p.Name, p.Code)
		if p.Err != nil {
			fmt.Fprintf(&b, " (%v)", p.Err)
		}
		fmt.Fprintf(&b, "; stderr:\n%s\n", tail(p.Stderr, 16<<10))
	}
	fmt.Fprintf(&b, "--- stdout:\n%s\n", tail(r.Stdout, 8<<10))
	return b.String()
}

// Running is a started pipeline.
type Running struct {
	t        testing.TB
	timeout  time.Duration
	cmds     []*exec.Cmd
	stdout   SyncBuffer
	stderr   []SyncBuffer
	errs     []error
	exited   []atomic.Bool // set once reaped, so a group id is never reused
	done     chan struct{}
	once     sync.Once
	result   Result
	timedOut bool
}

// Run runs one program to its end and returns its output and its exit
// error (an *exec.ExitError for a nonzero exit). A timeout fails the test.
func Run(t testing.TB, ctx context.Context, bin string, env []string, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	r := Pipeline(t, ctx, stdin, Proc{Bin: bin, Args: args, Env: env})
	return r.Stdout, r.Procs[0].Stderr, r.Procs[0].Err
}

// Pipeline runs procs like the shell's "a | b | c", joined by real pipes,
// and waits for all of them. stdin (may be nil) feeds the first. When the
// time runs out (ctx's deadline, else DefaultTimeout), every process gets
// SIGQUIT, then SIGKILL, and the test fails showing each one's stderr.
func Pipeline(t testing.TB, ctx context.Context, stdin io.Reader, procs ...Proc) Result {
	t.Helper()
	return Start(t, ctx, stdin, procs...).Wait()
}

// Start starts a pipeline like Pipeline and returns without waiting, for
// tests that watch a long-running process (Stdout, Signal) before Wait.
// Call Wait from the test's goroutine: it may fail the test.
// Processes still running at cleanup are killed.
func Start(t testing.TB, ctx context.Context, stdin io.Reader, procs ...Proc) *Running {
	t.Helper()
	if len(procs) == 0 {
		t.Fatal("testenv: Start needs at least one process")
	}
	timeout := DefaultTimeout
	if d, ok := deadline(t); ok {
		// Leave time to report before go test's own timeout panics.
		timeout = min(timeout, time.Until(d)-15*time.Second)
	}
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	r := &Running{
		t: t, timeout: timeout,
		stderr: make([]SyncBuffer, len(procs)), errs: make([]error, len(procs)),
		exited: make([]atomic.Bool, len(procs)),
		done:   make(chan struct{}),
	}
	for i, p := range procs {
		cmd := exec.CommandContext(runCtx, p.Bin, p.Args...)
		cmd.Env = environ(p.Env)
		cmd.Dir = p.Dir
		cmd.Stderr = &r.stderr[i]
		// A process group of its own, so that signals reach whatever the
		// program started too, and death with the test binary.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		cmd.Cancel = func() error { return signalGroup(cmd, syscall.SIGQUIT) }
		cmd.WaitDelay = waitDelay
		r.cmds = append(r.cmds, cmd)
	}
	r.cmds[0].Stdin = stdin
	r.cmds[len(r.cmds)-1].Stdout = &r.stdout
	var ends []*os.File // the parent's copies, closed once the children hold them
	closeEnds := func() {
		for _, f := range ends {
			f.Close()
		}
	}
	for i := 0; i+1 < len(r.cmds); i++ {
		pr, pw, err := os.Pipe()
		if err != nil {
			closeEnds()
			cancel()
			t.Fatalf("testenv: create pipe: %v", err)
		}
		r.cmds[i].Stdout, r.cmds[i+1].Stdin = pw, pr
		ends = append(ends, pr, pw)
	}
	var wg sync.WaitGroup
	for i, cmd := range r.cmds {
		if err := cmd.Start(); err != nil {
			closeEnds()
			cancel() // kills those already started
			wg.Wait()
			t.Fatalf("testenv: start %s: %v", procs[i].Bin, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.errs[i] = cmd.Wait()
			r.exited[i].Store(true)
		}()
	}
	closeEnds()
	go func() {
		wg.Wait()
		// Our own bound or the caller's deadline: either way time ran out.
		// A caller's plain cancel is a deliberate stop and no failure.
		r.timedOut = errors.Is(runCtx.Err(), context.DeadlineExceeded)
		cancel()
		close(r.done)
	}()
	t.Cleanup(func() {
		r.Signal(syscall.SIGKILL)
		<-r.done
		cancel()
	})
	return r
}

// Stdout returns what the last process has written so far.
func (r *Running) Stdout() string { return r.stdout.String() }

// Stderr returns what process i has written to stderr so far.
func (r *Running) Stderr(i int) string { return r.stderr[i].String() }

// Signal sends sig to every process of the pipeline (and what each one
// started) that is still running, e.g. SIGTERM to check a graceful stop.
func (r *Running) Signal(sig syscall.Signal) {
	for i, cmd := range r.cmds {
		if !r.exited[i].Load() {
			_ = signalGroup(cmd, sig) // fails only for processes already gone
		}
	}
}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	return syscall.Kill(-cmd.Process.Pid, sig)
}

// Wait waits for every process to end and returns the result. If time ran
// out, it fails the test with every process's stderr instead.
func (r *Running) Wait() Result {
	r.t.Helper()
	<-r.done
	r.once.Do(func() {
		r.result.Stdout = r.stdout.String()
		for i, cmd := range r.cmds {
			e := Exit{Name: filepath.Base(cmd.Path), Code: -1, Err: r.errs[i], Stderr: r.stderr[i].String()}
			if cmd.ProcessState != nil {
				e.Code = cmd.ProcessState.ExitCode()
			}
			r.result.Procs = append(r.result.Procs, e)
		}
	})
	if r.timedOut {
		r.t.Fatalf("testenv: pipeline still running after %v; sent SIGQUIT (SIGKILL 10 s later):\n%s", r.timeout, r.result)
	}
	return r.result
}

func deadline(t testing.TB) (time.Time, bool) {
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		return d.Deadline()
	}
	return time.Time{}, false
}

func environ(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DL_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// SyncBuffer lets a test read output while a process (or goroutine) is
// still writing it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// CaptureLogs sends the default logger's records, as text, to the buffer
// it returns until the test ends. Tests that use it change a process-wide
// setting, so they do not run in parallel.
func CaptureLogs(t testing.TB) *SyncBuffer {
	logs := &SyncBuffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return logs
}

// SignalProc sends sig to process i of the pipeline only: a test kills
// dl-fetch and watches what dl-mark does, or stops one with SIGSTOP.
func (r *Running) SignalProc(i int, sig syscall.Signal) {
	if !r.exited[i].Load() {
		_ = signalGroup(r.cmds[i], sig)
	}
}

// Pid returns the process id of process i of the pipeline, for a test that
// looks for what it started.
func (r *Running) Pid(i int) int { return r.cmds[i].Process.Pid }
