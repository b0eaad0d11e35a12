// Package tool runs one dl command: it wires signals to contexts, sets up the
// stderr logger, and turns the command's error into one line and an exit code.
// Only main calls os.Exit, with the code Run returns.
package tool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

// Version and Commit are set at build time with -ldflags -X.
var (
	Version = "dev"
	Commit  = "unknown"
)

type hardKey struct{}

// Hard returns the context that is cancelled only by a second SIGINT/SIGTERM:
// work in flight runs under it, so a first signal stops taking new work (the
// command's own context) and lets the current work finish.
func Hard(ctx context.Context) context.Context {
	if h, ok := ctx.Value(hardKey{}).(context.Context); ok {
		return h
	}
	return ctx
}

// WithHard returns soft carrying hard as its Hard context; soft must be
// derived from hard (so aborting stops everything).
func WithHard(soft, hard context.Context) context.Context {
	return context.WithValue(soft, hardKey{}, hard)
}

// StopWithin bounds a stop: d after ctx is done (a first signal), the Hard
// context of the returned one ends too, as on a second signal, so that work
// in flight is abandoned instead of waited for without end; a supervisor
// that would otherwise kill the process (systemd after TimeoutStopSec) then
// never has to. d <= 0 waits for ever. cancel releases the timer.
func StopWithin(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	hard, abandon := context.WithCancel(Hard(ctx))
	stopWatch := context.AfterFunc(ctx, func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			slog.Warn("stop timeout: abandoning work in flight", "after", d)
			abandon()
		case <-hard.Done(): // a second signal, or cancel
		}
	})
	// ctx is not derived from the new hard, as WithHard wants, but it is
	// done before the timer can end hard, which is what that asks for.
	return WithHard(ctx, hard), func() { stopWatch(); abandon() }
}

// Run runs app with the process's arguments and returns the exit code.
func Run(app *cli.App) int {
	return run(app, os.Args, os.Stderr)
}

func run(app *cli.App, args []string, stderr io.Writer) int {
	hard, abort := context.WithCancel(context.Background())
	defer abort()
	soft, stop := context.WithCancel(WithHard(hard, hard))
	defer stop()

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	go func() {
		n := 0
		for {
			select {
			case <-done:
				return
			case s := <-sigs:
				n++
				if n == 1 {
					slog.Info("stopping: finishing work in flight (signal again to abandon it)", "signal", s.String())
					stop()
				} else {
					slog.Warn("abandoning work in flight", "signal", s.String())
					abort()
					return
				}
			}
		}
	}()

	app.Version = version()
	app.Writer = os.Stdout // --help and --version only: usage errors go to stderr as one line
	app.ErrWriter = stderr
	app.Flags = append(app.Flags, &cli.StringFlag{Name: "log-level", EnvVars: []string{"DL_LOG_LEVEL"}, Value: "info",
		Usage: "log `level`: debug, info, warn, error"})
	if code, ok := generateDocs(app, args, app.Writer, stderr); ok {
		return code
	}
	before := app.Before
	app.Before = func(c *cli.Context) error {
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(c.String("log-level"))); err != nil {
			return Usage(c, "--log-level: %v", err)
		}
		slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})).With("tool", app.Name))
		if before != nil {
			return before(c)
		}
		return nil
	}
	app.ExitErrHandler = func(*cli.Context, error) {} // we print and exit ourselves
	strict(app)
	err := app.RunContext(soft, args)
	var stopped *StoppedError
	if errors.As(err, &stopped) {
		slog.Info("stopped while waiting for "+stopped.Service, "err", stopped.Err)
		err = nil
	}
	if err == nil {
		return 0
	}
	code := 1
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	prog := app.Name
	var ue *UsageError
	if errors.As(err, &ue) && ue.Prog != "" {
		prog = ue.Prog
	}
	if msg := strings.TrimSpace(err.Error()); msg != "" {
		fmt.Fprintf(stderr, "%s: %s\n", prog, oneLine(msg))
	}
	return code
}

// oneLine keeps an error to the one line the operator reads.
func oneLine(s string) string {
	return strings.ReplaceAll(s, "\n", "; ")
}

// version is Version and Commit as set at build time; a plain go build
// leaves them unset, and then the commit Go recorded is used.
func version() string {
	v, c := Version, Commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && c == "unknown" {
				c = s.Value
			}
		}
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return fmt.Sprintf("%s (commit %s)", v, c)
}
