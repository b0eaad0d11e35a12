package tool

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// ExitUsage is the exit code of a command line the tool cannot run: an
// unknown flag, a stray argument, a value out of range. Nothing has been
// done then, and nothing is written to stdout.
const ExitUsage = 2

// UsageError is a command line the tool cannot run. Run prints it as one
// line on stderr, "<prog>: <msg> (see <prog> --help)", and exits ExitUsage.
type UsageError struct {
	Prog string // the command as typed: "dl-mark requeue"
	Msg  string
}

func (e *UsageError) Error() string {
	if e.Prog == "" {
		return e.Msg
	}
	return fmt.Sprintf("%s (see %s --help)", e.Msg, e.Prog)
}

// ExitCode makes a UsageError a cli.ExitCoder.
func (e *UsageError) ExitCode() int { return ExitUsage }

// Usage returns a UsageError for the command c runs.
func Usage(c *cli.Context, format string, args ...any) error {
	return &UsageError{Prog: prog(c), Msg: fmt.Sprintf(format, args...)}
}

// ExitError ends the process with Code; Err, if not nil, is the one line
// printed for it.
type ExitError struct {
	Code int
	Err  error
}

// Exit returns an ExitError (err may be nil: nothing is printed then).
func Exit(code int, err error) error { return &ExitError{Code: code, Err: err} }

func (e *ExitError) Error() string {
	if e.Err == nil {
		return ""
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode makes an ExitError a cli.ExitCoder.
func (e *ExitError) ExitCode() int { return e.Code }

// StoppedError ends a command that a signal stopped while it waited for a
// service to start with (--wait-for-services): the stop was asked for and
// no work had begun, so Run logs one line at info level and exits 0, as
// for a stop at any other time; a unit stopped at boot, before its
// database came up, must not show "failed".
type StoppedError struct {
	Service string // what it waited for: "mysql", "redis"
	Err     error  // the last attempt's failure
}

func (e *StoppedError) Error() string {
	return fmt.Sprintf("stopped while waiting for %s: %v", e.Service, e.Err)
}

func (e *StoppedError) Unwrap() error { return e.Err }

// prog is the command c runs as the operator typed it: the tool's name and
// the subcommands' names.
func prog(c *cli.Context) string {
	var names []string
	for _, l := range c.Lineage() {
		if l.Command != nil {
			names = append(names, l.Command.Name)
		}
	}
	if len(names) == 0 {
		return c.App.Name
	}
	for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
		names[i], names[j] = names[j], names[i]
	}
	names[0] = c.App.Name
	return strings.Join(names, " ")
}

// Positive marks a duration flag whose value must be above zero (an
// interval, a lease, a timeout that has no "off"). Every other duration flag
// of a tool run by Run must not be negative.
func Positive(f *cli.DurationFlag) *cli.DurationFlag {
	f.Action = checkDuration(f, true)
	return f
}

func checkDuration(f *cli.DurationFlag, positive bool) func(*cli.Context, time.Duration) error {
	return func(c *cli.Context, d time.Duration) error {
		if d > 0 || d == 0 && !positive {
			return nil
		}
		want := "must not be negative"
		if positive {
			want = "must be positive"
		}
		return Usage(c, "%s %s (got %s)", flagName(f.Name, f.EnvVars), want, d)
	}
}

// AtLeast makes f refuse a value below least, before the command runs: a
// count of 0 or below (DL_BATCH=0, -c -3) would otherwise be taken as some
// other number or as no limit.
func AtLeast(f *cli.IntFlag, least int) *cli.IntFlag {
	f.Action = func(c *cli.Context, n int) error { return checkLeast(c, f.Name, f.EnvVars, int64(n), int64(least)) }
	return f
}

// AtLeast64 is AtLeast for an Int64Flag.
func AtLeast64(f *cli.Int64Flag, least int64) *cli.Int64Flag {
	f.Action = func(c *cli.Context, n int64) error { return checkLeast(c, f.Name, f.EnvVars, n, least) }
	return f
}

func checkLeast(c *cli.Context, name string, envs []string, n, least int64) error {
	if n >= least {
		return nil
	}
	want := fmt.Sprintf("must be at least %d", least)
	if least == 0 {
		want = "must not be negative"
	}
	return Usage(c, "%s %s (got %d)", flagName(name, envs), want, n)
}

// Valid makes f refuse, before the command runs, a value that check finds
// unusable whatever the servers say (a DSN without a database, a table name
// that is none, a URL of another scheme): trying again could not help.
func Valid(f *cli.StringFlag, check func(c *cli.Context, v string) error) *cli.StringFlag {
	f.Action = func(c *cli.Context, v string) error {
		if err := check(c, v); err != nil {
			return Usage(c, "%s: %v", flagName(f.Name, f.EnvVars), err)
		}
		return nil
	}
	return f
}

// flagName names a flag as a user may have set it: --name (ENV).
func flagName(name string, envs []string) string {
	if len(envs) == 0 {
		return "--" + name
	}
	return "--" + name + " (" + strings.Join(envs, ", ") + ")"
}

// strict makes app and its subcommands refuse what they would otherwise
// let pass or print to stdout: a usage error (unknown flag, a value that
// does not parse) becomes a UsageError instead of the help text on stdout;
// a positional argument to a command that takes none (no ArgsUsage) is one;
// so is a negative duration, or a non-positive one for a flag marked
// Positive.
func strict(app *cli.App) {
	app.OnUsageError = onUsageError
	checkFlags(app.Flags)
	app.Action = strictAction(app.Action, app.ArgsUsage, app.Commands)
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, cmd := range cmds {
			cmd.OnUsageError = onUsageError
			checkFlags(cmd.Flags)
			cmd.Action = strictAction(cmd.Action, cmd.ArgsUsage, cmd.Subcommands)
			walk(cmd.Subcommands)
		}
	}
	walk(app.Commands)
}

func onUsageError(c *cli.Context, err error, _ bool) error {
	msg := err.Error()
	// A tool's own options go before its command: say so rather than
	// send the operator to the command's help, which does not list them.
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok && c.Command != nil {
		for _, l := range c.Lineage()[1:] {
			if l.Command == nil {
				continue
			}
			for _, f := range l.Command.Flags {
				for _, n := range f.Names() {
					if n == name {
						msg += fmt.Sprintf("; it is an option of %s: give it before %s", prog(l), c.Command.Name)
					}
				}
			}
		}
	}
	return &UsageError{Prog: prog(c), Msg: msg}
}

func checkFlags(flags []cli.Flag) {
	for _, f := range flags {
		if d, ok := f.(*cli.DurationFlag); ok && d.Action == nil {
			d.Action = checkDuration(d, false)
		}
	}
}

// strictAction wraps a command's action: a command without ArgsUsage takes
// no positional arguments; one with subcommands and no action of its own
// needs one of them.
func strictAction(action cli.ActionFunc, argsUsage string, subs []*cli.Command) cli.ActionFunc {
	var names []string
	for _, s := range subs {
		if !s.Hidden {
			names = append(names, s.Name)
		}
	}
	commands := strings.Join(names, ", ")
	if action == nil && len(subs) > 0 {
		return func(c *cli.Context) error {
			if c.NArg() == 0 {
				return Usage(c, "missing command: one of %s", commands)
			}
			return Usage(c, "unknown command %q: want one of %s", c.Args().First(), commands)
		}
	}
	if action == nil || argsUsage != "" {
		return action
	}
	return func(c *cli.Context) error {
		if c.NArg() > 0 {
			if len(subs) > 0 {
				return Usage(c, "unexpected argument %q: takes options or one of the commands %s", c.Args().First(), commands)
			}
			return Usage(c, "unexpected argument %q: takes options only%s", c.Args().First(), didYouMean(c, c.Args().First()))
		}
		return action(c)
	}
}

// didYouMean names the one flag of the command that would take arg as its
// value ("404" → --error, not --older-than, which wants a unit), if there
// is exactly one.
func didYouMean(c *cli.Context, arg string) string {
	if c.Command == nil || strings.HasPrefix(arg, "-") {
		return ""
	}
	var fits []string
	for _, f := range c.Command.Flags {
		if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
			continue
		}
		ok := false
		switch f.(type) {
		case *cli.StringFlag:
			ok = true
		case *cli.DurationFlag:
			_, err := time.ParseDuration(arg)
			ok = err == nil
		case *cli.IntFlag, *cli.Int64Flag:
			_, err := strconv.ParseInt(arg, 10, 64)
			ok = err == nil
		}
		if ok {
			fits = append(fits, f.Names()[0])
		}
	}
	if len(fits) != 1 {
		return ""
	}
	return fmt.Sprintf("; did you mean --%s %s?", fits[0], arg)
}
