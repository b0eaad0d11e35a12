package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/testenv"
)

// TestStatementsRideOutInterruptions: a statement the server ends on
// purpose (a DBA's or a monitoring tool's KILL QUERY, error 1317; a
// statement time limit, MariaDB's max_statement_time, 1969) is retried,
// with a warning that names its job, and the job then goes through: each
// of dl's jobs on the table would otherwise end its tool. Here each job's
// statement waits for a table lock while it is interrupted, and goes
// through once the table is unlocked.
func TestStatementsRideOutInterruptions(t *testing.T) {
	p := store.RetryPolicy{MaxAttempts: 3, Base: time.Minute, Max: time.Hour}
	claimOpts := store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour}
	take := func(ctx context.Context, st *store.Store, tasks []record.Task) error {
		taken, err := st.Take(ctx, tasks, time.Hour, "host:1", store.NewToken())
		if err == nil && len(taken) != 3 {
			err = fmt.Errorf("took %v, want 3 tasks", taken)
		}
		return err
	}
	jobs := []struct {
		name    string
		job     string // as the warning names it
		prepare func(t *testing.T, st *store.Store, tasks []record.Task) []record.Task
		run     func(ctx context.Context, st *store.Store, tasks []record.Task) error
		want    string // the rows' id, status, deliveries after it
	}{
		{"select", "select pending rows", nil, selectDue(store.SelectOptions{}), "1|0|0;2|0|0;3|0|0"},
		{"select expired", "select expired rows", nil, selectDue(store.SelectOptions{Expired: true, Stale: time.Hour}), "1|0|0;2|0|0;3|0|0"},
		{"claim", "claim 3 rows", nil,
			func(ctx context.Context, st *store.Store, tasks []record.Task) error {
				claimed, err := st.Claim(ctx, tasks, claimOpts)
				if err == nil && len(claimed) != 3 {
					err = fmt.Errorf("claimed %v, want 3 rows", claimed)
				}
				return err
			}, "1|2|0;2|2|0;3|2|0"},
		{"take", "take 3 tasks", claim,
			take, "1|2|1;2|2|1;3|2|1"},
		{"take of the original distributor", "take 3 tasks of the original distributor", nil,
			take, "1|2|1;2|2|1;3|2|1"},
		{"renew", "renew 3 leases", claimAndTake,
			func(ctx context.Context, st *store.Store, tasks []record.Task) error {
				return st.Renew(ctx, tasks, time.Hour)
			}, "1|2|1;2|2|1;3|2|1"},
		{"renew queued", "renew 3 queue leases", claim,
			func(ctx context.Context, st *store.Store, tasks []record.Task) error {
				return st.RenewQueued(ctx, tasks, time.Hour)
			}, "1|2|0;2|2|0;3|2|0"},
		{"give back", "give back 3 tasks", claimAndTake,
			func(ctx context.Context, st *store.Store, tasks []record.Task) error {
				return st.GiveBack(ctx, tasks)
			}, "1|0|0;2|0|0;3|0|0"},
		{"mark", "mark 3 results", claimAndTake,
			func(ctx context.Context, st *store.Store, tasks []record.Task) error {
				var results []record.Result
				for _, tk := range tasks {
					results = append(results, record.Result{ID: tk.ID, Outcome: record.Done, Path: "d/" + tk.ID, Bytes: 1, HTTP: 200, Token: tk.Token})
				}
				marked, err := st.Mark(ctx, results, p)
				if err == nil && fmt.Sprint(marked) != "[done done done]" {
					err = fmt.Errorf("marked %v, want all done", marked)
				}
				return err
			}, "1|1|1;2|1|1;3|1|1"},
	}
	for _, how := range []string{"kill query", "max_statement_time"} {
		for _, tc := range jobs {
			t.Run(how+"/"+tc.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				dsn, db := testenv.MySQL(t)
				st := openAt(t, dsn)
				ensure(t, st)
				tasks := insert(t, db, 3)
				if tc.prepare != nil {
					tasks = tc.prepare(t, st, tasks)
				}
				if how == "max_statement_time" {
					// The session's own limit, through the DSN: no other
					// test's session is touched.
					st = openAt(t, testenv.WithSession(t, dsn, "max_statement_time", "0.2"))
				}
				logs := testenv.CaptureLogs(t)
				err := testenv.InterruptWhileLocked(t, db, "files", how == "kill query", logs, `job="`+tc.job+`"`,
					func() error { return tc.run(ctx, st, tasks) })
				if err != nil {
					t.Fatalf("after the interruption: %v", err)
				}
				if got := logs.String(); !strings.Contains(got, "mysql statement interrupted") {
					t.Errorf("the warning does not say the statement was interrupted:\n%s", got)
				}
				if got := dump(t, db, "id, status, deliveries"); got != tc.want {
					t.Errorf("rows %s, want %s", got, tc.want)
				}
			})
		}
	}
}

// selectDue is a job that selects with o, and wants the three rows.
func selectDue(o store.SelectOptions) func(context.Context, *store.Store, []record.Task) error {
	return func(ctx context.Context, st *store.Store, _ []record.Task) error {
		var ids []string
		err := st.SelectDue(ctx, o, func(tk record.Task) error { ids = append(ids, tk.ID); return nil })
		if err == nil && len(ids) != 3 {
			err = fmt.Errorf("selected %v, want 3 rows", ids)
		}
		return err
	}
}

func claim(t *testing.T, st *store.Store, tasks []record.Task) []record.Task {
	t.Helper()
	claimed, err := st.Claim(context.Background(), tasks, store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour})
	if err != nil || len(claimed) != len(tasks) {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	return claimed
}

// TestMarkAfterAnInterruptedCommit: a COMMIT ended by KILL QUERY while it
// waits (for a replica's acknowledgement) may have landed all the same.
// The retry of the mark finds its rows no longer held, and must tell them
// as its own writes, not as late results (their lines dropped, their
// result keys never written), nor write them again.
func TestMarkAfterAnInterruptedCommit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := store.RetryPolicy{MaxAttempts: 3, Base: time.Minute, Max: time.Hour}
	dsn, db := testenv.MySQL(t)
	proxy, via := testenv.NewMySQLProxy(t, dsn)
	st := openAt(t, via)
	ensure(t, st)
	taken := claimAndTake(t, st, insert(t, db, 3))
	results := []record.Result{
		{ID: "1", Outcome: record.Done, Path: "d/1", Bytes: 1, HTTP: 200, Attempt: 1, Token: taken[0].Token},
		{ID: "2", Outcome: record.Failed, Error: "status 404", HTTP: 404, Attempt: 1, Token: taken[1].Token},
		{ID: "3", Outcome: record.Failed, Error: "status 503", Retryable: true, HTTP: 503, Attempt: 1, Token: taken[2].Token},
	}
	const cols = "id, status, claim_token, attempts, deliveries, error_message"
	logs := testenv.CaptureLogs(t)
	proxy.InterruptCommit()
	marked, err := st.Mark(ctx, results, p)
	if err != nil || proxy.Cuts() != 1 {
		t.Fatalf("mark through an interrupted COMMIT: %v after %d interruptions; want it retried after 1", err, proxy.Cuts())
	}
	if fmt.Sprint(marked) != "[done failed retry]" {
		t.Errorf("marked %v, want [done failed retry]: the rows its own commit wrote taken for late results", marked)
	}
	if got := dump(t, db, cols); got != "1|1|<nil>|1|1|<nil>;2|-1|<nil>|1|1|status 404;3|0|<nil>|1|1|status 503" {
		t.Errorf("rows %s", got)
	}
	if !strings.Contains(logs.String(), `job="mark 3 results"`) {
		t.Errorf("no warning naming the job:\n%s", logs)
	}
	markAll(t, st, results, p, store.MarkedDuplicate, store.MarkedDuplicate, store.MarkedDuplicate)
}

// TestSelectInterruptedAfterItsFirstRowsEndsThere: a selection interrupted
// once it has given out rows cannot start again without giving them out
// twice (two claims of one row, or two downloads of it through dl-fetch -).
// It ends there, with a warning, and without an error: the rows it did not
// reach are still due, for the next round.
func TestSelectInterruptedAfterItsFirstRowsEndsThere(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, db := open(t)
	ensure(t, st)
	// More than the socket buffers hold: the server is still sending when
	// the statement is killed.
	const total = 100000
	exec(t, db, "INSERT INTO files (id, url) SELECT seq, CONCAT('http://h/', seq, '/', REPEAT('x', 300)) FROM seq_1_to_100000")
	logs := testenv.CaptureLogs(t)
	first, resume := make(chan struct{}), make(chan struct{})
	seen := map[string]int{}
	done := make(chan error, 1)
	go func() {
		done <- st.SelectDue(ctx, store.SelectOptions{}, func(tk record.Task) error {
			if len(seen) == 0 {
				close(first)
				<-resume
			}
			seen[tk.ID]++
			return nil
		})
	}()
	select {
	case <-first:
	case err := <-done:
		t.Fatalf("the selection ended before its first row: %v", err)
	}
	var id int64
	if err := db.QueryRow(`SELECT id FROM information_schema.processlist
		WHERE db = DATABASE() AND id <> CONNECTION_ID() AND info LIKE 'SELECT id, url%'`).Scan(&id); err != nil {
		t.Fatalf("the selection's statement is not running any more (it sent every row at once?): %v", err)
	}
	exec(t, db, "KILL QUERY ?", id)
	close(resume)
	if err := <-done; err != nil {
		t.Fatalf("an interrupted selection: %v", err)
	}
	for id, n := range seen {
		if n > 1 {
			t.Fatalf("row %s given out %d times", id, n)
		}
	}
	if len(seen) == total {
		t.Fatal("every row was selected: the statement ended before the kill, and the test tests nothing")
	}
	if got := logs.String(); !strings.Contains(got, "interrupted after it gave out rows") || !strings.Contains(got, `job="select pending rows"`) {
		t.Errorf("no warning for the cut selection:\n%s", got)
	}
	var pending int
	if err := db.QueryRow("SELECT COUNT(*) FROM files WHERE status = 0").Scan(&pending); err != nil || pending != total {
		t.Errorf("%d rows pending (%v), want all %d: a selection changes none", pending, err, total)
	}
}
