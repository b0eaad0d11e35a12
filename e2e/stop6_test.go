package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/testenv"
)

// --stop-timeout bounds every stop, a first SIGTERM's as systemctl stop sends
// it and the exit flag's: a worker whose download does not end within it
// abandons the download and exits 0 at once, its row pending again with the
// delivery not counted, so that systemd never has to kill it, a row cut by
// deploys never fails as poison, and a flagged fleet never waits for ever on
// one origin that trickles a byte at a time (never slow enough for the stall
// timeout), in any mode: a worker in --mode once has no feed left to stop
// when the flag is set, only its transfer.
func TestStopTimeoutBoundsEveryStop(t *testing.T) {
	t.Parallel()
	sigterm := func(t *testing.T, e *env, w *testenv.Running) { w.SignalProc(0, syscall.SIGTERM) }
	flag := func(t *testing.T, e *env, w *testenv.Running) {
		if _, stderr, err := testenv.Run(t, bg, e.tool("dl-flag"), e.vars, nil, "set"); err != nil {
			t.Fatalf("dl-flag set: %v %s", err, stderr)
		}
	}
	for _, tc := range []struct {
		name  string
		mode  string
		knob  string // keeps the download from ever ending
		stop  func(t *testing.T, e *env, w *testenv.Running)
		stops string // the stop's own line in dl-fetch's log
	}{
		{"SIGTERM", "forever", "delay=1h", sigterm, "stopping: finishing work in flight"},
		{"exit flag", "forever", "trickle=10ms", flag, "exit flag is set"},
		{"exit flag once", "once", "trickle=10ms", flag, "exit flag is set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.insert([]file{{id: "1", name: "big.iso", size: 1000, knobs: []string{tc.knob}}})
			if r := testenv.Pipeline(t, bg, nil, e.fastProc("dl-select"), e.fastProc("dl-enqueue")); !r.OK() {
				t.Fatalf("enqueue:\n%s", r)
			}
			// Wait fails the test past this: an unbounded stop never ends.
			ctx, cancel := context.WithTimeout(bg, 45*time.Second)
			defer cancel()
			w := testenv.Start(t, ctx, nil, e.fastProc("dl-fetch", "--mode", tc.mode, "--stop-timeout", "500ms"), e.fastProc("dl-mark"))
			testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, func() bool { return e.inFlight("big.iso") }, "the download under way")
			tc.stop(t, e, w)
			begin := time.Now()
			r := w.Wait()
			if log := r.Procs[0].Stderr; !r.OK() || !strings.Contains(log, tc.stops) || !strings.Contains(log, "stop timeout") {
				t.Fatalf("the worker did not exit 0 by the stop timeout:\n%s", r)
			}
			if took := time.Since(begin); took > 20*time.Second {
				t.Errorf("the worker took %s to stop with --stop-timeout 500ms", took)
			}
			var status, attempts, deliveries int
			if err := e.db.QueryRow("SELECT status, attempts, deliveries FROM files WHERE id = '1'").Scan(&status, &attempts, &deliveries); err != nil {
				t.Fatal(err)
			}
			if status != 0 || attempts != 0 || deliveries != 0 {
				t.Errorf("row: status %d, attempts %d, deliveries %d; want pending again at once, nothing counted", status, attempts, deliveries)
			}
		})
	}
}
