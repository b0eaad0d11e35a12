package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/testenv"
)

// The worker script's first and last moments, on fake tools: sh scripts put
// first on its PATH (DL_BIN), which need no database and whose timing the
// test controls. Each fake dl-fetch writes its pid to $MARKS/fetch.pid as it
// starts; the test waits for that file instead of sleeping. MARKS, a
// directory of the test's own, is in the environment of every process the
// script starts: that is how the test finds them, to see that none is left
// running and to kill any at cleanup (the pipeline has a process group of
// its own, which testenv's cleanup of the script's group does not reach).

// fakeFetchUp is the start of every fake dl-fetch.
const fakeFetchUp = `echo $$ >"$MARKS/fetch.pid"`

// fakeWorker is the worker script on fake tools (tool name → sh script
// body), plus extra environment variables. It returns the process and the
// directory of the marker files.
func fakeWorker(t *testing.T, tools map[string]string, extra ...string) (testenv.Proc, string) {
	t.Helper()
	bin, marks := t.TempDir(), t.TempDir()
	for name, body := range tools {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, pid := range marked(marks) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	script, err := filepath.Abs(filepath.Join("..", "scripts", "dl-worker"))
	if err != nil {
		t.Fatal(err)
	}
	env := append([]string{"DL_BIN=" + bin, "MARKS=" + marks}, extra...)
	// A directory of its own, for the core files a fake killed by SIGQUIT
	// may leave where core dumps are on.
	return testenv.Proc{Bin: script, Env: env, Dir: t.TempDir()}, marks
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// recordingMark is a fake dl-mark that keeps what it reads in
// $MARKS/results, for wantRecorded.
const recordingMark = `exec cat >"$MARKS/results"`

// wantRecorded fails the test unless the fake dl-mark read want, all that
// dl-fetch wrote, before the worker script r ended.
func wantRecorded(t *testing.T, marks, want string, r testenv.Result) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(marks, "results")); err != nil || string(b) != want {
		t.Fatalf("dl-mark read %q (%v), want %q:\n%s", b, err, want, r)
	}
}

// fetchUp waits until the fake dl-fetch has written its pid, and returns it.
func fetchUp(t *testing.T, w *testenv.Running, marks string) int {
	t.Helper()
	pid := 0
	testenv.Eventually(t, 30*time.Second, 10*time.Millisecond, func() bool {
		var err error
		pid, err = readPid(filepath.Join(marks, "fetch.pid"))
		return err == nil && pid > 0
	}, "the fake dl-fetch to start:\n%s", w.Stderr(0))
	return pid
}

// marked lists the live processes with MARKS=marks in their environment.
func marked(marks string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil {
			continue // ended meanwhile, or not ours; a zombie's is empty
		}
		for _, kv := range strings.Split(string(b), "\x00") {
			if kv == "MARKS="+marks {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// scriptWaits waits until the worker script is blocked in its wait for the
// pipeline (its wchan in /proc), so that a signal sent next interrupts that
// wait, not a step before it.
func scriptWaits(t *testing.T, w *testenv.Running, what string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 10*time.Millisecond, func() bool {
		b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(w.Pid(0)), "wchan"))
		return string(b) == "do_wait"
	}, "%s", what)
}

// noneLeft fails the test unless every process the worker script started has
// ended: the script, which has ended, waited for its pipeline. A process
// killed just before may take a moment to go.
func noneLeft(t *testing.T, marks string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool { return len(marked(marks)) == 0 },
		"the processes the worker script started to end (left: %v)", marked(marks))
}

// workerCtx bounds a fake worker's run well below testenv's default, so a
// hang fails fast with the script's stderr.
func workerCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(bg, time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// The worker script exits with its pipeline's status, but 0 for a stop: a
// TERM (systemctl stop), an INT or a HUP passed on to a dl-fetch that has not
// yet set up its handling kills it, and nothing had begun. That TERM must not
// make the unit "failed" (exit 143). Other statuses stay failures.
func TestWorkerScriptExitStatus(t *testing.T) {
	t.Parallel()
	const (
		runs   = fakeFetchUp + "\nexec sleep 600" // dies of a signal, as dl-fetch before its handler
		drains = "exec cat >/dev/null"
	)
	for _, tc := range []struct {
		name        string
		fetch, mark string
		sig         syscall.Signal // to the script, once dl-fetch is up, or 0
		direct      syscall.Signal // to dl-fetch alone, by another, or 0
		want        int
	}{
		{"TERM before dl-fetch handles it", runs, drains, syscall.SIGTERM, 0, 0},
		{"INT before dl-fetch handles it", runs, drains, syscall.SIGINT, 0, 0},
		{"HUP before dl-fetch handles it", runs, drains, syscall.SIGHUP, 0, 0},
		{"dl-fetch fails", fakeFetchUp + "\nexit 3", drains, 0, 0, 3},
		{"dl-mark fails", fakeFetchUp + "\necho result", "cat >/dev/null; exit 4", 0, 0, 4},
		{"dl-mark fails at a stop", runs, "cat >/dev/null; exit 4", syscall.SIGTERM, 0, 4},
		{"dl-fetch killed by a TERM not passed on", runs, drains, 0, syscall.SIGTERM, 143},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, marks := fakeWorker(t, map[string]string{"dl-fetch": tc.fetch, "dl-mark": tc.mark})
			w := testenv.Start(t, workerCtx(t), nil, p)
			fetch := fetchUp(t, w, marks)
			if tc.sig != 0 {
				w.SignalProc(0, tc.sig) // the script's group: the pipeline has one of its own
			}
			if tc.direct != 0 {
				if err := syscall.Kill(fetch, tc.direct); err != nil {
					t.Fatal(err)
				}
			}
			if r := w.Wait(); r.Procs[0].Code != tc.want {
				t.Fatalf("the worker script exited %d, want %d:\n%s", r.Procs[0].Code, tc.want, r)
			}
			noneLeft(t, marks)
		})
	}
}

// A stop as the worker script starts (systemctl start, then stop at once)
// must find its traps set, whenever it comes: passed on to dl-fetch once its
// pid is known, or, before the pipeline starts, the end of the script. The
// script exits 0, never killed with its pipeline left running nor 143. A QUIT
// alone at those moments exits 131, the failure of a QUIT that kills
// dl-fetch; with a stop, before or after it, it is the stop alone.
//
// Bash takes functions from the environment, and one named as a builtin is
// called for it: a command function signals the script before the pipeline
// starts (command -v setpriv), a set function once it has started (set +m),
// before dl-fetch's pid is known; each trap runs before the next signal is
// sent. The fake setpriv signals the script as the pipeline starts
// (SETPRIV_KILL), or during the script's try of its --pdeathsig (setpriv
// --pdeathsig TERM setpriv --version, PROBE_KILL), the last signal to the
// script's whole group, itself included, as a Ctrl-C would. It sends one
// signal only as the pipeline starts: two from another process may find the
// script in its wait, where bash 5.2 runs the trap of only one of two signals
// that come together (the second's handler interrupts the first's), and the
// first passed on may kill the fake before it sends the second.
func TestWorkerScriptSignalAtStart(t *testing.T) {
	t.Parallel()
	kills := func(format string, sigs []syscall.Signal) string {
		var b strings.Builder
		for _, sig := range sigs {
			fmt.Fprintf(&b, format, sig)
		}
		return b.String()
	}
	for _, when := range []struct {
		name  string
		env   func(sigs []syscall.Signal) string
		early bool // the script must start nothing
		one   bool // sends one signal only
	}{
		{"before the pipeline starts", func(sigs []syscall.Signal) string {
			return "BASH_FUNC_command%%=() { " + kills("builtin kill -%d $$; ", sigs) + `builtin command "$@"; }`
		}, true, false},
		{"as setpriv is tried", func(sigs []syscall.Signal) string {
			last := len(sigs) - 1
			return "PROBE_KILL=" + kills("kill -%d $PPID; ", sigs[:last]) + kills("kill -%d 0", sigs[last:])
		}, true, false},
		{"as the pipeline starts", func(sigs []syscall.Signal) string {
			return "SETPRIV_KILL=" + kills("kill -%d $PPID; ", sigs)
		}, false, true},
		{"once the pipeline started", func(sigs []syscall.Signal) string {
			up := ""
			if len(sigs) == 1 && sigs[0] == syscall.SIGQUIT {
				// A QUIT alone is passed on as it is, and bash loses one that
				// reaches dl-fetch before its exec: the fake must be up.
				up = `local i=0; while [ ! -e "$MARKS/fetch.pid" ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; `
			}
			return `BASH_FUNC_set%%=() { builtin set "$@"; [ "$1" != +m ] || { ` + up + kills("builtin kill -%d $$; ", sigs) + "}; }"
		}, false, false},
	} {
		for _, tc := range []struct {
			name string
			sigs []syscall.Signal
			want int
		}{
			{"TERM", []syscall.Signal{syscall.SIGTERM}, 0},
			{"HUP", []syscall.Signal{syscall.SIGHUP}, 0},
			{"INT", []syscall.Signal{syscall.SIGINT}, 0},
			{"QUIT", []syscall.Signal{syscall.SIGQUIT}, 131},
			{"TERM then QUIT", []syscall.Signal{syscall.SIGTERM, syscall.SIGQUIT}, 0},
			{"QUIT then HUP", []syscall.Signal{syscall.SIGQUIT, syscall.SIGHUP}, 0},
		} {
			if when.one && len(tc.sigs) > 1 {
				continue
			}
			t.Run(when.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				tools := map[string]string{
					"dl-fetch": fakeFetchUp + "\nexec sleep 600",
					"dl-mark":  "exec cat >/dev/null",
					"setpriv": `if [ "$3" = setpriv ]; then
  eval "$PROBE_KILL"
  exit 0
fi
eval "$SETPRIV_KILL"; shift 2; exec "$@"`,
				}
				p, marks := fakeWorker(t, tools, when.env(tc.sigs))
				w := testenv.Start(t, workerCtx(t), nil, p)
				r := w.Wait()
				if r.Procs[0].Code != tc.want {
					t.Fatalf("the worker script exited %d on %s %s, want %d:\n%s", r.Procs[0].Code, tc.name, when.name, tc.want, r)
				}
				if _, err := os.Stat(filepath.Join(marks, "fetch.pid")); err == nil && when.early {
					t.Errorf("dl-fetch started after a signal before the pipeline started:\n%s", r)
				}
				if strings.Contains(r.Procs[0].Stderr, "--pdeathsig") {
					t.Errorf("the worker script took the signal that ended its try of setpriv for a setpriv without --pdeathsig:\n%s", r)
				}
				noneLeft(t, marks)
			})
		}
	}
}

// A signal that interrupts the worker script's wait for its pipeline, which
// ends meanwhile, must not take the place of the pipeline's status: dl-fetch's
// failure stays a failure, its clean end stays 0, and its death by the stop
// passed on is 0 too. To make that moment sure, a kill function (bash takes
// functions from the environment, and one named kill is called for the
// builtin) passes the signal on and then waits until bash has reaped dl-mark,
// the pipeline's last process, before the script goes on. A job killed by a
// signal bash then drops from its table as it reads its next command (the
// trap's), its status lost. Early, the signal comes from a set function
// (set +m) as the pipeline starts, and the pipeline has ended before the
// script waits for it.
func TestWorkerScriptSignalAsPipelineEnds(t *testing.T) {
	t.Parallel()
	const (
		reaped = `BASH_FUNC_kill%%=() { builtin kill "$@"; local i=0; ` +
			`while [ -e /proc/$!/stat ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; }`
		early  = `BASH_FUNC_set%%%%=() { builtin set "$@"; [ "$1" != +m ] || builtin kill -%d $$; }`
		dies   = fakeFetchUp + "\nexec sleep 600" // of the signal, as dl-fetch before its handler
		drains = "exec cat >/dev/null"
	)
	// handles is a dl-fetch with its handler: it ends with its own status
	// within 50 ms of the signal (sh runs the trap once the sleep ends; no
	// process of it is left, as a sleep in the background could be, were
	// the signal to find it between fork and exec).
	handles := func(trap string, exit int) string {
		return fmt.Sprintf("trap 'exit %d' %s\n%s\nwhile :; do sleep 0.05; done", exit, trap, fakeFetchUp)
	}
	for _, tc := range []struct {
		name        string
		fetch, mark string
		sig         syscall.Signal
		early       bool
		want        int
	}{
		{"failure, TERM", handles("TERM", 3), drains, syscall.SIGTERM, false, 3},
		{"failure, QUIT", handles("QUIT", 3), drains, syscall.SIGQUIT, false, 3},
		{"clean end, TERM", handles("TERM", 0), drains, syscall.SIGTERM, false, 0},
		{"clean end, INT", handles("INT", 0), drains, syscall.SIGINT, false, 0},
		{"killed, TERM", dies, drains, syscall.SIGTERM, false, 0},
		{"killed, HUP", dies, drains, syscall.SIGHUP, false, 0},
		{"killed, dl-mark fails", dies, "cat >/dev/null; exit 4", syscall.SIGTERM, false, 4},
		{"killed early, TERM", dies, drains, syscall.SIGTERM, true, 0},
		{"killed early, HUP", dies, drains, syscall.SIGHUP, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			extra := []string{reaped}
			if tc.early {
				extra = append(extra, fmt.Sprintf(early, tc.sig))
			}
			p, marks := fakeWorker(t, map[string]string{"dl-fetch": tc.fetch, "dl-mark": tc.mark}, extra...)
			w := testenv.Start(t, workerCtx(t), nil, p)
			if !tc.early {
				fetchUp(t, w, marks)
				scriptWaits(t, w, "the worker script to wait for its pipeline")
				w.SignalProc(0, tc.sig)
			}
			if r := w.Wait(); r.Procs[0].Code != tc.want {
				t.Fatalf("the worker script exited %d, want %d:\n%s", r.Procs[0].Code, tc.want, r)
			}
			noneLeft(t, marks)
		})
	}
}

// A stop passed on explains dl-fetch's death by that signal (TERM, INT), not
// by another: killed by SIGKILL as it finishes its transfers after the stop
// (the OOM killer, or by hand), or by SIGSEGV or SIGABRT, it lost the
// transfers in flight, and the worker script must not exit 0 as for a clean
// stop. The fake dl-fetch handles the TERM (marker file term) and then dies
// of a SIGKILL once the test has seen the script back in its wait for the
// pipeline (marker file die), so that the script's status for the pipeline
// is that death's, not a wait interrupted by the TERM.
func TestWorkerScriptOtherSignalAtStop(t *testing.T) {
	t.Parallel()
	const fetch = `trap 'touch "$MARKS/term"; while [ ! -e "$MARKS/die" ]; do sleep 0.01; done; kill -KILL $$' TERM
` + fakeFetchUp + `
while :; do sleep 0.05; done`
	p, marks := fakeWorker(t, map[string]string{"dl-fetch": fetch, "dl-mark": "exec cat >/dev/null"})
	w := testenv.Start(t, workerCtx(t), nil, p)
	fetchUp(t, w, marks)
	w.SignalProc(0, syscall.SIGTERM)
	testenv.Eventually(t, 30*time.Second, 10*time.Millisecond, func() bool {
		_, err := os.Stat(filepath.Join(marks, "term"))
		return err == nil
	}, "the fake dl-fetch to get the TERM passed on:\n%s", w.Stderr(0))
	scriptWaits(t, w, "the worker script to wait for its pipeline again")
	if err := os.WriteFile(filepath.Join(marks, "die"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := w.Wait(); r.Procs[0].Code != 137 {
		t.Fatalf("the worker script exited %d for dl-fetch killed by SIGKILL after a stop, want 137:\n%s", r.Procs[0].Code, r)
	}
	noneLeft(t, marks)
}

// A setpriv without --pdeathsig (util-linux before 2.33: Ubuntu 18.04,
// RHEL 8) must not keep dl-fetch from starting: the worker script tries the
// option once, runs dl-fetch without it when it fails, and says so in one
// line on stderr. A setpriv that has it runs dl-fetch (marker file
// setpriv.dl-fetch), and nothing is said.
func TestWorkerScriptSetprivWithoutPdeathsig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		setpriv string
		lines   int // saying that setpriv has no --pdeathsig
	}{
		{"util-linux before 2.33", `echo "setpriv: unrecognized option '--pdeathsig'" >&2
echo "Try 'setpriv --help' for more information." >&2
exit 1`, 1},
		{"util-linux 2.33 or later", `[ "$1" != --version ] || exit 0
[ "$1" = --pdeathsig ] && [ "$2" = TERM ] || exit 1
touch "$MARKS/setpriv.$3"; shift 2; exec "$@"`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, marks := fakeWorker(t, map[string]string{
				"dl-fetch": fakeFetchUp + "\necho result",
				"dl-mark":  recordingMark,
				"setpriv":  tc.setpriv,
			})
			r := testenv.Pipeline(t, workerCtx(t), nil, p)
			if r.Procs[0].Code != 0 {
				t.Fatalf("the worker script exited %d, want 0:\n%s", r.Procs[0].Code, r)
			}
			wantRecorded(t, marks, "result\n", r)
			if n := strings.Count(r.Procs[0].Stderr, "setpriv has no --pdeathsig"); n != tc.lines {
				t.Errorf("the worker script said %d times that setpriv has no --pdeathsig, want %d:\n%s", n, tc.lines, r)
			}
			_, err := os.Stat(filepath.Join(marks, "setpriv.dl-fetch"))
			if through := err == nil; through != (tc.lines == 0) {
				t.Errorf("dl-fetch run through setpriv: %v, want %v:\n%s", through, tc.lines == 0, r)
			}
			noneLeft(t, marks)
		})
	}
}

// A signal to the worker script reaches dl-fetch alone, whether /proc can be
// read or not (a container may have none, or hide it): dl-mark must read on
// until dl-fetch has written its last result and closed the pipe. The fake
// dl-fetch answers the TERM passed on with a last result and exits 0;
// dl-mark, had it been signalled too, would die before it (cat killed by the
// TERM), the result and the exit status lost. Without /proc, the script runs
// in a mount namespace of its own with a tmpfs on /proc (unshare, as root or
// in a user namespace of its own); the test watches from outside it.
func TestWorkerScriptSignalsDlFetchAlone(t *testing.T) {
	t.Parallel()
	const fetch = `trap 'echo last; exit 0' TERM
` + fakeFetchUp + `
while :; do sleep 0.05; done`
	for _, tc := range []struct {
		name   string
		noProc bool
	}{
		{"with /proc", false},
		{"without /proc", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, marks := fakeWorker(t, map[string]string{"dl-fetch": fetch, "dl-mark": recordingMark})
			if tc.noProc {
				p = withoutProc(t, p)
			}
			w := testenv.Start(t, workerCtx(t), nil, p)
			fetchUp(t, w, marks)
			w.SignalProc(0, syscall.SIGTERM)
			r := w.Wait()
			if r.Procs[0].Code != 0 {
				t.Fatalf("the worker script exited %d, want 0:\n%s", r.Procs[0].Code, r)
			}
			wantRecorded(t, marks, "last\n", r)
			noneLeft(t, marks)
		})
	}
}

// withoutProc runs p in a mount namespace of its own whose /proc is an
// empty tmpfs. unshare(1) needs root, or user namespaces to map the user to
// root in one.
func withoutProc(t *testing.T, p testenv.Proc) testenv.Proc {
	t.Helper()
	unshare := []string{"-m", "--propagation", "private"}
	if os.Geteuid() != 0 {
		unshare = append(unshare, "-r")
	}
	hide := func(argv ...string) []string {
		return slices.Concat(unshare, []string{"sh", "-c", `mount -t tmpfs tmpfs /proc && exec "$@"`, "sh"}, argv)
	}
	if out, err := exec.Command("unshare", hide("test", "!", "-e", "/proc/self")...).CombinedOutput(); err != nil {
		testenv.Missing(t, fmt.Sprintf("cannot hide /proc in a mount namespace (unshare %s): %v: %s", strings.Join(unshare, " "), err, out))
	}
	p.Args = hide(append([]string{p.Bin}, p.Args...)...)
	p.Bin = "unshare"
	return p
}

// A signal that reaches the worker script after its pipeline has ended, and
// bash has reaped it, must not be passed on to dl-fetch's pid: that number is
// free then, and the kernel may have given it to any process, a thread of the
// database included (a TERM to a thread's id stops its whole process: a
// MariaDB on the host shut down so). The kill function (bash calls one
// named kill for the builtin) records each target and whether it still
// exists; after passing the first TERM on it waits until dl-mark, the
// pipeline's last process, is reaped, and then sends the script a second
// TERM, which must not reach a kill.
func TestWorkerScriptSignalAfterThePipelineEndedKillsNothing(t *testing.T) {
	t.Parallel()
	const kill = `BASH_FUNC_kill%%=() { local t; for t; do :; done; ` +
		`if [ -e "/proc/$t" ]; then echo "$t live" >>"$MARKS/kills"; else echo "$t gone" >>"$MARKS/kills"; fi; ` +
		`builtin kill "$@"; [ -e "$MARKS/again" ] && return; : >"$MARKS/again"; local i=0; ` +
		`while [ -e /proc/$!/stat ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; builtin kill -TERM $$; }`
	fetch := fmt.Sprintf("trap 'exit 0' TERM\n%s\nwhile :; do sleep 0.05; done", fakeFetchUp)
	p, marks := fakeWorker(t, map[string]string{"dl-fetch": fetch, "dl-mark": "exec cat >/dev/null"}, kill)
	w := testenv.Start(t, workerCtx(t), nil, p)
	fetchUp(t, w, marks)
	scriptWaits(t, w, "the worker script to wait for its pipeline")
	w.SignalProc(0, syscall.SIGTERM)
	if r := w.Wait(); r.Procs[0].Code != 0 {
		t.Fatalf("the worker script exited %d, want 0:\n%s", r.Procs[0].Code, r)
	}
	b, err := os.ReadFile(filepath.Join(marks, "kills"))
	if err != nil || strings.Count(string(b), "\n") != 1 || !strings.HasSuffix(string(b), " live\n") {
		t.Fatalf("signals passed on (target, then live or gone):\n%s(%v); want one, to a live dl-fetch", b, err)
	}
	noneLeft(t, marks)
}
