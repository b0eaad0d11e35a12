package testenv

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunReturnsOutputAndExitStatus(t *testing.T) {
	t.Parallel()
	out, errOut, err := Run(t, t.Context(), "sh", nil, strings.NewReader("in\n"), "-c", "cat; echo err >&2; exit 3")
	if out != "in\n" || errOut != "err\n" {
		t.Fatalf("stdout %q stderr %q", out, errOut)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("err %v, want exit status 3", err)
	}
}

func TestRunKeepsDLVariablesOut(t *testing.T) {
	t.Setenv("DL_MYSQL_DSN", "root@tcp(production:3306)/")
	out, _, err := Run(t, t.Context(), "sh", []string{"DL_OWN=mine"}, nil, "-c", `echo "${DL_MYSQL_DSN-unset} $DL_OWN"`)
	if err != nil || out != "unset mine\n" {
		t.Fatalf("stdout %q (%v), want the caller's DL_ variable dropped and the given one kept", out, err)
	}
}

func TestPipelineJoinsProcessesWithPipes(t *testing.T) {
	t.Parallel()
	r := Pipeline(t, t.Context(), strings.NewReader("b\na\nc\n"),
		Proc{Bin: "sort"},
		Proc{Bin: "sh", Args: []string{"-c", "tr a-z A-Z; echo middle >&2; exit 2"}},
		Proc{Bin: "cat"},
	)
	if r.Stdout != "A\nB\nC\n" {
		t.Fatalf("stdout %q", r.Stdout)
	}
	if r.OK() || r.Procs[0].Code != 0 || r.Procs[1].Code != 2 || r.Procs[1].Stderr != "middle\n" || r.Procs[2].Err != nil {
		t.Fatalf("exits:\n%s", r)
	}
	if r.Procs[1].Name != "sh" {
		t.Fatalf("name %q", r.Procs[1].Name)
	}

	// Much more than a pipe buffer, so a pipe nobody drains would hang.
	r = Pipeline(t, t.Context(), nil, Proc{Bin: "seq", Args: []string{"1", "300000"}}, Proc{Bin: "wc", Args: []string{"-l"}})
	if strings.TrimSpace(r.Stdout) != "300000" || !r.OK() {
		t.Fatalf("seq | wc -l:\n%s", r)
	}
}

func TestPipelineTimeoutFailsWithEachStderr(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	msg := fatalOf(t, func(tb testing.TB) {
		Pipeline(tb, ctx, nil,
			Proc{Bin: "sh", Args: []string{"-c", "echo first-was-here >&2; sleep 60"}},
			Proc{Bin: "sh", Args: []string{"-c", "echo second-was-here >&2; cat"}},
		)
	})
	if !strings.Contains(msg, "still running") || !strings.Contains(msg, "first-was-here") || !strings.Contains(msg, "second-was-here") {
		t.Fatalf("timeout message lacks the stderr of each process:\n%s", msg)
	}
	if el := time.Since(t0); el > 5*time.Second {
		t.Fatalf("took %v to give up", el)
	}
}

func TestStartShowsLiveOutputAndDeliversSignals(t *testing.T) {
	t.Parallel()
	r := Start(t, t.Context(), nil, Proc{Bin: "sh", Args: []string{"-c",
		`trap 'echo bye; exit 0' TERM; echo hello; while :; do sleep 0.05; done`}})
	Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool { return r.Stdout() == "hello\n" }, "hello on stdout")
	r.Signal(syscall.SIGTERM)
	res := r.Wait()
	if res.Stdout != "hello\nbye\n" || !res.OK() {
		t.Fatalf("after SIGTERM:\n%s", res)
	}
}

func TestStartKillsLeftoversAtCleanup(t *testing.T) {
	t.Parallel()
	var r *Running
	t0 := time.Now()
	t.Run("user", func(t *testing.T) {
		r = Start(t, t.Context(), nil, Proc{Bin: "sleep", Args: []string{"60"}})
	})
	select {
	case <-r.done:
	default:
		t.Fatal("process still running after its test's cleanup")
	}
	if el := time.Since(t0); el > 5*time.Second {
		t.Fatalf("cleanup took %v", el)
	}
}

func TestEventually(t *testing.T) {
	t.Parallel()
	n := 0
	Eventually(t, time.Second, time.Millisecond, func() bool { n++; return n == 3 }, "third call")
	msg := fatalOf(t, func(tb testing.TB) {
		Eventually(tb, 50*time.Millisecond, 10*time.Millisecond, func() bool { return false }, "the %s", "impossible")
	})
	if !strings.Contains(msg, "the impossible") {
		t.Fatalf("message %q", msg)
	}
}
