package tool_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dlkit/dl/internal/testenv"
)

// unreachable points every tool away from any real MySQL and Redis, so a
// command line that is wrongly accepted fails on the connection (exit 1)
// instead of doing something to a database.
var unreachable = []string{"DL_MYSQL_DSN=root@tcp(127.0.0.1:1)/none", "DL_REDIS_URL=redis://127.0.0.1:1/0"}

// TestUsageErrors runs each tool with a command line it cannot run: it must
// write nothing to stdout (which is a pipe to the next tool), one line on
// stderr naming the problem, and exit 2, before touching MySQL or Redis.
func TestUsageErrors(t *testing.T) {
	bin := testenv.Binaries(t)
	tests := []struct {
		tool string
		env  []string
		args []string
		want string // the whole line on stderr
	}{
		// Unknown flags, at the top and in a subcommand.
		{"dl-select", nil, []string{"--bogus"}, "dl-select: flag provided but not defined: -bogus (see dl-select --help)"},
		{"dl-enqueue", nil, []string{"--bogus"}, "dl-enqueue: flag provided but not defined: -bogus (see dl-enqueue --help)"},
		{"dl-mark", nil, []string{"requeue", "--bogus"}, "dl-mark requeue: flag provided but not defined: -bogus (see dl-mark requeue --help)"},
		{"dl-flag", nil, []string{"set", "--bogus"}, "dl-flag set: flag provided but not defined: -bogus (see dl-flag set --help)"},
		{"dl-flag", nil, []string{"status", "--redis", "redis://h:6379/0"},
			"dl-flag status: flag provided but not defined: -redis; it is an option of dl-flag: give it before status (see dl-flag status --help)"},
		// Values that do not parse, from a flag or the environment.
		{"dl-select", []string{"DL_LIMIT=abc"}, nil, `dl-select: could not parse "abc" as int value from environment variable "DL_LIMIT" for flag limit: strconv.ParseInt: parsing "abc": invalid syntax (see dl-select --help)`},
		{"dl-select", nil, []string{"--log-level", "loud"}, `dl-select: --log-level: slog: level string "loud": unknown name (see dl-select --help)`},
		// Stray positional arguments.
		{"dl-select", nil, []string{"stray"}, `dl-select: unexpected argument "stray": takes options only (see dl-select --help)`},
		{"dl-stat", nil, []string{"stray"}, `dl-stat: unexpected argument "stray": takes options only (see dl-stat --help)`},
		{"dl-enqueue", nil, []string{"tasks.jsonl"}, `dl-enqueue: unexpected argument "tasks.jsonl": takes options only (see dl-enqueue --help)`},
		{"dl-mark", nil, []string{"results.jsonl"}, `dl-mark: unexpected argument "results.jsonl": takes options or one of the commands requeue (see dl-mark --help)`},
		{"dl-mark", nil, []string{"requeue", "404"}, `dl-mark requeue: unexpected argument "404": takes options only; did you mean --error 404? (see dl-mark requeue --help)`},
		{"dl-mark", nil, []string{"requeue", "1h"}, `dl-mark requeue: unexpected argument "1h": takes options only (see dl-mark requeue --help)`},
		{"dl-flag", nil, []string{"status", "now"}, `dl-flag status: unexpected argument "now": takes options only (see dl-flag status --help)`},
		{"dl-flag", nil, []string{"bogus"}, `dl-flag: unknown command "bogus": want one of set, clear, status (see dl-flag --help)`},
		{"dl-flag", nil, nil, `dl-flag: missing command: one of set, clear, status (see dl-flag --help)`},
		// Durations that must be positive, or not negative.
		{"dl-fetch", nil, []string{"--lease", "0"}, "dl-fetch: --lease (DL_LEASE) must be positive (got 0s) (see dl-fetch --help)"},
		{"dl-fetch", []string{"DL_LEASE=-1m"}, nil, "dl-fetch: --lease (DL_LEASE) must be positive (got -1m0s) (see dl-fetch --help)"},
		{"dl-select", []string{"DL_QUEUE_LEASE=0s"}, nil, "dl-select: --queue-lease (DL_QUEUE_LEASE) must be positive (got 0s) (see dl-select --help)"},
		{"dl-enqueue", nil, []string{"--queue-lease", "0"}, "dl-enqueue: --queue-lease (DL_QUEUE_LEASE) must be positive (got 0s) (see dl-enqueue --help)"},
		{"dl-fetch", []string{"DL_POLL=0"}, nil, "dl-fetch: --poll (DL_POLL) must be positive (got 0s) (see dl-fetch --help)"},
		{"dl-fetch", nil, []string{"--stall-timeout", "0", "-"}, "dl-fetch: --stall-timeout (DL_STALL_TIMEOUT) must be positive (got 0s) (see dl-fetch --help)"},
		{"dl-fetch", nil, []string{"--connect-timeout", "0", "-"}, "dl-fetch: --connect-timeout (DL_CONNECT_TIMEOUT) must be positive (got 0s) (see dl-fetch --help)"},
		{"dl-fetch", nil, []string{"--max-time", "-1s", "-"}, "dl-fetch: --max-time (DL_MAX_TIME) must not be negative (got -1s) (see dl-fetch --help)"},
		{"dl-fetch", []string{"DL_STATS_EVERY=-1s"}, []string{"-"}, "dl-fetch: --stats-every (DL_STATS_EVERY) must not be negative (got -1s) (see dl-fetch --help)"},
		{"dl-mark", nil, []string{"--linger", "-1ms"}, "dl-mark: --linger (DL_MARK_LINGER) must not be negative (got -1ms) (see dl-mark --help)"},
		{"dl-mark", nil, []string{"requeue", "--older-than", "-1h"}, "dl-mark requeue: --older-than must not be negative (got -1h0m0s) (see dl-mark requeue --help)"},
		{"dl-stat", nil, []string{"--window", "0"}, "dl-stat: --window (DL_STAT_WINDOW) must be positive (got 0s) (see dl-stat --help)"},
		{"dl-stat", []string{"DL_STAT_WINDOW=0s"}, nil, "dl-stat: --window (DL_STAT_WINDOW) must be positive (got 0s) (see dl-stat --help)"},
		{"dl-stat", nil, []string{"--watch", "-2s"}, "dl-stat: --watch (DL_STAT_WATCH) must not be negative (got -2s) (see dl-stat --help)"},
		{"dl-stat", []string{"DL_STAT_WATCH=-2s"}, nil, "dl-stat: --watch (DL_STAT_WATCH) must not be negative (got -2s) (see dl-stat --help)"},
		// Values checked by the command itself.
		{"dl-select", nil, []string{"--limit", "-5"}, "dl-select: --limit (DL_LIMIT) must not be negative (got -5) (see dl-select --help)"},
		{"dl-select", []string{"DL_LIMIT=-1"}, nil, "dl-select: --limit (DL_LIMIT) must not be negative (got -1) (see dl-select --help)"},
		{"dl-enqueue", []string{"DL_BATCH=0"}, nil, "dl-enqueue: --batch (DL_BATCH) must be at least 1 (got 0) (see dl-enqueue --help)"},
		{"dl-enqueue", nil, []string{"--renew-max", "-1"}, "dl-enqueue: --renew-max (DL_RENEW_MAX) must not be negative (got -1) (see dl-enqueue --help)"},
		{"dl-mark", nil, []string{"--max-attempts", "0"}, "dl-mark: --max-attempts (DL_MAX_ATTEMPTS) must be at least 1 (got 0) (see dl-mark --help)"},
		{"dl-fetch", nil, []string{"-c", "-3", "-"}, "dl-fetch: --concurrency (DL_CONCURRENCY) must be at least 1 (got -3) (see dl-fetch --help)"},
		{"dl-fetch", []string{"DL_MAX_REDIRECTS=-1"}, []string{"-"}, "dl-fetch: --max-redirects (DL_MAX_REDIRECTS) must not be negative (got -1) (see dl-fetch --help)"},
		{"dl-stat", nil, []string{"--errors", "-1"}, "dl-stat: --errors (DL_STAT_ERRORS) must not be negative (got -1) (see dl-stat --help)"},
		{"dl-stat", []string{"DL_STAT_ERRORS=-1"}, nil, "dl-stat: --errors (DL_STAT_ERRORS) must not be negative (got -1) (see dl-stat --help)"},
		{"dl-fetch", nil, []string{"--layout", "deep", "-"}, `dl-fetch: --layout: unknown layout "deep" (want sharded or flat) (see dl-fetch --help)`},
		{"dl-stat", nil, []string{"--json", "--prometheus"}, "dl-stat: --json and --prometheus: choose one (see dl-stat --help)"},
		{"dl-stat", []string{"DL_STAT_JSON=true", "DL_STAT_PROMETHEUS=true"}, nil, "dl-stat: --json and --prometheus: choose one (see dl-stat --help)"},
	}
	for _, tc := range tests {
		t.Run(tc.tool+" "+strings.Join(append(append([]string{}, tc.env...), tc.args...), " "), func(t *testing.T) {
			t.Parallel()
			stdout, stderr, err := testenv.Run(t, context.Background(), filepath.Join(bin, tc.tool), append(tc.env, unreachable...), strings.NewReader(""), tc.args...)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Errorf("exit: %v, want exit status 2", err)
			}
			if stdout != "" {
				t.Errorf("stdout, want nothing:\n%s", stdout)
			}
			if stderr != tc.want+"\n" {
				t.Errorf("stderr:\n%s\nwant the one line\n%s", stderr, tc.want)
			}
		})
	}
}

// TestHelpStillOnStdout: asking for help is no error: the help goes to
// stdout and the tool exits 0.
func TestHelpStillOnStdout(t *testing.T) {
	bin := testenv.Binaries(t)
	for _, args := range [][]string{
		{"dl-select", "--help"}, {"dl-fetch", "-h"}, {"dl-mark", "requeue", "--help"}, {"dl-flag", "help"}, {"dl-flag", "status", "--help"}, {"dl-stat", "--version"},
	} {
		stdout, stderr, err := testenv.Run(t, context.Background(), filepath.Join(bin, args[0]), unreachable, nil, args[1:]...)
		if err != nil || stderr != "" || !strings.Contains(stdout, args[0]) {
			t.Errorf("%v: %v, stderr %q, stdout:\n%s", args, err, stderr, stdout)
		}
	}
}
