package tool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

func TestRunExitCodesAndOneLine(t *testing.T) {
	tests := []struct {
		name     string
		action   cli.ActionFunc
		wantCode int
		wantErr  string
	}{
		{"ok", func(*cli.Context) error { return nil }, 0, ""},
		{"error", func(*cli.Context) error { return errors.New("claim rows: boom\nsecond line") }, 1, "dl-x: claim rows: boom; second line\n"},
		{"exit code", func(*cli.Context) error { return cli.Exit("", 3) }, 3, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(&cli.App{Name: "dl-x", Action: tc.action}, []string{"dl-x"}, &stderr)
			if code != tc.wantCode || stderr.String() != tc.wantErr {
				t.Fatalf("code %d stderr %q, want %d %q", code, stderr.String(), tc.wantCode, tc.wantErr)
			}
		})
	}
}

// TestRunStoppedWhileWaiting: a command stopped while it waited for a
// service exits 0 with one info line that names the service, however the
// error reached Run; any other error still fails.
func TestRunStoppedWhileWaiting(t *testing.T) {
	refused := errors.New("redis at 127.0.0.1:1: connection refused")
	for _, tc := range []struct {
		name     string
		err      error
		wantCode int
		want     string // the one line on stderr, or its end
	}{
		{"stopped", &StoppedError{Service: "redis", Err: refused}, 0,
			`level=INFO msg="stopped while waiting for redis" tool=dl-x err="redis at 127.0.0.1:1: connection refused"`},
		{"stopped, wrapped", fmt.Errorf("open: %w", &StoppedError{Service: "mysql", Err: refused}), 0,
			`level=INFO msg="stopped while waiting for mysql" tool=dl-x err="redis at 127.0.0.1:1: connection refused"`},
		{"not stopped", refused, 1, "dl-x: redis at 127.0.0.1:1: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(&cli.App{Name: "dl-x", Action: func(*cli.Context) error { return tc.err }}, []string{"dl-x"}, &stderr)
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if code != tc.wantCode || len(lines) != 1 || !strings.HasSuffix(lines[0], tc.want) {
				t.Fatalf("code %d, stderr %q; want %d and one line ending %q", code, stderr.String(), tc.wantCode, tc.want)
			}
		})
	}
}

func TestBadLogLevel(t *testing.T) {
	var stderr bytes.Buffer
	code := run(&cli.App{Name: "dl-x", Action: func(*cli.Context) error { return nil }}, []string{"dl-x", "--log-level", "loud"}, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "--log-level") {
		t.Fatalf("code %d stderr %q", code, stderr.String())
	}
}

// captureStdout runs fn with os.Stdout going to a pipe and returns what was
// written there.
func captureStdout(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	out := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	defer func() { os.Stdout = old }()
	fn()
	w.Close()
	return <-out
}

// TestRunUsageErrors builds a small tool through the same plumbing as the
// real ones: a command line it cannot run is one line on stderr, nothing
// on stdout, exit 2, and the action never runs.
func TestRunUsageErrors(t *testing.T) {
	app := func(ran *bool) *cli.App {
		act := func(*cli.Context) error { *ran = true; return nil }
		return &cli.App{
			Name:   "dl-x",
			Flags:  []cli.Flag{&cli.DurationFlag{Name: "every", EnvVars: []string{"DL_EVERY"}}, &cli.StringFlag{Name: "name"}},
			Action: act,
			Commands: []*cli.Command{{
				Name:   "sub",
				Flags:  []cli.Flag{&cli.StringFlag{Name: "error"}, &cli.DurationFlag{Name: "older-than"}},
				Action: act,
			}},
		}
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "dl-x: flag provided but not defined: -bogus (see dl-x --help)"},
		{[]string{"--every", "soon"}, `dl-x: invalid value "soon" for flag -every: parse error (see dl-x --help)`},
		{[]string{"--every", "-1s"}, "dl-x: --every (DL_EVERY) must not be negative (got -1s) (see dl-x --help)"},
		{[]string{"stray"}, `dl-x: unexpected argument "stray": takes options or one of the commands sub (see dl-x --help)`},
		{[]string{"sub", "--bogus"}, "dl-x sub: flag provided but not defined: -bogus (see dl-x sub --help)"},
		{[]string{"sub", "--name", "n"}, "dl-x sub: flag provided but not defined: -name; it is an option of dl-x: give it before sub (see dl-x sub --help)"},
		{[]string{"sub", "404"}, `dl-x sub: unexpected argument "404": takes options only; did you mean --error 404? (see dl-x sub --help)`},
		{[]string{"sub", "--older-than", "-1h"}, "dl-x sub: --older-than must not be negative (got -1h0m0s) (see dl-x sub --help)"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			var code int
			ran := false
			stdout := captureStdout(t, func() { code = run(app(&ran), append([]string{"dl-x"}, tc.args...), &stderr) })
			if code != 2 || stdout != "" || stderr.String() != tc.want+"\n" || ran {
				t.Fatalf("code %d, action ran %v, stdout %q, stderr:\n%s\nwant code 2, no action, no stdout, stderr:\n%s", code, ran, stdout, stderr.String(), tc.want)
			}
		})
	}
	// Help is asked for: stdout, exit 0.
	var stderr bytes.Buffer
	var code int
	ran := false
	stdout := captureStdout(t, func() { code = run(app(&ran), []string{"dl-x", "sub", "--help"}, &stderr) })
	if code != 0 || stderr.Len() > 0 || !strings.Contains(stdout, "dl-x sub") || ran {
		t.Fatalf("sub --help: code %d, stderr %q, stdout:\n%s", code, stderr.String(), stdout)
	}
}

// TestRunNeedsACommand: a tool made only of subcommands refuses to run
// without one, or with one it does not have.
func TestRunNeedsACommand(t *testing.T) {
	for args, want := range map[string]string{
		"":    "dl-x: missing command: one of on, off (see dl-x --help)\n",
		"oof": `dl-x: unknown command "oof": want one of on, off (see dl-x --help)` + "\n",
	} {
		var stderr bytes.Buffer
		var code int
		app := &cli.App{Name: "dl-x", Commands: []*cli.Command{{Name: "on", Action: func(*cli.Context) error { return nil }}, {Name: "off", Action: func(*cli.Context) error { return nil }}}}
		stdout := captureStdout(t, func() { code = run(app, append([]string{"dl-x"}, strings.Fields(args)...), &stderr) })
		if code != 2 || stdout != "" || stderr.String() != want {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want 2, nothing, %q", args, code, stdout, stderr.String(), want)
		}
	}
}

// TestStopWithin: the work in flight (Hard) ends d after a stop, neither
// before the stop nor, with d 0, ever; a second signal still ends it at once.
func TestStopWithin(t *testing.T) {
	const d = 50 * time.Millisecond
	ended := func(ctx context.Context, within time.Duration) bool {
		select {
		case <-Hard(ctx).Done():
			return true
		case <-time.After(within):
			return false
		}
	}
	newSignals := func() (ctx context.Context, stop, abort func()) {
		hard, abort := context.WithCancel(context.Background())
		soft, stop := context.WithCancel(WithHard(hard, hard))
		t.Cleanup(abort)
		return soft, stop, abort
	}

	soft, stop, _ := newSignals()
	ctx, cancel := StopWithin(soft, d)
	defer cancel()
	if ended(ctx, 4*d) {
		t.Fatal("the work in flight ended with no stop")
	}
	stop()
	if !ended(ctx, 10*time.Second) {
		t.Fatal("the work in flight did not end after the stop timeout")
	}

	soft, stop, _ = newSignals()
	ctx, cancel = StopWithin(soft, 0)
	defer cancel()
	stop()
	if ended(ctx, 4*d) {
		t.Fatal("the work in flight ended with a stop timeout of 0")
	}

	soft, stop, abort := newSignals()
	ctx, cancel = StopWithin(soft, time.Hour)
	defer cancel()
	stop()
	abort()
	if !ended(ctx, 10*time.Second) {
		t.Fatal("a second signal did not end the work in flight")
	}
}
