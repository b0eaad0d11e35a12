package worker

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/fetch"
	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/testenv"
	"github.com/dlkit/dl/internal/tool"
)

// TestExitFlagSeenWhileEveryTransferIsBusy: the exit flag is looked at every
// poll even while every transfer is busy (long downloads). A task taken but
// still waiting for a transfer when the flag is set goes back to pending
// instead of starting once the transfer in flight is done: before, the flag
// was read only when a transfer became idle, and that task was downloaded
// after it, so dl-flag set waited for one more download per worker.
func TestExitFlagSeenWhileEveryTransferIsBusy(t *testing.T) {
	ctx := context.Background()
	db, st, q := openQueue(ctx, t)

	origin := newGatedOrigin(t, func(int) int { return http.StatusOK })
	var tasks []record.Task
	for _, id := range []string{"a", "b", "c"} {
		if _, err := db.Exec("INSERT INTO files (id, url) VALUES (?, ?)", id, origin.URL+"/"+id); err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, record.Task{ID: id, URL: origin.URL + "/" + id})
	}
	claimed, err := st.Claim(ctx, tasks, store.ClaimOptions{QueueLease: time.Minute, Stale: time.Minute})
	if err != nil || len(claimed) != len(tasks) {
		t.Fatalf("claimed %d of %d: %v", len(claimed), len(tasks), err)
	}
	if err := q.Push(ctx, claimed); err != nil {
		t.Fatal(err)
	}

	in := make(entered, 4)
	f, err := fetch.New(fetch.Options{Dir: t.TempDir(), Transfers: 1, Observer: in})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, done := runQueue(f, st, q, QueueOptions{Options: Options{Concurrency: 1, Finishing: 1}, Mode: Forever, Lease: time.Minute, Worker: "w", Poll: 50 * time.Millisecond})
	// One task at the origin, the others taken (one of them in Fetch,
	// waiting for the transfer, which the observer does not see).
	first := strings.TrimPrefix(receive(t, origin.arrived, "request"), "/")
	receive(t, in, "task started")
	for deadline := time.Now().Add(within); ; time.Sleep(10 * time.Millisecond) {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM files WHERE status = 2 AND worker IS NOT NULL").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == len(tasks) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d tasks taken within %s", n, len(tasks), within)
		}
	}
	if err := q.SetExitFlag(ctx, true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // twenty polls
	close(origin.gate)
	if err := receive(t, done, "end of the run"); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := origin.requests(); len(got) != 1 {
		t.Errorf("origin saw %v; want only the transfer in flight when the flag was set", got)
	}
	if s := out.String(); strings.Count(s, "\n") != 1 || !strings.Contains(s, `"id":"`+first+`"`) {
		t.Errorf("results %q; want one, for %s", s, first)
	}
	var taken int
	if err := db.QueryRow("SELECT COUNT(*) FROM files WHERE status = 2 AND worker IS NOT NULL AND id <> ?", first).Scan(&taken); err != nil {
		t.Fatal(err)
	}
	if taken != 0 {
		t.Errorf("%d rows besides %s still taken by the stopped worker", taken, first)
	}
	if len(in) != 0 {
		t.Errorf("the observer saw a task given back start: %q", <-in)
	}
}

// runQueue runs RunQueue in the background under a command's contexts that
// no signal cancels; done says how it ended.
func runQueue(f Fetcher, st *store.Store, q *queue.Queue, o QueueOptions) (out *testenv.SyncBuffer, done chan error) {
	out = new(testenv.SyncBuffer)
	done = make(chan error, 1)
	go func() {
		hard := context.Background()
		done <- RunQueue(tool.WithHard(hard, hard), f, st, q, o, out)
	}()
	return out, done
}

// openQueue gives a test a table of its own (ensured) in a fresh database
// and a queue under its own Redis keys; all are closed and removed with t.
func openQueue(ctx context.Context, t *testing.T) (*sql.DB, *store.Store, *queue.Queue) {
	t.Helper()
	return openQueueWith(ctx, t)
}

// openQueueWith is openQueue with session variables (name, value...) on
// the store's connections (testenv.WithSession).
func openQueueWith(ctx context.Context, t *testing.T, session ...string) (*sql.DB, *store.Store, *queue.Queue) {
	t.Helper()
	dsn, db := testenv.MySQL(t)
	st, err := store.Open(ctx, testenv.WithSession(t, dsn, session...), "files")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	redisURL, prefix, _ := testenv.Redis(t)
	q, err := queue.Open(ctx, redisURL, queue.NewKeys(prefix+"download_queue", prefix+"download_"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return db, st, q
}

// TestStopDuringATakeRetryIsNoFailure: a stop that abandons the work in
// flight (a second signal, or --stop-timeout after the exit flag) while a
// take waits between its tries is a stop asked for, and the run ends
// without error, as on any other such stop. Here a statement time limit
// ends every try of the take, the table being locked. The run used to end
// with the take's last error (dl-fetch exiting 1 with it): the retry gave
// that back, not the stop, and with tries now unbounded a stop most often
// comes in a wait between them.
func TestStopDuringATakeRetryIsNoFailure(t *testing.T) {
	for _, how := range []string{"second signal", "exit flag"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			db, st, q := openQueueWith(ctx, t, "max_statement_time", "0.2")
			task := record.Task{ID: "a", URL: "http://127.0.0.1:1/a"}
			if _, err := db.Exec("INSERT INTO files (id, url) VALUES (?, ?)", task.ID, task.URL); err != nil {
				t.Fatal(err)
			}
			claimed, err := st.Claim(ctx, []record.Task{task}, store.ClaimOptions{QueueLease: time.Minute, Stale: time.Minute})
			if err != nil || len(claimed) != 1 {
				t.Fatalf("claimed %v: %v", claimed, err)
			}
			if err := q.Push(ctx, claimed); err != nil {
				t.Fatal(err)
			}
			logs := testenv.CaptureLogs(t)
			testenv.LockTable(t, db, "files")

			hard, abort := context.WithCancel(ctx)
			defer abort()
			soft, stop := context.WithCancel(tool.WithHard(hard, hard))
			defer stop()
			done := make(chan error, 1)
			go func() {
				done <- RunQueue(soft, &countingFetcher{}, st, q, QueueOptions{Options: Options{Concurrency: 1, StopTimeout: time.Millisecond},
					Mode: Forever, Lease: time.Minute, Worker: "w", Poll: 10 * time.Millisecond}, new(testenv.SyncBuffer))
			}()
			// The waits between tries double: from the seventh on they
			// last 160 ms at least, and the stop comes in one.
			testenv.Eventually(t, time.Minute, time.Millisecond, func() bool {
				return strings.Count(logs.String(), `job="take 1 tasks"`) >= 7
			}, "seven interrupted tries of the take")
			switch how {
			case "second signal":
				stop()
				abort()
			case "exit flag":
				if err := q.SetExitFlag(ctx, true); err != nil {
					t.Fatal(err)
				}
			}
			if err := receive(t, done, "end of the run"); err != nil {
				t.Errorf("run: %v; want nil, for a stop asked for", err)
			}
		})
	}
}
