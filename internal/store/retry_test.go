package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-sql-driver/mysql"

	"github.com/dlkit/dl/internal/testenv"
)

// TestRetryTransient: conflicts (deadlocks, lock wait timeouts) and
// interruptions (KILL QUERY, a statement time limit) are retried for as
// long as they last, not given up after ten in a row: a tool that ends on
// them stops a pipeline run by hand, and under systemd is restarted until
// its start limit leaves it failed. Each interruption is logged with the
// job, conflicts only once they persist; any other error ends the job at
// once, and so does the end of its context.
func TestRetryTransient(t *testing.T) {
	mysqlErr := func(n uint16) error {
		return fmt.Errorf("claim 3 rows: %w", &mysql.MySQLError{Number: n, Message: "message"})
	}
	other := mysqlErr(1146) // no such table
	for _, tc := range []struct {
		name      string
		errs      []error // what the tries return, then nil
		cancel    bool    // the context ends after the first try
		wantErr   error
		wantTries int
		wantLogs  int // warnings naming the job
	}{
		{"deadlocks beyond ten", repeat(mysqlErr(1213), 11), false, nil, 12, 1},
		{"a lock wait timeout", repeat(mysqlErr(1205), 1), false, nil, 2, 0},
		{"kill query", repeat(mysqlErr(1317), 2), false, nil, 3, 2},
		{"max_statement_time", repeat(mysqlErr(1969), 1), false, nil, 2, 1},
		{"max_execution_time", repeat(mysqlErr(3024), 1), false, nil, 2, 1},
		{"another error", []error{other}, false, other, 1, 0},
		// The stop's error, so that a stop asked for is told from a
		// failure, with the last try's for the log.
		{"context ended", repeat(mysqlErr(1317), 5), true,
			fmt.Errorf("%w (while retrying: %w)", context.Canceled, mysqlErr(1317)), 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			logs := testenv.CaptureLogs(t)
			tries := 0
			err := (&Store{}).retryTransient(ctx, "claim 3 rows", func() error {
				tries++
				if tc.cancel {
					cancel()
				}
				if tries <= len(tc.errs) {
					return tc.errs[tries-1]
				}
				return nil
			})
			if fmt.Sprint(err) != fmt.Sprint(tc.wantErr) {
				t.Fatalf("after %d tries: %v, want %v", tries, err, tc.wantErr)
			}
			if tc.cancel && !errors.Is(err, context.Canceled) {
				t.Errorf("%v is not the context's end: a stop would be taken for a failure", err)
			}
			if tries != tc.wantTries {
				t.Errorf("%d tries, want %d", tries, tc.wantTries)
			}
			if got := strings.Count(logs.String(), `job="claim 3 rows"`); got != tc.wantLogs {
				t.Errorf("%d warnings naming the job, want %d:\n%s", got, tc.wantLogs, logs)
			}
		})
	}
}

func repeat(err error, n int) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// TestRetryWaitsGrowAndAreBounded: the pause between tries doubles, so a
// conflict that lasts costs the server little, and stays short enough
// that a job goes on soon after it clears; it never stops the tries.
func TestRetryWaitsGrowAndAreBounded(t *testing.T) {
	for range 20 {
		waits := retryWaits()
		for i, want := range []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1280, 1280, 1280} {
			want *= time.Millisecond
			if got := waits.NextBackOff(); got < want/2 || got > want*3/2 {
				t.Fatalf("wait %d = %v, want within [%v, %v]", i, got, want/2, want*3/2)
			}
		}
		for range 1000 {
			if got := waits.NextBackOff(); got == backoff.Stop || got > 1920*time.Millisecond {
				t.Fatalf("a later wait = %v: stopped or unbounded", got)
			}
		}
	}
}
