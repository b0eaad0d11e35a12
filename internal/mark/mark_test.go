package mark_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/mark"
	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/testenv"
)

// TestRunRecordsEvenWhileRedisIsAway: rows are committed and lines echoed
// whatever the state of Redis; result keys are written when it is up.
func TestRunRecordsEvenWhileRedisIsAway(t *testing.T) {
	ctx := context.Background()
	redisURL, stopRedis, _ := testenv.StartRedisServer(t)
	st, q, db := open(t, redisURL, queue.NewKeys("download_queue", "download_"))
	if _, err := db.Exec("INSERT INTO files (id, url) VALUES ('1', 'http://h/1'), ('2', 'http://h/2'), ('3', 'http://h/3')"); err != nil {
		t.Fatal(err)
	}
	o := mark.Options{Batch: 10, Retry: store.RetryPolicy{MaxAttempts: 3, Base: time.Second, Max: time.Minute}}
	run := func(in string) (string, error) {
		var out bytes.Buffer
		err := mark.Run(ctx, st, q, o, strings.NewReader(in), &out)
		return out.String(), err
	}

	out, err := run(`{"id":"1","url":"http://h/1","outcome":"done","path":"d/1","bytes":3,"sha256":"` + strings.Repeat("ab", 32) + `"}` + "\n" +
		"not json\n" +
		`{"id":"2","url":"http://h/2","outcome":"failed","error":"status 404","http_status":404,"attempt":1}` + "\n")
	if err == nil || !strings.Contains(err.Error(), "1 bad result lines skipped") {
		t.Fatalf("err %v, want the bad line counted", err)
	}
	if strings.Count(out, "\n") != 2 {
		t.Fatalf("echoed %q, want the two good lines", out)
	}
	if n, _ := q.Client().Exists(ctx, "download_result:1", "download_result:2").Result(); n != 2 {
		t.Fatalf("%d result keys, want 2", n)
	}

	stopRedis()
	out, err = run(`{"id":"3","url":"http://h/3","outcome":"done","path":"d/3","bytes":1,"sha256":"` + strings.Repeat("cd", 32) + `"}` + "\n")
	if err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("with Redis away: err %v, echoed %q", err, out)
	}
	wantStatuses(t, db, "1,-1,1")
}

// TestRunRecordsWhileRedisIsFull: a Redis at its maxmemory (noeviction, the
// policy when none is set) refuses the result keys with OOM, as it refuses
// any write. The keys are a courtesy copy: dl-mark records the rows and goes
// on, instead of exiting and taking its worker down with it.
func TestRunRecordsWhileRedisIsFull(t *testing.T) {
	ctx := context.Background()
	redisURL, _, _ := testenv.StartRedisServer(t)
	st, q, db := open(t, redisURL, queue.NewKeys("download_queue", "download_"))
	if err := q.Client().ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO files (id, url) VALUES ('1', 'http://h/1')"); err != nil {
		t.Fatal(err)
	}
	o := mark.Options{Batch: 10, Retry: store.RetryPolicy{MaxAttempts: 3, Base: time.Second, Max: time.Minute}}
	var out bytes.Buffer
	in := `{"id":"1","url":"http://h/1","outcome":"done","path":"d/1","bytes":3,"sha256":"` + strings.Repeat("ab", 32) + `"}` + "\n"
	if err := mark.Run(ctx, st, q, o, strings.NewReader(in), &out); err != nil || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("with Redis full: err %v, echoed %q", err, out.String())
	}
	var status int
	if err := db.QueryRow("SELECT status FROM files WHERE id = '1'").Scan(&status); err != nil || status != 1 {
		t.Fatalf("status %d (%v), want 1", status, err)
	}
}

// TestRunEchoesOnlyWhatItRecorded: dl-mark's output is the results it
// recorded, so that counting its done lines counts done rows: a second
// result for a row (a late worker's, the same line twice), one for a row
// already finished and one for an id not in the table are logged and
// dropped, in whatever order they come.
func TestRunEchoesOnlyWhatItRecorded(t *testing.T) {
	ctx := context.Background()
	redisURL, _, _ := testenv.StartRedisServer(t)
	st, q, db := open(t, redisURL, queue.NewKeys("download_queue", "download_"))
	if _, err := db.Exec(`INSERT INTO files (id, url, status) VALUES ('1', 'http://h/1', 0), ('2', 'http://h/2', 0),
		('3', 'http://h/3', 1), ('4', 'http://h/4', -1)`); err != nil {
		t.Fatal(err)
	}
	done := func(id string) string {
		return `{"id":"` + id + `","url":"http://h/` + id + `","outcome":"done","path":"d/` + id + `","bytes":1}` + "\n"
	}
	failed := `{"id":"2","url":"http://h/2","outcome":"failed","error":"status 404","http_status":404,"attempt":1}` + "\n"
	tests := []struct {
		name, in string
		want     []string // ids echoed, in order
	}{
		{"twice in one batch", done("1") + done("1"), []string{"1"}},
		{"again later", done("1"), nil},
		{"failed, then a late done", failed + done("2"), []string{"2"}},
		{"rows already done or failed", done("3") + done("4"), nil},
		{"not in the table", done("5"), nil},
	}
	o := mark.Options{Batch: 10, Retry: store.RetryPolicy{MaxAttempts: 3, Base: time.Second, Max: time.Minute}}
	for _, tc := range tests {
		var out bytes.Buffer
		if err := mark.Run(ctx, st, q, o, strings.NewReader(tc.in), &out); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if l != "" {
				got = append(got, l[strings.Index(l, `"id":"`)+6:][:1])
			}
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: echoed ids %v, want %v", tc.name, got, tc.want)
		}
	}
	wantStatuses(t, db, "1,-1,1,-1")
}

// TestRunAfterACommitWithoutAnswer: when MySQL's answer to a COMMIT is lost
// (the connection drops after the server committed), dl-mark retries the
// batch and finds the rows already marked: by itself, not by another
// worker. It echoes the lines and writes their result keys as recorded,
// and logs no "late result".
func TestRunAfterACommitWithoutAnswer(t *testing.T) {
	ctx := context.Background()
	redisURL, _, _ := testenv.StartRedisServer(t)
	var proxy *testenv.MySQLProxy
	st, q, db := openWith(t, redisURL, queue.NewKeys("download_queue", "download_"), func(dsn string) string {
		p, via := testenv.NewMySQLProxy(t, dsn)
		proxy = p
		return via
	})
	if _, err := db.Exec("INSERT INTO files (id, url) VALUES ('1', 'http://h/1'), ('2', 'http://h/2'), ('3', 'http://h/3')"); err != nil {
		t.Fatal(err)
	}
	claimed, err := st.Claim(ctx, []record.Task{{ID: "1"}, {ID: "2"}, {ID: "3"}}, store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour})
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	tok := claimed[0].Token
	in := `{"id":"1","url":"http://h/1","outcome":"done","path":"d/1","bytes":1,"attempt":1,"token":"` + tok + `"}` + "\n" +
		`{"id":"2","url":"http://h/2","outcome":"failed","error":"status 404","http_status":404,"attempt":1,"token":"` + tok + `"}` + "\n" +
		`{"id":"3","url":"http://h/3","outcome":"failed","error":"status 503","http_status":503,"retryable":true,"attempt":1,"token":"` + tok + `"}` + "\n"

	logs := testenv.CaptureLogs(t)
	proxy.LoseCommit(true)
	var out bytes.Buffer
	o := mark.Options{Batch: 10, Retry: store.RetryPolicy{MaxAttempts: 3, Base: time.Second, Max: time.Minute}}
	if err := mark.Run(ctx, st, q, o, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if proxy.Cuts() != 1 {
		t.Fatalf("%d connections cut at a COMMIT, want 1", proxy.Cuts())
	}
	var echoed []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if r, err := record.ParseResult([]byte(l)); err == nil {
			echoed = append(echoed, r.ID)
		}
	}
	if strings.Join(echoed, ",") != "1,2,3" {
		t.Errorf("echoed ids %v, want 1,2,3", echoed)
	}
	if n, _ := q.Client().Exists(ctx, "download_result:1", "download_result:2", "download_result:3").Result(); n != 3 {
		t.Errorf("%d result keys, want 3", n)
	}
	if got := logs.String(); strings.Contains(got, "late result") || !strings.Contains(got, "mysql is back") {
		t.Errorf("logs call our own results late, or show no outage:\n%s", got)
	}
	wantStatuses(t, db, "1,-1,0")
}

// TestRunRidesOutAReadOnlyServer: in a failover the old primary refuses
// writes (read-only) until the connections move to the new one. dl-mark
// waits that out as an outage, naming the reason, instead of exiting (and
// taking its worker down at every restart until the failover ends); and it
// drops the pool's connections that lead to the read-only server, which
// every retry would otherwise use again. Here the pool's one connection is
// read-only (its session), while a new connection can write.
func TestRunRidesOutAReadOnlyServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	redisURL, prefix, _ := testenv.Redis(t)
	st, q, db := open(t, redisURL, queue.NewKeys(prefix+"queue", prefix))
	in := claimTwo(t, st, db)

	testenv.ReadOnlyPool(t, st.DB())

	logs := testenv.CaptureLogs(t)
	var out bytes.Buffer
	o := mark.Options{Batch: 10, Retry: store.RetryPolicy{MaxAttempts: 3, Base: time.Second, Max: time.Minute}}
	if err := mark.Run(ctx, st, q, o, strings.NewReader(in), &out); err != nil {
		t.Fatalf("dl-mark on a read-only connection: %v", err)
	}
	if got := strings.Count(out.String(), "\n"); got != 2 {
		t.Errorf("echoed %q, want both lines", out.String())
	}
	if got := logs.String(); !strings.Contains(got, "mysql unavailable") || !strings.Contains(got, "READ ONLY") || !strings.Contains(got, "mysql is back") {
		t.Errorf("logs do not show a wait for a read-only server:\n%s", got)
	}
	wantStatuses(t, db, "1,-1")
}

// TestRunAfteranOutageAmidABatchMarkedRowByRow: a batch holding a value the
// table cannot hold is marked row by row, each row its own commit. When
// MySQL goes away before the last of them, the retry of the batch finds
// the rows already committed no longer held: they are dl-mark's own
// writes, echoed and given their result keys, not late results of
// another worker (dropped, as if never recorded).
func TestRunAfterAnOutageAmidABatchMarkedRowByRow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	redisURL, prefix, _ := testenv.Redis(t)
	st, q, db := open(t, redisURL, queue.NewKeys(prefix+"queue", prefix))
	for _, stmt := range []string{
		"ALTER TABLE files MODIFY file_path TEXT CHARACTER SET latin1", // cannot hold 报告
		"INSERT INTO files (id, url) VALUES ('1', 'http://h/1'), ('2', 'http://h/2'), ('3', 'http://h/3')",
		// Row 3's first write is cut as by a lost connection (2013), once:
		// the count lives in a table that the statement's rollback leaves.
		"CREATE TABLE cut (n INT) ENGINE=MyISAM",
		"INSERT INTO cut VALUES (1)",
		`CREATE TRIGGER files_cut BEFORE UPDATE ON files FOR EACH ROW
		IF NEW.id = '3' AND NEW.status = 1 AND (SELECT n FROM cut) > 0 THEN
			UPDATE cut SET n = n - 1;
			SIGNAL SQLSTATE '08S01' SET MYSQL_ERRNO = 2013, MESSAGE_TEXT = 'Lost connection to server during query (test)';
		END IF`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	claimed, err := st.Claim(ctx, []record.Task{{ID: "1"}, {ID: "2"}, {ID: "3"}}, store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour})
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	tok := claimed[0].Token
	in := `{"id":"1","url":"http://h/1","outcome":"done","path":"d/1","bytes":1,"token":"` + tok + `"}` + "\n" +
		`{"id":"2","url":"http://h/2","outcome":"done","path":"d/2-报告.pdf","bytes":1,"token":"` + tok + `"}` + "\n" +
		`{"id":"3","url":"http://h/3","outcome":"done","path":"d/3","bytes":1,"token":"` + tok + `"}` + "\n"

	logs := testenv.CaptureLogs(t)
	var out bytes.Buffer
	o := mark.Options{Batch: 10, Retry: store.RetryPolicy{MaxAttempts: 3, Base: time.Second, Max: time.Minute}}
	if err := mark.Run(ctx, st, q, o, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT n FROM cut").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the cut was not made (%d left, %v): the test tests nothing", n, err)
	}
	var echoed []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if r, err := record.ParseResult([]byte(l)); err == nil {
			echoed = append(echoed, r.ID)
		}
	}
	if strings.Join(echoed, ",") != "1,2,3" {
		t.Errorf("echoed ids %v, want 1,2,3", echoed)
	}
	if n, _ := q.Client().Exists(ctx, prefix+"result:1", prefix+"result:2", prefix+"result:3").Result(); n != 3 {
		t.Errorf("%d result keys, want 3", n)
	}
	if got := logs.String(); strings.Contains(got, "late result") || !strings.Contains(got, "mysql is back") {
		t.Errorf("logs call our own results late, or show no outage:\n%s", got)
	}
	wantStatuses(t, db, "1,-1,1")
}

// TestRunEchoesWhatTheTableHolds: a done file whose name the table cannot
// hold fails its row with the reason; its echoed line and its result key
// say so too, instead of "done" and "success": whoever counts the done
// lines, or reads the key as the original did, must not count a failed
// row as done.
func TestRunEchoesWhatTheTableHolds(t *testing.T) {
	ctx := context.Background()
	redisURL, prefix, _ := testenv.Redis(t)
	st, q, db := open(t, redisURL, queue.NewKeys(prefix+"queue", prefix))
	for _, stmt := range []string{
		"ALTER TABLE files MODIFY file_path TEXT CHARACTER SET latin1", // cannot hold 报告
		"INSERT INTO files (id, url) VALUES ('1', 'http://h/1'), ('2', 'http://h/2')",
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	in := `{"id":"1","url":"http://h/1","outcome":"done","path":"d/1","bytes":1}` + "\n" +
		`{"id":"2","url":"http://h/2","outcome":"done","path":"d/2-报告.pdf","bytes":1}` + "\n"
	var out bytes.Buffer
	o := mark.Options{Batch: 10, Retry: store.RetryPolicy{MaxAttempts: 3, Base: time.Second, Max: time.Minute}}
	if err := mark.Run(ctx, st, q, o, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		r, err := record.ParseResult([]byte(l))
		if err != nil {
			t.Fatalf("echoed line %q: %v", l, err)
		}
		outcomes = append(outcomes, r.ID+":"+string(r.Outcome))
		if r.ID == "2" && !strings.Contains(r.Error, "cannot hold") {
			t.Errorf("echoed line of row 2 gives no reason: %q", l)
		}
	}
	if got := strings.Join(outcomes, ","); got != "1:done,2:failed" {
		t.Errorf("echoed %s, want 1:done,2:failed", got)
	}
	var key struct {
		Success bool   `json:"success"`
		Marked  string `json:"marked"`
	}
	raw, err := q.Client().Get(ctx, prefix+"result:2").Bytes()
	if err != nil || json.Unmarshal(raw, &key) != nil || key.Success || key.Marked != "failed" {
		t.Errorf("result key of row 2: %s (%v), want success false, marked failed", raw, err)
	}
	wantStatuses(t, db, "1,-1")
}

// open gives a test or benchmark a store on a database of its own, its
// table made, and a queue on redisURL under keys; both close at its end.
func open(t testing.TB, redisURL string, keys queue.Keys) (*store.Store, *queue.Queue, *sql.DB) {
	t.Helper()
	return openWith(t, redisURL, keys, func(dsn string) string { return dsn })
}

// openWith is open with the store reaching its database through the DSN
// that via makes of the database's (through a proxy, say).
func openWith(t testing.TB, redisURL string, keys queue.Keys, via func(dsn string) string) (*store.Store, *queue.Queue, *sql.DB) {
	t.Helper()
	ctx := context.Background()
	dsn, db := testenv.MySQL(t)
	st, err := store.Open(ctx, via(dsn), "files")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(ctx, redisURL, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return st, q, db
}

// claimTwo inserts rows 1 and 2, claims them, and returns a result line
// for each: 1 done, 2 failed for good.
func claimTwo(t *testing.T, st *store.Store, db *sql.DB) string {
	t.Helper()
	if _, err := db.Exec("INSERT INTO files (id, url) VALUES ('1', 'http://h/1'), ('2', 'http://h/2')"); err != nil {
		t.Fatal(err)
	}
	claimed, err := st.Claim(context.Background(), []record.Task{{ID: "1"}, {ID: "2"}}, store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour})
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	tok := claimed[0].Token
	return `{"id":"1","url":"http://h/1","outcome":"done","path":"d/1","bytes":1,"token":"` + tok + `"}` + "\n" +
		`{"id":"2","url":"http://h/2","outcome":"failed","error":"status 404","http_status":404,"attempt":1,"token":"` + tok + `"}` + "\n"
}

// wantStatuses checks the rows' statuses, in id order, joined by commas.
func wantStatuses(t *testing.T, db *sql.DB, want string) {
	t.Helper()
	var statuses string
	if err := db.QueryRow("SELECT GROUP_CONCAT(status ORDER BY id) FROM files").Scan(&statuses); err != nil {
		t.Fatal(err)
	}
	if statuses != want {
		t.Fatalf("statuses %s, want %s", statuses, want)
	}
}

// TestRunRidesOutAKilledStatement: a statement of dl-mark that the server
// interrupts (a DBA's KILL QUERY, a statement time limit) is retried, with
// a warning naming the job, and dl-mark goes on: each result recorded
// once, each line echoed once, instead of dl-mark ending and its worker's
// pipeline with it.
func TestRunRidesOutAKilledStatement(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	redisURL, prefix, _ := testenv.Redis(t)
	st, q, db := open(t, redisURL, queue.NewKeys(prefix+"queue", prefix))
	in := claimTwo(t, st, db)
	logs := testenv.CaptureLogs(t)
	var out bytes.Buffer
	o := mark.Options{Batch: 10, Retry: store.RetryPolicy{MaxAttempts: 3, Base: time.Second, Max: time.Minute}}
	err := testenv.InterruptWhileLocked(t, db, "files", true, logs, `msg="mysql statement interrupted; retrying" job="mark `, // the lines may come in more than one batch
		func() error { return mark.Run(ctx, st, q, o, strings.NewReader(in), &out) })
	if err != nil {
		t.Fatalf("dl-mark after a KILL QUERY: %v", err)
	}
	if got := out.String(); strings.Count(got, "\n") != 2 || strings.Count(got, `"id":"1"`) != 1 || strings.Count(got, `"id":"2"`) != 1 {
		t.Errorf("echoed %q, want each line once", got)
	}
	wantStatuses(t, db, "1,-1")
}
