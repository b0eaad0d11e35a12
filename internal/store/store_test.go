package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/testenv"
)

// seedSchema is the table exactly as the original Python script creates it.
const seedSchema = `CREATE TABLE IF NOT EXISTS files (
    id VARCHAR(255) PRIMARY KEY, url TEXT NOT NULL, status TINYINT NOT NULL DEFAULT 0,
    file_path TEXT, download_time FLOAT, error_message TEXT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=UTF8mb4`

func open(t *testing.T) (*store.Store, *sql.DB) {
	t.Helper()
	dsn, db := testenv.MySQL(t)
	return openAt(t, dsn), db
}

func openAt(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, "files")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func ensure(t *testing.T, st *store.Store) {
	t.Helper()
	if err := st.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func exec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func insert(t *testing.T, db *sql.DB, n int) []record.Task {
	t.Helper()
	var tasks []record.Task
	for i := 1; i <= n; i++ {
		tk := record.Task{ID: fmt.Sprint(i), URL: fmt.Sprintf("http://127.0.0.1:9/f/%d", i)}
		exec(t, db, "INSERT INTO files (id, url) VALUES (?, ?)", tk.ID, tk.URL)
		tasks = append(tasks, tk)
	}
	return tasks
}

func statuses(t *testing.T, db *sql.DB) map[string]int {
	t.Helper()
	rows, err := db.Query("SELECT id, status FROM files")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]int{}
	for rows.Next() {
		var id string
		var s int
		if err := rows.Scan(&id, &s); err != nil {
			t.Fatal(err)
		}
		m[id] = s
	}
	return m
}

func TestEnsureUpgradesSeedTableInPlace(t *testing.T) {
	st, db := open(t)
	exec(t, db, seedSchema)
	exec(t, db, `INSERT INTO files (id, url, status, file_path, download_time, error_message) VALUES
		('a', 'http://h/a', 0, NULL, NULL, NULL), ('b', 'http://h/b', 2, NULL, NULL, NULL),
		('c', 'http://h/c', 1, 'downloads/c', 1.5, NULL), ('d', 'http://h/d', -1, NULL, 0.2, '下载失败: boom')`)
	before := dump(t, db, "id, url, status, file_path, download_time, error_message, created_at, updated_at")
	// Many processes start at once: all must succeed and agree.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- st.Ensure(context.Background()) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ensure(t, st) // and again: idempotent
	if after := dump(t, db, "id, url, status, file_path, download_time, error_message, created_at, updated_at"); after != before {
		t.Fatalf("upgrade changed existing values:\nbefore %s\nafter  %s", before, after)
	}
	if got := dump(t, db, "attempts, deliveries, claim_token"); got != "0|0|<nil>;0|0|<nil>;0|0|<nil>;0|0|<nil>" {
		t.Fatalf("new columns: %s", got)
	}
}

// TestEnsureOnAReadOnlyServer: in a failover the server refuses every
// write, CREATE TABLE IF NOT EXISTS of a table that is there included, and
// a tool that starts then must find its table as it is (its first write
// waits the read-only server out) rather than fail and be restarted until
// systemd gives up on it. A table that is missing still cannot be made.
func TestEnsureOnAReadOnlyServer(t *testing.T) {
	dsn, db := testenv.MySQL(t)
	ensure(t, openAt(t, dsn))
	ro := openAt(t, testenv.WithSession(t, dsn, "tx_read_only", "1")) // MariaDB's name for the session's read-only flag
	if err := ro.Ensure(context.Background()); err != nil {
		t.Fatalf("ensure an up-to-date table on a read-only server: %v", err)
	}
	exec(t, db, "DROP TABLE files")
	err := ro.Ensure(context.Background())
	if err == nil || !store.IsUnavailable(err) {
		t.Fatalf("ensure a missing table on a read-only server: %v, want a read-only refusal (unavailable)", err)
	}
}

// TestEnsureWaitsForAnotherUpgrade: the tools of a fleet start together on
// a seed table, and one of them upgrades it while the others wait for the
// schema lock. An upgrade can take minutes (the indexes of a big table, or
// its ALTER waiting, as here, for a long transaction of another client to
// end): the others wait for it, saying so, instead of failing after a
// minute, again at every restart, until systemd gives up on them.
func TestEnsureWaitsForAnotherUpgrade(t *testing.T) {
	ctx := context.Background()
	dsn, _, _ := testenv.StartMariaDB(t) // a server of its own: the lock is the server's
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec(t, db, seedSchema)
	insert(t, db, 1)
	// Another client's long transaction holds the table's metadata lock.
	tx := holdTable(t, db)

	logs := testenv.CaptureLogs(t)
	first, second := openAt(t, dsn), openAt(t, dsn)
	ended := make(chan error, 2)
	go func() { ended <- first.Ensure(ctx) }()
	// The first one holds the schema lock, its ALTER waiting for the
	// transaction.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.processlist WHERE state LIKE '%metadata lock%'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first upgrade never waited for the transaction")
		}
		time.Sleep(20 * time.Millisecond)
	}
	go func() { ended <- second.Ensure(ctx) }()
	deadline = time.Now().Add(90 * time.Second)
	for !strings.Contains(logs.String(), "waiting for another process") {
		select {
		case err := <-ended:
			t.Fatalf("an upgrade ended while the other held the lock: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the second start never said that it waits")
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-ended:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("the upgrades did not end once the transaction had")
		}
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'files' AND column_name = 'claim_token'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("table not upgraded: %d, %v", n, err)
	}
}

// TestEnsureLetsOtherClientsThrough: a schema change waits for every
// transaction that has read the table (a backup's, for an hour), and
// whatever comes after it on the table waits behind it: run at once, the
// upgrade would stop the original workers, and every other client of the
// table, for as long. It waits in short tries instead, letting them
// through in between, and upgrades once the table is free.
func TestEnsureLetsOtherClientsThrough(t *testing.T) {
	ctx := context.Background()
	st, db := open(t)
	exec(t, db, seedSchema)
	insert(t, db, 1)
	tx := holdTable(t, db) // the long transaction
	logs := testenv.CaptureLogs(t)
	ended := make(chan error, 1)
	go func() { ended <- st.Ensure(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.processlist
			WHERE db = DATABASE() AND state LIKE '%metadata lock%' AND info LIKE 'ALTER%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		select {
		case err := <-ended:
			t.Fatalf("the upgrade ended while a transaction held the table: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the upgrade never waited for the transaction")
		}
	}
	// An original worker's write, while the upgrade waits.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := db.ExecContext(wctx, "UPDATE files SET status = 1, file_path = '/d/1' WHERE id = '1'"); err != nil {
		t.Fatalf("another client's write while the upgrade waits: %v", err)
	}
	// Said once the first try gave way (which let the write through).
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "waiting for the transactions that hold the table") {
		if time.Now().After(deadline) {
			t.Fatalf("no line says that the upgrade waits:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the upgrade did not end once the transaction had")
	}
	if got := dump(t, db, "id, status, file_path, attempts"); got != "1|1|/d/1|0" {
		t.Fatalf("rows: %s", got)
	}
}

func TestSchemaFileMatchesEnsure(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	_, db2 := testenv.MySQL(t)
	sqlText, err := os.ReadFile(filepath.Join("..", "..", "scripts", "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	exec(t, db2, string(sqlText))
	if a, b := createTable(t, db), createTable(t, db2); a != b {
		t.Fatalf("scripts/schema.sql differs from the schema the tools create:\n%s\n---\n%s", b, a)
	}
}

func createTable(t *testing.T, db *sql.DB) string {
	var name, def string
	if err := db.QueryRow("SHOW CREATE TABLE files").Scan(&name, &def); err != nil {
		t.Fatal(err)
	}
	return def
}

func dump(t *testing.T, db *sql.DB, cols string) string {
	t.Helper()
	rows, err := db.Query("SELECT " + cols + " FROM files ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := len(strings.Split(cols, ","))
	var out []string
	for rows.Next() {
		vals := make([]any, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			parts = append(parts, fmt.Sprint(v))
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return strings.Join(out, ";")
}

func selectAll(t *testing.T, st *store.Store, o store.SelectOptions) []string {
	t.Helper()
	var ids []string
	if err := st.SelectDue(context.Background(), o, func(tk record.Task) error { ids = append(ids, tk.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	sort.Strings(ids)
	return ids
}

func TestSelectDue(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	insert(t, db, 6)
	exec(t, db, "UPDATE files SET status = 1 WHERE id = '1'")
	exec(t, db, "UPDATE files SET status = -1 WHERE id = '2'")
	exec(t, db, "UPDATE files SET next_attempt_at = NOW(3) + INTERVAL 1 HOUR WHERE id = '3'")           // backing off
	exec(t, db, "UPDATE files SET status = 2, lease_until = NOW(3) - INTERVAL 1 SECOND WHERE id = '4'") // expired
	exec(t, db, "UPDATE files SET status = 2, lease_until = NOW(3) + INTERVAL 1 HOUR WHERE id = '5'")   // held
	tests := []struct {
		name string
		o    store.SelectOptions
		want string
	}{
		{"pending only", store.SelectOptions{}, "6"},
		{"with expired", store.SelectOptions{Expired: true, Stale: time.Hour}, "4,6"},
		{"limit", store.SelectOptions{Expired: true, Limit: 1, Stale: time.Hour}, "4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(selectAll(t, st, tc.o), ","); got != tc.want {
				t.Fatalf("selected %s, want %s", got, tc.want)
			}
		})
	}
}

func TestClaimIsExclusive(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	tasks := insert(t, db, 300)
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < len(tasks); i += 50 {
				claimed, err := st.Claim(context.Background(), tasks[i:i+50], store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, c := range claimed {
					got[c.ID]++
					if c.Token == "" {
						t.Errorf("claimed %s without a token", c.ID)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(got) != len(tasks) {
		t.Fatalf("%d rows claimed, want %d", len(got), len(tasks))
	}
	for id, n := range got {
		if n != 1 {
			t.Fatalf("row %s claimed %d times", id, n)
		}
	}
	for id, s := range statuses(t, db) {
		if s != 2 {
			t.Fatalf("row %s status %d after claim, want 2", id, s)
		}
	}
}

func TestClaimReclaimsExpiredAndFailsPoison(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	tasks := insert(t, db, 3)
	exec(t, db, "UPDATE files SET status = 2, claim_token = 'old', lease_until = NOW(3) - INTERVAL 1 SECOND, deliveries = 1 WHERE id = '1'")
	exec(t, db, "UPDATE files SET status = 2, claim_token = 'old', lease_until = NOW(3) - INTERVAL 1 SECOND, deliveries = 3 WHERE id = '2'")
	exec(t, db, "UPDATE files SET status = 2, claim_token = 'live', lease_until = NOW(3) + INTERVAL 1 HOUR WHERE id = '3'")
	claimed, err := st.Claim(context.Background(), tasks, store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour, MaxDeliveries: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 || claimed[0].ID != "1" || claimed[0].Token == "old" {
		t.Fatalf("claimed %+v, want row 1 under a new token", claimed)
	}
	if s := statuses(t, db); s["2"] != -1 || s["3"] != 2 {
		t.Fatalf("statuses %v: want 2 failed as poison, 3 still held", s)
	}
	var msg string
	if err := db.QueryRow("SELECT error_message FROM files WHERE id = '2'").Scan(&msg); err != nil || !strings.Contains(msg, "3 deliveries") {
		t.Fatalf("poison message %q (%v)", msg, err)
	}
}

func TestMark(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	tasks := insert(t, db, 5)
	claimed, err := st.Claim(context.Background(), tasks[:4], store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour})
	if err != nil || len(claimed) != 4 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	tok := claimed[0].Token
	p := store.RetryPolicy{MaxAttempts: 3, Base: time.Minute, Max: time.Hour}
	results := []record.Result{
		{ID: "1", Outcome: record.Done, Path: "d/1", Bytes: 10, SHA256: strings.Repeat("a", 64), HTTP: 200, Token: tok},
		{ID: "2", Outcome: record.Failed, Error: "status 503", Retryable: true, Attempt: 1, HTTP: 503, Token: tok},
		{ID: "3", Outcome: record.Failed, Error: "status 503", Retryable: true, Attempt: 3, HTTP: 503, Token: tok},
		{ID: "4", Outcome: record.Done, Path: "d/4", Token: "someone-else"},
		{ID: "5", Outcome: record.Failed, Error: "status 404", HTTP: 404, Attempt: 1}, // unclaimed, tokenless
	}
	marked := markAll(t, st, results, p, store.MarkedDone, store.MarkedRetry, store.MarkedFailed, store.MarkedDuplicate, store.MarkedFailed)
	if got := dump(t, db, "id, status, bytes, attempts, http_status"); got !=
		"1|1|10|0|200;2|0|<nil>|1|503;3|-1|<nil>|3|503;4|2|<nil>|0|<nil>;5|-1|<nil>|1|404" {
		t.Fatalf("rows: %s", got)
	}
	var waits bool
	if err := db.QueryRow("SELECT next_attempt_at > NOW(3) + INTERVAL 20 SECOND FROM files WHERE id = '2'").Scan(&waits); err != nil || !waits {
		t.Fatalf("retried row does not back off (%v)", err)
	}
	// A second, late result for a done row is a duplicate and changes nothing.
	marked, err = st.Mark(context.Background(), results[:1], p)
	if err != nil || marked[0] != store.MarkedDuplicate {
		t.Fatalf("late result marked %v (%v), want duplicate", marked, err)
	}
	// A result for an id no row has (another table's) is told apart.
	marked, err = st.Mark(context.Background(), []record.Result{{ID: "99", Outcome: record.Done, Path: "d/99", Token: tok}, results[0]}, p)
	if err != nil || len(marked) != 2 || marked[0] != store.MarkedMissing || marked[1] != store.MarkedDuplicate {
		t.Fatalf("results for a missing and a done row marked %v (%v), want missing, duplicate", marked, err)
	}
}

// claimAndTake claims tasks as dl-enqueue does and takes them as a worker
// does, and returns them as taken.
// markAll marks results and checks what each did to its row.
// TestMarkAfterACommitWithoutAnswer: when the connection drops at a COMMIT,
// the mark is retried. If that commit landed, the retry finds the rows no
// longer held, and tells them as its own writes (reporting how it marked
// them, writing nothing again) rather than as late results; once that is
// settled, the same results are late. If it did not land, each row is
// judged as it is now: still held, it is marked; taken or finished by
// another worker meanwhile, the result is late.
func TestMarkAfterACommitWithoutAnswer(t *testing.T) {
	ctx := context.Background()
	p := store.RetryPolicy{MaxAttempts: 3, Base: time.Minute, Max: time.Hour}
	const cols = "id, status, claim_token, attempts, deliveries, error_message, next_attempt_at"
	for _, landed := range []bool{true, false} {
		t.Run(fmt.Sprint("landed=", landed), func(t *testing.T) {
			dsn, db := testenv.MySQL(t)
			proxy, via := testenv.NewMySQLProxy(t, dsn)
			st := openAt(t, via)
			ensure(t, st)
			tasks := insert(t, db, 4)
			claimed, err := st.Claim(ctx, tasks, store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour})
			if err != nil || len(claimed) != 4 {
				t.Fatalf("claim: %v %v", claimed, err)
			}
			taken, err := st.Take(ctx, claimed, time.Hour, "host:1", "")
			if err != nil || len(taken) != 4 {
				t.Fatalf("take: %v %v", taken, err)
			}
			tok := func(i int) string { return taken[i].Token }
			results := []record.Result{
				{ID: "1", Outcome: record.Done, Path: "d/1", Bytes: 1, HTTP: 200, Attempt: 1, Token: tok(0)},
				{ID: "2", Outcome: record.Failed, Error: "status 404", HTTP: 404, Attempt: 1, Token: tok(1)},
				{ID: "3", Outcome: record.Failed, Error: "status 503", Retryable: true, HTTP: 503, Attempt: 1, Token: tok(2)},
				{ID: "4", Outcome: record.Failed, Error: "disk full", Retryable: true, Local: true, Attempt: 1, Token: tok(3)},
			}
			proxy.LoseCommit(landed)
			if _, err := st.Mark(ctx, results, p); !store.IsUnavailable(err) || proxy.Cuts() != 1 {
				t.Fatalf("mark through a cut COMMIT: %v after %d cuts; want an outage after 1", err, proxy.Cuts())
			}
			if landed {
				before := dump(t, db, cols)
				if s := statuses(t, db); s["1"] != 1 || s["2"] != -1 || s["3"] != 0 || s["4"] != 0 {
					t.Fatalf("statuses %v: the commit did not land", s)
				}
				markAll(t, st, results, p, store.MarkedDone, store.MarkedFailed, store.MarkedRetry, store.MarkedRetry)
				if after := dump(t, db, cols); after != before {
					t.Errorf("the retry wrote again:\n%s\nwas\n%s", after, before)
				}
				markAll(t, st, results, p, store.MarkedDuplicate, store.MarkedDuplicate, store.MarkedDuplicate, store.MarkedDuplicate)
				return
			}
			// Meanwhile (their leases ran out) row 1 was claimed again,
			// and 2 and 3 finished by other workers otherwise than ours
			// would have.
			exec(t, db, "UPDATE files SET claim_token = 'another' WHERE id = '1'")
			exec(t, db, "UPDATE files SET status = 1, claim_token = NULL, lease_until = NULL WHERE id = '2'")
			exec(t, db, "UPDATE files SET status = -1, claim_token = NULL, lease_until = NULL WHERE id = '3'")
			markAll(t, st, results, p, store.MarkedDuplicate, store.MarkedDuplicate, store.MarkedDuplicate, store.MarkedRetry)
		})
	}
}

// TestMarkAfterALostCommitKnowsAnotherWorkersResult: a commit whose answer
// was lost did not land, the rows' leases ran out during the outage, and
// another worker took them and finished them the same way ours would have.
// The retry of our results is late: echoed as recorded, it would replace
// the winner's result key and count the rows twice.
func TestMarkAfterALostCommitKnowsAnotherWorkersResult(t *testing.T) {
	ctx := context.Background()
	p := store.RetryPolicy{MaxAttempts: 3, Base: time.Minute, Max: time.Hour}
	dsn, db := testenv.MySQL(t)
	proxy, via := testenv.NewMySQLProxy(t, dsn)
	st := openAt(t, via)
	ensure(t, st)
	other := openAt(t, dsn)
	tasks := insert(t, db, 2)
	results := func(taken []record.Task) []record.Result {
		return []record.Result{
			{ID: "1", Outcome: record.Done, Path: "d/1", Bytes: 1, HTTP: 200, Token: taken[0].Token},
			{ID: "2", Outcome: record.Failed, Error: "disk full", Retryable: true, Local: true, Token: taken[1].Token},
		}
	}
	ours := results(claimAndTake(t, st, tasks))
	proxy.LoseCommit(false)
	if _, err := st.Mark(ctx, ours, p); !store.IsUnavailable(err) || proxy.Cuts() != 1 {
		t.Fatalf("mark through a cut COMMIT: %v after %d cuts; want an outage after 1", err, proxy.Cuts())
	}
	exec(t, db, "UPDATE files SET lease_until = NOW(3) - INTERVAL 1 SECOND")
	markAll(t, other, results(claimAndTake(t, other, tasks)), p, store.MarkedDone, store.MarkedRetry)
	markAll(t, st, ours, p, store.MarkedDuplicate, store.MarkedDuplicate)
}

func markAll(t *testing.T, st *store.Store, results []record.Result, p store.RetryPolicy, want ...store.Marked) []store.Marked {
	t.Helper()
	marked, err := st.Mark(context.Background(), results, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(marked) != len(want) {
		t.Fatalf("marked %v, want %v", marked, want)
	}
	for i := range want {
		if marked[i] != want[i] {
			t.Errorf("result %s marked %s, want %s", results[i].ID, marked[i], want[i])
		}
	}
	return marked
}

func claimAndTake(t *testing.T, st *store.Store, tasks []record.Task) []record.Task {
	t.Helper()
	claimed, err := st.Claim(context.Background(), tasks, store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	taken, err := st.Take(context.Background(), claimed, 30*time.Second, "host:1", "")
	if err != nil || len(taken) != len(tasks) {
		t.Fatalf("take: %d tasks of %d, %v", len(taken), len(tasks), err)
	}
	return taken
}

// TestMarkLocal: a result that failed on the worker's own disk puts the row
// back to pending at once, uncharged: the disk's failure adds no attempt
// (the result's count, which holds earlier failures, is kept) and the
// delivery is not counted, as a give-back does, with the error kept for the
// operator.
func TestMarkLocal(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	tasks := insert(t, db, 4)
	exec(t, db, "UPDATE files SET attempts = 2")
	taken := claimAndTake(t, st, []record.Task{tasks[0], tasks[1], tasks[3]})
	// Row 3 was delivered by queues before; a tokenless pipeline
	// (dl-select | dl-fetch - | dl-mark) took no delivery of it now.
	exec(t, db, "UPDATE files SET deliveries = 3 WHERE id = '3'")
	full := "write part file: write /d/1.part: no space left on device"
	results := []record.Result{
		{ID: "1", Outcome: record.Failed, Error: full, Retryable: true, Local: true, Attempt: 2, HTTP: 200, Token: taken[0].Token},
		{ID: "2", Outcome: record.Failed, Error: "status 503", Retryable: true, Attempt: 3, HTTP: 503, Token: taken[1].Token},
		{ID: "3", Outcome: record.Failed, Error: full, Retryable: true, Local: true, Attempt: 2},
		// A 503 in the same call before the disk refused it: that one counts.
		{ID: "4", Outcome: record.Failed, Error: full, Retryable: true, Local: true, Attempt: 3, Token: taken[2].Token},
	}
	marked, err := st.Mark(context.Background(), results, store.RetryPolicy{MaxAttempts: 3, Base: time.Minute, Max: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if marked[0] != store.MarkedRetry || marked[1] != store.MarkedFailed || marked[2] != store.MarkedRetry || marked[3] != store.MarkedRetry {
		t.Fatalf("marked %v, want [retry failed retry retry]", marked)
	}
	cols := "id, status, attempts, deliveries, claim_token IS NULL, worker IS NULL, lease_until IS NULL, next_attempt_at <= NOW(3), error_message"
	if got, want := dump(t, db, cols), "1|0|2|0|1|1|1|1|"+full+";2|-1|3|1|1|0|1|<nil>|status 503 (gave up after 3 attempts);3|0|2|3|1|1|1|1|"+full+";4|0|3|0|1|1|1|1|"+full; got != want {
		t.Fatalf("rows:\n got %s\nwant %s", got, want)
	}
}

// TestStatShowsFullDisk: rows a full disk gave back are due at once, not
// counted as waiting out a backoff, yet their error is among dl-stat's most
// common ones, grouped whatever file each one was writing.
func TestStatShowsFullDisk(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	taken := claimAndTake(t, st, insert(t, db, 3))
	results := make([]record.Result, len(taken))
	for i, tk := range taken {
		results[i] = record.Result{ID: tk.ID, Outcome: record.Failed, Retryable: true, Local: true, Token: tk.Token,
			Error: fmt.Sprintf("write part file: write /srv/dl/%03d/f%s.part: no space left on device", i, tk.ID)}
	}
	results[2].Error = "http://h/3: create directory: mkdir /srv/dl/002: read-only file system"
	if _, err := st.Mark(context.Background(), results, store.RetryPolicy{MaxAttempts: 3, Base: time.Minute, Max: time.Hour}); err != nil {
		t.Fatal(err)
	}
	s, err := st.Stat(context.Background(), time.Minute, 5*time.Minute, 5)
	if err != nil {
		t.Fatal(err)
	}
	if s.Counts.Pending != 3 || s.Counts.RetryWaiting != 0 {
		t.Errorf("counts %+v, want 3 pending and none waiting", s.Counts)
	}
	want := []store.ErrorCount{
		{Message: "write part file: write <path>: no space left on device", Rows: 2},
		{Message: "<url>: create directory: mkdir <path>: read-only file system", Rows: 1},
	}
	if len(s.Errors) != len(want) || s.Errors[0] != want[0] || s.Errors[1] != want[1] {
		t.Fatalf("errors %+v, want %+v", s.Errors, want)
	}
}

// TestStatErrorsKeepTheirQuotes: dl-stat cuts URLs and paths out of error
// messages; a quoted one (Go's %q, as dl-select's bad-URL messages have) is
// cut out whole, spaces and escaped quotes included, and keeps its closing
// quote, wherever it stands and however record shortened it.
func TestStatErrorsKeepTheirQuotes(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	tests := []struct{ msg, want string }{
		{`GET http://h/a?x=xxxxx: status 404 Not Found`, `GET <url>: status 404 Not Found`},
		{`GET http://h:8080/a: dial tcp 127.0.0.1:8080: connect: connection refused`, `GET <url>: dial tcp 127.0.0.1:8080: connect: connection refused`},
		{`url "ftp://h/x": scheme must be http or https`, `url "<url>": scheme must be http or https`},
		{`url "http:///nohost" has no host`, `url "<url>" has no host`},
		{`bad url: parse "http://h/%zz": invalid URL escape "%zz"`, `bad url: parse "<url>": invalid URL escape "%zz"`},
		{`bad url: parse "http://h/a b": invalid character " " in host name`, `bad url: parse "<url>": invalid character " " in host name`},
		{`url "gopher://h/a\"b": scheme must be http or https`, `url "<url>": scheme must be http or https`},
		{`url "ftp://h/` + strings.Repeat("a", 20) + `…" has no host`, `url "<url>" has no host`},
		{`redirect to "https://h/b"`, `redirect to "<url>"`},
		{`http://h/3: create directory: mkdir /srv/dl/002: read-only file system`, `<url>: create directory: mkdir <path>: read-only file system`},
		{`open "/srv/dl/a b.part": permission denied`, `open "<path>": permission denied`},
		{`rename /srv/dl/x.part to "/srv/dl/x"`, `rename <path> to "<path>"`},
		{`asked to resume at byte 5, got "bytes 0-9/10"`, `asked to resume at byte 5, got "bytes 0-9/10"`},
	}
	for i, tc := range tests {
		exec(t, db, "INSERT INTO files (id, url, status, error_message) VALUES (?, 'http://h/x', -1, ?)", fmt.Sprint(i), tc.msg)
	}
	s, err := st.Stat(context.Background(), time.Minute, 5*time.Minute, 2*len(tests))
	if err != nil {
		t.Fatal(err)
	}
	got, want := map[string]int64{}, map[string]int64{}
	for _, e := range s.Errors {
		got[e.Message] = e.Rows
	}
	for _, tc := range tests {
		want[tc.want]++
	}
	for _, tc := range tests {
		if got[tc.want] != want[tc.want] {
			t.Errorf("%s\n  is not grouped as %s\n  groups: %v", tc.msg, tc.want, got)
		}
	}
}

// TestStatCountsExpiredAsSelectFindsThem: a processing row with no lease, as
// the original distributor leaves one, counts as expired once it is older
// than the queue lease, as dl-select --expired then hands it out, and not
// before; one whose lease ran out counts at once.
func TestStatCountsExpiredAsSelectFindsThem(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	exec(t, db, `INSERT INTO files (id, url, status, updated_at, lease_until) VALUES
		('old', 'http://h/old', 2, NOW() - INTERVAL 1 HOUR, NULL),
		('new', 'http://h/new', 2, NOW(), NULL),
		('ran-out', 'http://h/ran-out', 2, NOW(), NOW(3) - INTERVAL 1 SECOND),
		('held', 'http://h/held', 2, NOW(), NOW(3) + INTERVAL 1 MINUTE)`)
	s, err := st.Stat(context.Background(), time.Minute, 5*time.Minute, 5)
	if err != nil {
		t.Fatal(err)
	}
	due := selectAll(t, st, store.SelectOptions{Expired: true, Stale: 5 * time.Minute})
	if s.Counts.Processing != 4 || s.Counts.Expired != 2 || int64(len(due)) != s.Counts.Expired {
		t.Fatalf("processing %d, expired %d, dl-select --expired finds %d; want 4, 2, 2", s.Counts.Processing, s.Counts.Expired, len(due))
	}
}

func TestTakeAndRenew(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	tasks := insert(t, db, 2)
	claimed, err := st.Claim(context.Background(), tasks[:1], store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Row 2 comes from the original distributor: no token, status set to 2.
	exec(t, db, "UPDATE files SET status = 2 WHERE id = '2'")
	taken, err := st.Take(context.Background(), append(claimed, tasks[1]), 30*time.Second, "host:1", store.NewToken())
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range taken {
		if tk.Token == "" {
			t.Fatalf("task %s taken without a token", tk.ID)
		}
	}
	if got := dump(t, db, "id, status, deliveries, worker, lease_until < NOW(3) + INTERVAL 31 SECOND"); got != "1|2|1|host:1|1;2|2|1|host:1|1" {
		t.Fatalf("after take: %s", got)
	}
	if err := st.Renew(context.Background(), taken, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, db, "lease_until > NOW(3) + INTERVAL 59 MINUTE"); got != "1;1" {
		t.Fatalf("after renew: %s", got)
	}
}

func TestOpenErrorsNameTheServerWithoutPassword(t *testing.T) {
	_, err := store.Open(context.Background(), "root:s3cret@tcp(127.0.0.1:1)/x", "files")
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("error %v: want the address and no password", err)
	}
	if _, err := store.Open(context.Background(), "root@tcp(127.0.0.1:3306)/x", "bad-name;"); err == nil {
		t.Fatal("bad table name accepted")
	}
}

func TestRequeue(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	insert(t, db, 4)
	exec(t, db, "UPDATE files SET status = -1, attempts = 5, error_message = 'GET x: status 503' WHERE id IN ('1', '2')")
	exec(t, db, "UPDATE files SET status = -1, attempts = 1, error_message = 'GET x: status 404' WHERE id = '3'")
	exec(t, db, "UPDATE files SET updated_at = NOW() - INTERVAL 2 HOUR WHERE id = '1'")
	tests := []struct {
		f    store.RequeueFilter
		want int64
		left string
	}{
		{store.RequeueFilter{ErrorLike: "%503%", OlderThan: time.Hour}, 1, "2,3"},
		{store.RequeueFilter{ErrorLike: "%503%"}, 1, "3"},
		{store.RequeueFilter{}, 1, ""},
	}
	for _, tc := range tests {
		n, err := st.Requeue(context.Background(), tc.f)
		if err != nil || n != tc.want {
			t.Fatalf("requeue %+v: %d (%v), want %d", tc.f, n, err, tc.want)
		}
		var failed []string
		for id, s := range statuses(t, db) {
			if s == -1 {
				failed = append(failed, id)
			}
		}
		sort.Strings(failed)
		if got := strings.Join(failed, ","); got != tc.left {
			t.Fatalf("after %+v failed rows %q, want %q", tc.f, got, tc.left)
		}
	}
	if got := dump(t, db, "status, attempts"); got != "0|0;0|0;0|0;0|0" {
		t.Fatalf("requeued rows: %s", got)
	}
}

func TestTakeDropsStaleCopies(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	tasks := insert(t, db, 2)
	first, err := st.Claim(context.Background(), tasks, store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Row 1's queue lease runs out and it is claimed again: the first copy is stale.
	exec(t, db, "UPDATE files SET lease_until = NOW(3) - INTERVAL 1 SECOND WHERE id = '1'")
	again, err := st.Claim(context.Background(), tasks[:1], store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour})
	if err != nil || len(again) != 1 {
		t.Fatalf("reclaim: %v %v", again, err)
	}
	taken, err := st.Take(context.Background(), append(first, again...), time.Minute, "w", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(taken) != 2 || taken[0].ID != "2" || taken[1].Token != again[0].Token {
		t.Fatalf("taken %+v: want row 2 and the new copy of row 1 only", taken)
	}
}

// TestTakeMatchesEachRowWithItsOwnToken: a stale copy of row 1 (its first
// token) popped beside row 2, where row 2 and row 1 were claimed again
// together under a second token, must not take row 1 by row 2's token; nor
// may renewing the queue's copy of row 1 then find it taken.
func TestTakeMatchesEachRowWithItsOwnToken(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	tasks := insert(t, db, 2)
	ctx := context.Background()
	o := store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour}
	first, err := st.Claim(ctx, tasks[:1], o)
	if err != nil || len(first) != 1 {
		t.Fatalf("claim: %v %v", first, err)
	}
	exec(t, db, "UPDATE files SET lease_until = NOW(3) - INTERVAL 1 SECOND WHERE id = '1'")
	second, err := st.Claim(ctx, tasks, o)
	if err != nil || len(second) != 2 {
		t.Fatalf("reclaim: %v %v", second, err)
	}
	taken, err := st.Take(ctx, []record.Task{first[0], second[1]}, time.Minute, "w", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(taken) != 1 || taken[0].ID != "2" {
		t.Errorf("taken %+v; want row 2 alone", taken)
	}
	if got := dump(t, db, "id, deliveries, worker IS NULL"); got != "1|0|1;2|1|0" {
		t.Errorf("rows after the take (id|deliveries|no worker): %s; want row 1 untouched, 1|0|1;2|1|0", got)
	}
	if err := st.RenewQueued(ctx, second[:1], time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, db, "id, lease_until > NOW(3) + INTERVAL 30 MINUTE"); got != "1|1;2|0" {
		t.Errorf("queue lease renewed (id|long lease): %s; want 1|1;2|0", got)
	}
	// Renewing the stale copy with row 2 must not keep row 1's lease.
	exec(t, db, "UPDATE files SET lease_until = NOW(3) + INTERVAL 1 SECOND WHERE id = '1'")
	if err := st.Renew(ctx, []record.Task{first[0], second[1]}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, db, "id, lease_until > NOW(3) + INTERVAL 30 MINUTE"); got != "1|0;2|1" {
		t.Errorf("leases renewed (id|long lease): %s; want 1|0;2|1", got)
	}
}

// TestGiveBack: a stopping worker's taken but unstarted tasks go back to
// pending with the delivery uncounted; a row held under another token (a
// stale copy's) is left alone.
func TestGiveBack(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	tasks := insert(t, db, 2)
	taken := claimAndTake(t, st, tasks)
	stale := taken[1]
	stale.Token = "someone-elses-token"
	if err := st.GiveBack(context.Background(), []record.Task{taken[0], stale}); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, db, "id, status, deliveries, claim_token IS NULL, worker IS NULL, lease_until IS NULL"); got != "1|0|0|1|1|1;2|2|1|0|0|0" {
		t.Fatalf("after give back: %s", got)
	}
	var token string
	if err := db.QueryRow("SELECT claim_token FROM files WHERE id = '2'").Scan(&token); err != nil || token != taken[1].Token {
		t.Fatalf("row 2's token %q (%v), want it unchanged", token, err)
	}
}

// TestTakeAgainCountsOneDelivery: a take whose answer was lost (a dropped
// connection) is made again by the worker, and the rows it already took
// must not count a second delivery: each counts toward DL_MAX_DELIVERIES,
// and a give-back, which takes one away, must leave the row as if it had
// never been delivered.
func TestTakeAgainCountsOneDelivery(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	tasks := insert(t, db, 2)
	taken := claimAndTake(t, st, tasks)
	again, err := st.Take(context.Background(), taken, time.Minute, "host:1", "")
	if err != nil || len(again) != 2 {
		t.Fatalf("take again: %d tasks, %v", len(again), err)
	}
	if got := dump(t, db, "id, deliveries"); got != "1|1;2|1" {
		t.Fatalf("deliveries after a take made twice: %s, want 1 each", got)
	}
	if err := st.GiveBack(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, db, "id, status, deliveries"); got != "1|0|0;2|0|0" {
		t.Fatalf("after give back: %s, want pending and never delivered", got)
	}
}

// TestTakeSeedAgainGetsItsRows: a take of the original distributor's
// tasks (no token) whose answer was lost is made again by the worker with
// the batch's token, and must get the rows the first take claimed, with
// one delivery counted, even when their leases ran out during the outage:
// left out, they would stay processing and held by nobody, and with the
// original distributor (which pushes only pending rows) for ever. A copy
// of the task that another worker pops meanwhile is still refused.
func TestTakeSeedAgainGetsItsRows(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		between string // what happens to the rows before the take is made again
	}{
		{"at once", ""},
		{"after the lease ran out", "UPDATE files SET lease_until = NOW(3) - INTERVAL 1 SECOND"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, db := open(t)
			ensure(t, st)
			tasks := insert(t, db, 2)
			exec(t, db, "UPDATE files SET status = 2") // as the original distributor does
			if _, err := st.Take(ctx, tasks, time.Minute, "host:1", ""); err == nil {
				t.Fatal("a take of tasks without a token, given none for them, went through")
			}
			token := store.NewToken()
			first, err := st.Take(ctx, tasks, time.Minute, "host:1", token)
			if err != nil || len(first) != 2 {
				t.Fatalf("take: %+v, %v; want both tasks", first, err)
			}
			if tc.between != "" {
				exec(t, db, tc.between)
			}
			again, err := st.Take(ctx, tasks, time.Minute, "host:1", token)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(again) != fmt.Sprint(first) {
				t.Fatalf("take made again: %+v; want what the first took, %+v", again, first)
			}
			want := fmt.Sprintf("1|2|%[1]s|host:1|1|1;2|2|%[1]s|host:1|1|1", token)
			const cols = "id, status, claim_token, worker, deliveries, lease_until > NOW(3)"
			if got := dump(t, db, cols); got != want {
				t.Fatalf("rows (%s): %s; want %s", cols, got, want)
			}
			stale, err := st.Take(ctx, tasks[:1], time.Minute, "host:2", store.NewToken())
			if err != nil || len(stale) != 0 {
				t.Fatalf("another worker's copy: took %+v, %v; want it refused", stale, err)
			}
			if got := dump(t, db, cols); got != want {
				t.Fatalf("rows after another worker's copy (%s): %s; want %s", cols, got, want)
			}
		})
	}
}

// TestTakeIsOneWorkers: a second copy of a task in the queue (a push made
// again after its answer was lost) must not be downloaded twice: popped by
// another worker, it finds the row taken and is left out, the row still
// the first worker's with one delivery; two copies in one batch give one
// task.
func TestTakeIsOneWorkers(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	tasks := insert(t, db, 2)
	claimed, err := st.Claim(context.Background(), tasks, store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour})
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	first, err := st.Take(context.Background(), []record.Task{claimed[0], claimed[0]}, time.Minute, "host:1", "")
	if err != nil || len(first) != 1 || first[0].ID != claimed[0].ID {
		t.Fatalf("take two copies of one task: %v, %v; want the task once", first, err)
	}
	other, err := st.Take(context.Background(), claimed, time.Minute, "host:2", "")
	if err != nil || len(other) != 1 || other[0].ID != claimed[1].ID {
		t.Fatalf("another worker's take: %v, %v; want only the task no worker had taken", other, err)
	}
	if got := dump(t, db, "id, worker, deliveries"); got != "1|host:1|1;2|host:2|1" {
		t.Fatalf("rows: %s", got)
	}
}

// TestMarkKeepsColumnsOfTheOperator: a seed table to which its operator added
// a NOT NULL column without a default (filled by their own INSERTs) is
// marked like any other, in every outcome, and the column keeps its values.
func TestMarkKeepsColumnsOfTheOperator(t *testing.T) {
	st, db := open(t)
	exec(t, db, seedSchema)
	exec(t, db, "ALTER TABLE files ADD COLUMN owner VARCHAR(20) NOT NULL, ADD COLUMN `prio rank` INT NOT NULL, ADD COLUMN seq INT NOT NULL AUTO_INCREMENT UNIQUE")
	var tasks []record.Task
	for i := 1; i <= 5; i++ {
		tk := record.Task{ID: fmt.Sprint(i), URL: fmt.Sprintf("http://127.0.0.1:9/f/%d", i)}
		exec(t, db, "INSERT INTO files (id, url, owner, `prio rank`) VALUES (?, ?, ?, ?)", tk.ID, tk.URL, "team"+tk.ID, i)
		tasks = append(tasks, tk)
	}
	ensure(t, st)
	markEveryOutcome(t, st, tasks)
	if got, want := dump(t, db, "id, status, owner, `prio rank`, seq, url"),
		"1|1|team1|1|1|http://127.0.0.1:9/f/1;2|0|team2|2|2|http://127.0.0.1:9/f/2;3|-1|team3|3|3|http://127.0.0.1:9/f/3;"+
			"4|0|team4|4|4|http://127.0.0.1:9/f/4;5|0|team5|5|5|http://127.0.0.1:9/f/5"; got != want {
		t.Fatalf("rows:\n got %s\nwant %s", got, want)
	}
}

// TestTableKeyedOtherwise: statements on lists of ids name the primary key
// to MariaDB, which is the seed's id; an operator's table with id UNIQUE
// and no primary key (MariaDB refuses to be told of one it lacks) must
// still be claimed, taken, renewed, given back and marked. (A table keyed
// by another column would be scanned whole for every statement if told.)
func TestTableKeyedOtherwise(t *testing.T) {
	st, db := open(t)
	exec(t, db, strings.Replace(seedSchema, "id VARCHAR(255) PRIMARY KEY,", "seq INT AUTO_INCREMENT UNIQUE, id VARCHAR(255) NOT NULL UNIQUE,", 1))
	tasks := insert(t, db, 6)
	ensure(t, st)
	markEveryOutcome(t, st, tasks)
	taken := claimAndTake(t, st, tasks[5:])
	if err := st.Renew(context.Background(), taken, time.Minute); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if err := st.GiveBack(context.Background(), taken); err != nil {
		t.Fatalf("give back: %v", err)
	}
	if got, want := dump(t, db, "id, status, seq"), "1|1|1;2|0|2;3|-1|3;4|0|4;5|0|5;6|0|6"; got != want {
		t.Fatalf("rows:\n got %s\nwant %s", got, want)
	}
}

// TestMarkTablesWithChecksAndTriggers: marking writes through an INSERT
// that only updates, which a table's CHECK constraints and BEFORE INSERT
// triggers take for an insert. A table whose operator checks its urls
// must still be marked (not fail every batch, and dl-mark with it), and an
// operator's audit trigger on inserts must record no insert per mark.
func TestMarkTablesWithChecksAndTriggers(t *testing.T) {
	st, db := open(t)
	exec(t, db, strings.Replace(seedSchema, "url TEXT NOT NULL,", "url TEXT NOT NULL CHECK (url LIKE 'http%'),", 1))
	exec(t, db, "CREATE TABLE audit (id VARCHAR(255), what VARCHAR(20))")
	exec(t, db, "CREATE TRIGGER files_bi BEFORE INSERT ON files FOR EACH ROW INSERT INTO audit VALUES (NEW.id, 'insert')")
	tasks := insert(t, db, 5)
	ensure(t, st)
	markEveryOutcome(t, st, tasks)
	cols := "id, status, file_path, bytes, http_status, attempts, deliveries, error_message, claim_token IS NULL, next_attempt_at > NOW(3), finished_at IS NOT NULL, url"
	want := "1|1|d/1|10|200|0|1|<nil>|1|<nil>|1|http://127.0.0.1:9/f/1;" +
		"2|0|<nil>|<nil>|503|1|1|status 503|1|1|0|http://127.0.0.1:9/f/2;" +
		"3|-1|<nil>|<nil>|404|1|1|status 404|1|<nil>|1|http://127.0.0.1:9/f/3;" +
		"4|0|<nil>|<nil>|<nil>|0|0|no space left on device|1|0|0|http://127.0.0.1:9/f/4;" +
		"5|0|<nil>|<nil>|<nil>|0|0|no space left on device|1|0|0|http://127.0.0.1:9/f/5"
	if got := dump(t, db, cols); got != want {
		t.Fatalf("rows:\n got %s\nwant %s", got, want)
	}
	var inserts int
	if err := db.QueryRow("SELECT COUNT(*) FROM audit").Scan(&inserts); err != nil || inserts != 5 {
		t.Fatalf("the audit trigger recorded %d inserts (%v), want the 5 of the rows' own INSERTs", inserts, err)
	}
}

// TestMarkIsolatesAValueTheTableCannotHold: in a table of another charset
// (latin1 here), a result whose file name the column cannot hold (a server
// named it 报告.pdf) fails its own row with the reason, instead of failing
// the whole batch, and so dl-mark, again at every delivery.
func TestMarkIsolatesAValueTheTableCannotHold(t *testing.T) {
	st, db := open(t)
	exec(t, db, strings.Replace(seedSchema, "UTF8mb4", "latin1", 1))
	tasks := insert(t, db, 4)
	ensure(t, st)
	taken := claimAndTake(t, st, tasks)
	p := store.RetryPolicy{MaxAttempts: 3, Base: time.Minute, Max: time.Hour}
	results := []record.Result{
		{ID: "1", Outcome: record.Done, Path: "d/abc/1-报告.pdf", Bytes: 10, HTTP: 200, Attempt: 1, Token: taken[0].Token},
		{ID: "2", Outcome: record.Done, Path: "d/abc/2-café.pdf", Bytes: 20, HTTP: 200, Token: taken[1].Token},
		{ID: "3", Outcome: record.Failed, Error: "status 503", Retryable: true, Attempt: 1, HTTP: 503, Token: taken[2].Token},
		// An error the column cannot hold keeps its outcome, in ASCII.
		{ID: "4", Outcome: record.Failed, Error: "status 503 服务不可用", Retryable: true, Attempt: 1, HTTP: 503, Token: taken[3].Token},
	}
	markAll(t, st, results, p, store.MarkedFailed, store.MarkedDone, store.MarkedRetry, store.MarkedRetry)
	if got, want := dump(t, db, "id, status, file_path, bytes, attempts, claim_token IS NULL"),
		"1|-1|<nil>|<nil>|1|1;2|1|d/abc/2-café.pdf|20|0|1;3|0|<nil>|<nil>|1|1;4|0|<nil>|<nil>|1|1"; got != want {
		t.Fatalf("rows:\n got %s\nwant %s", got, want)
	}
	var msg string
	if err := db.QueryRow("SELECT error_message FROM files WHERE id = '1'").Scan(&msg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "file_path") || !strings.Contains(msg, "cannot hold") {
		t.Fatalf("error_message %q does not say which column could not hold the result", msg)
	}
	if err := db.QueryRow("SELECT error_message FROM files WHERE id = '4'").Scan(&msg); err != nil || msg != `status 503 \u670d\u52a1\u4e0d\u53ef\u7528` {
		t.Fatalf("error_message %q (%v), want the error in ASCII", msg, err)
	}
}

// TestMarkIsolatesAValueInTheServersLanguage: the reason a done row is
// failed with (the table cannot hold its file name) is the server's
// message, which is in the server's language: a Chinese one
// (lc_messages=zh_CN) that a latin1 table cannot hold either must not fail
// the batch, and dl-mark with it, at every delivery.
func TestMarkIsolatesAValueInTheServersLanguage(t *testing.T) {
	dsn, db := testenv.MySQL(t)
	st := openAt(t, testenv.WithSession(t, dsn, "lc_messages", "'zh_CN'"))
	exec(t, db, strings.Replace(seedSchema, "UTF8mb4", "latin1", 1))
	tasks := insert(t, db, 2)
	ensure(t, st)
	taken := claimAndTake(t, st, tasks)
	p := store.RetryPolicy{MaxAttempts: 3, Base: time.Minute, Max: time.Hour}
	results := []record.Result{
		{ID: "1", Outcome: record.Done, Path: "d/abc/1-报告.pdf", Bytes: 10, HTTP: 200, Attempt: 1, Token: taken[0].Token},
		{ID: "2", Outcome: record.Done, Path: "d/abc/2.pdf", Bytes: 20, HTTP: 200, Token: taken[1].Token},
	}
	markAll(t, st, results, p, store.MarkedFailed, store.MarkedDone)
	if got, want := dump(t, db, "id, status, file_path"), "1|-1|<nil>;2|1|d/abc/2.pdf"; got != want {
		t.Fatalf("rows:\n got %s\nwant %s", got, want)
	}
	var msg string
	if err := db.QueryRow("SELECT error_message FROM files WHERE id = '1'").Scan(&msg); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(msg, "the table cannot hold the result: ") || !strings.Contains(msg, `\u`) {
		t.Fatalf("error_message %q: want the server's Chinese message, in ASCII", msg)
	}
}

// TestMarkCutsErrorsToTheirColumn: in a table whose error_message holds
// less than the seed's TEXT (VARCHAR(100) here), a failure whose error is
// longer is recorded with its error cut to fit, the suffix of a transient
// failure that used up its attempts included, instead of failing its
// batch, and dl-mark with it, at every delivery.
func TestMarkCutsErrorsToTheirColumn(t *testing.T) {
	st, db := open(t)
	exec(t, db, strings.Replace(seedSchema, "error_message TEXT", "error_message VARCHAR(100)", 1))
	tasks := insert(t, db, 4)
	ensure(t, st)
	taken := claimAndTake(t, st, tasks)
	p := store.RetryPolicy{MaxAttempts: 3, Base: time.Minute, Max: time.Hour}
	long := "connect: " + strings.Repeat("é", 300)
	results := []record.Result{
		{ID: "1", Outcome: record.Failed, Error: "status 404 " + strings.Repeat("x", 500), HTTP: 404, Attempt: 1, Token: taken[0].Token},
		{ID: "2", Outcome: record.Failed, Error: long, Retryable: true, Attempt: 1, Token: taken[1].Token},
		{ID: "3", Outcome: record.Failed, Error: long, Retryable: true, Attempt: 3, Token: taken[2].Token},
		{ID: "4", Outcome: record.Done, Path: "d/4", Bytes: 1, HTTP: 200, Token: taken[3].Token},
	}
	markAll(t, st, results, p, store.MarkedFailed, store.MarkedRetry, store.MarkedFailed, store.MarkedDone)
	if got, want := dump(t, db, "id, status, CHAR_LENGTH(error_message) <= 100, SUBSTRING(error_message FROM 1 FOR 11), SUBSTRING(error_message FROM -27)"),
		"1|-1|1|status 404 |xxxxxxxxxxxxxxxxxxxxxxxx...;"+
			`2|0|1|connect: \u|e9\u00e9\u00e9\u00e9\u00...;`+
			`3|-1|1|connect: \u| (gave up after 3 attempts);`+
			"4|1|<nil>|<nil>|<nil>"; got != want {
		t.Fatalf("rows:\n got %s\nwant %s", got, want)
	}
}

// TestMarkIsStrictOnANonStrictServer: on a server whose sql_mode is not
// strict (an old my.cnf, sql_mode=”), a value the table cannot hold would
// be a mere warning: the file name's characters stored as "?", and the row
// done with a file_path that names no file. dl's sessions are strict, so
// the row fails with the reason, as on a strict server.
func TestMarkIsStrictOnANonStrictServer(t *testing.T) {
	dsn, _, _ := testenv.StartMariaDB(t)
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	exec(t, admin, "SET GLOBAL sql_mode = ''") // the test's own server
	db, err := sql.Open("mysql", dsn)          // sessions made after the change
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := openAt(t, dsn)
	exec(t, db, strings.Replace(seedSchema, "UTF8mb4", "latin1", 1))
	tasks := insert(t, db, 2)
	ensure(t, st)
	taken := claimAndTake(t, st, tasks)
	p := store.RetryPolicy{MaxAttempts: 3, Base: time.Minute, Max: time.Hour}
	results := []record.Result{
		{ID: "1", Outcome: record.Done, Path: "d/abc/1-报告.pdf", Bytes: 10, HTTP: 200, Token: taken[0].Token},
		{ID: "2", Outcome: record.Done, Path: "d/abc/2-café.pdf", Bytes: 20, HTTP: 200, Token: taken[1].Token},
	}
	markAll(t, st, results, p, store.MarkedFailed, store.MarkedDone)
	if got, want := dump(t, db, "id, status, file_path"), "1|-1|<nil>;2|1|d/abc/2-café.pdf"; got != want {
		t.Fatalf("rows:\n got %s\nwant %s", got, want)
	}
}

// TestSelectFailsRowsWithBadURLs: a row whose url no worker can fetch is
// failed at once with the reason, as a bad URL is meant to be, instead of
// being selected again every round, ahead of the good rows and taking
// their places under --limit, while dl-enqueue refuses its line each time.
func TestSelectFailsRowsWithBadURLs(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	long := "http://h/" + strings.Repeat("a", record.MaxURL)
	exec(t, db, "INSERT INTO files (id, url) VALUES ('1', 'ftp://h/x'), ('2', 'not a url'), ('3', 'http://h/ok'), ('4', ?), ('5', 'http:///nohost')", long)
	exec(t, db, "UPDATE files SET status = 2, updated_at = NOW() - INTERVAL 1 HOUR WHERE id = '5'") // left in processing by the original
	o := store.SelectOptions{Limit: 2, Expired: true, Stale: time.Minute}
	var rounds []string
	for range 3 {
		rounds = append(rounds, strings.Join(selectAll(t, st, o), ","))
	}
	if got := strings.Join(rounds, ";"); !strings.Contains(got, "3") {
		t.Fatalf("rounds selected %q: the good row never came", got)
	}
	cols := "id, status, finished_at IS NOT NULL, error_message"
	want := `1|-1|1|url "ftp://h/x": scheme must be http or https;` +
		`2|-1|1|url "not a url": scheme must be http or https;` +
		`3|0|0|<nil>;` +
		`4|-1|1|url longer than 16384 bytes;` +
		`5|-1|1|url "http:///nohost" has no host`
	if got := dump(t, db, cols); got != want {
		t.Fatalf("rows:\n got %s\nwant %s", got, want)
	}
}

// TestNullURLsFailTheirRowsAlone: in a table whose url column allows NULL
// (unlike the seed's), a row without a url is failed with the reason, as an
// empty one is, instead of stopping dl-select at that row every round (and
// with it the whole distributor); dl-enqueue does not queue it either.
func TestNullURLsFailTheirRowsAlone(t *testing.T) {
	st, db := open(t)
	exec(t, db, strings.Replace(seedSchema, "url TEXT NOT NULL", "url TEXT NULL", 1))
	ensure(t, st)
	exec(t, db, "INSERT INTO files (id, url) VALUES ('1', NULL), ('2', 'http://h/2'), ('3', ''), ('4', NULL)")
	claimed, err := st.Claim(context.Background(), []record.Task{{ID: "4", URL: "http://h/4"}}, store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour})
	if err != nil || len(claimed) != 0 {
		t.Fatalf("claim of a row without a url: %v, %v; want it left out", claimed, err)
	}
	if got := strings.Join(selectAll(t, st, store.SelectOptions{Limit: 10}), ","); got != "2" {
		t.Fatalf("selected %q, want 2", got)
	}
	if got, want := dump(t, db, "id, status, error_message"), "1|-1|empty url;2|0|<nil>;3|-1|empty url;4|2|<nil>"; got != want {
		t.Fatalf("rows:\n got %s\nwant %s", got, want)
	}
}

// TestClaimKeepsExpectedChecksumAndName: the checksum and name a task line
// asks for are kept in its row when dl-enqueue claims it (in columns added
// in place to a seed table, whose charset need not hold the name), are not
// erased by a later line without them, and come back with every later claim
// and selection of the row, so that a delivery after a lost lease or a retry
// is verified and named as the first was. Lines without them are claimed in
// as many statements as ever.
func TestClaimKeepsExpectedChecksumAndName(t *testing.T) {
	st, db := open(t)
	exec(t, db, strings.Replace(seedSchema, "UTF8mb4", "latin1", 1))
	tasks := insert(t, db, 4)
	ensure(t, st)
	st.DB().SetMaxOpenConns(1) // so that the session's statement counter is the store's
	sumA, sumB := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	exec(t, db, "UPDATE files SET expected_sha256 = ?, target_name = 'by hand.iso' WHERE id = '4'", sumB) // an operator's
	lines := []record.Task{
		{ID: "1", URL: tasks[0].URL, SHA256: sumA, Name: "报告.pdf"},
		{ID: "2", URL: tasks[1].URL, Name: "two.bin"},
		tasks[2],
		tasks[3],
	}
	want := []record.Task{lines[0], lines[1], tasks[2], {ID: "4", URL: tasks[3].URL, SHA256: sumB, Name: "by hand.iso"}}
	o := store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour, MaxDeliveries: 5}
	claim := func(lines []record.Task, statements int64) []record.Task {
		t.Helper()
		before := questions(t, st.DB())
		claimed, err := st.Claim(context.Background(), lines, o)
		if err != nil {
			t.Fatal(err)
		}
		if n := questions(t, st.DB()) - before - 1; n != statements {
			t.Errorf("claimed %d lines in %d statements, want %d", len(lines), n, statements)
		}
		return claimed
	}
	check := func(when string, got []record.Task) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d tasks, want %d", when, len(got), len(want))
		}
		for i := range want {
			if got[i].ID != want[i].ID || got[i].SHA256 != want[i].SHA256 || got[i].Name != want[i].Name {
				t.Errorf("%s: task %+v, want sha256 %q and name %q", when, got[i], want[i].SHA256, want[i].Name)
			}
		}
		wantRows := fmt.Sprintf("1|%s|报告.pdf;2|<nil>|two.bin;3|<nil>|<nil>;4|%s|by hand.iso", sumA, sumB)
		if rows := dump(t, db, "id, expected_sha256, target_name"); rows != wantRows {
			t.Errorf("%s: rows\n got %s\nwant %s", when, rows, wantRows)
		}
	}
	check("first claim", claim(lines, 3))

	// The queue is lost: the rows are claimed again from lines without them
	// (a plain line, in as many statements as ever), and from dl-select's.
	exec(t, db, "UPDATE files SET lease_until = NOW(3) - INTERVAL 1 SECOND")
	check("claim of plain lines", claim(tasks, 3))
	exec(t, db, "UPDATE files SET lease_until = NOW(3) - INTERVAL 1 SECOND")
	var selected []record.Task
	err := st.SelectDue(context.Background(), store.SelectOptions{Expired: true, Stale: time.Hour}, func(tk record.Task) error {
		selected = append(selected, tk)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(selected, func(i, j int) bool { return selected[i].ID < selected[j].ID })
	check("selection", selected)
	check("claim of selected lines", claim(selected, 3))

	// A line that carries one of them replaces that one only.
	exec(t, db, "UPDATE files SET lease_until = NOW(3) - INTERVAL 1 SECOND")
	lines[0] = record.Task{ID: "1", URL: tasks[0].URL, Name: "report.pdf"}
	want[0].Name = "report.pdf"
	got := claim(lines[:1], 3)
	if len(got) != 1 || got[0].SHA256 != sumA || got[0].Name != "report.pdf" {
		t.Fatalf("claimed %+v, want the row's sha256 and the line's new name", got)
	}
	if rows := dump(t, db, "id, expected_sha256, target_name"); !strings.HasPrefix(rows, "1|"+sumA+"|report.pdf;") {
		t.Fatalf("rows %s", rows)
	}
}

// TestRowsGiveTasksTheirChecksumAndName: a row's expected_sha256 and
// target_name, as an operator may write them, go into its task line (the
// checksum in lower case; an empty value is none), and into the task of the
// original distributor (only an id and a url) that a worker takes; a row
// whose expected_sha256 is no sha256 is failed with the reason rather than
// handed out unverified or crashing dl-select.
func TestRowsGiveTasksTheirChecksumAndName(t *testing.T) {
	st, db := open(t)
	ensure(t, st)
	tasks := insert(t, db, 4)
	sum := strings.Repeat("ab", 32)
	exec(t, db, "UPDATE files SET expected_sha256 = UPPER(?), target_name = 'a.iso' WHERE id = '1'", sum)
	exec(t, db, "UPDATE files SET expected_sha256 = 'not-a-sum' WHERE id = '2'")
	exec(t, db, "UPDATE files SET expected_sha256 = '', target_name = '' WHERE id = '3'")
	got := map[string]record.Task{}
	for range 2 { // the bad row is failed, not selected again
		err := st.SelectDue(context.Background(), store.SelectOptions{}, func(tk record.Task) error {
			if _, again := got[tk.ID]; again {
				return nil
			}
			got[tk.ID] = tk
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]record.Task{
		"1": {ID: "1", URL: tasks[0].URL, SHA256: sum, Name: "a.iso"},
		"3": tasks[2],
		"4": tasks[3],
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("selected\n %v\nwant\n %v", got, want)
	}
	want2 := `1|0|<nil>;2|-1|task "2": sha256 "not-a-sum" is not 64 hex digits;3|0|<nil>;4|0|<nil>`
	if rows := dump(t, db, "id, status, error_message"); rows != want2 {
		t.Fatalf("rows\n got %s\nwant %s", rows, want2)
	}

	exec(t, db, "UPDATE files SET status = 2 WHERE id IN ('1', '4')") // as the original distributor does
	taken, err := st.Take(context.Background(), []record.Task{tasks[0], tasks[3]}, time.Minute, "w", store.NewToken())
	if err != nil {
		t.Fatal(err)
	}
	if len(taken) != 2 || taken[0].SHA256 != sum || taken[0].Name != "a.iso" || taken[1].SHA256 != "" || taken[1].Name != "" {
		t.Fatalf("taken %+v: want row 1's checksum and name on its task only", taken)
	}

	// A plain line claims the bad row (its operator wrote the value while
	// the line was on its way): it is not pushed, and fails once its queue
	// lease runs out, as dl-select fails it.
	exec(t, db, "UPDATE files SET status = 0, error_message = NULL WHERE id = '2'")
	claimed, err := st.Claim(context.Background(), tasks[1:2], store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour})
	if err != nil || len(claimed) != 0 {
		t.Fatalf("claimed %+v (%v), want the bad row left out", claimed, err)
	}
	exec(t, db, "UPDATE files SET lease_until = NOW(3) - INTERVAL 1 SECOND WHERE id = '2'")
	if ids := strings.Join(selectAll(t, st, store.SelectOptions{Expired: true, Stale: time.Hour}), ","); ids != "3" {
		t.Fatalf("selected %s, want only the pending row 3", ids)
	}
	if rows := dump(t, db, "id, status"); rows != "1|2;2|-1;3|0;4|2" {
		t.Fatalf("rows %s, want row 2 failed", rows)
	}
}

// holdTable opens a transaction that has read the files table, as a
// backup's or an analyst's does: a schema change waits for it to end. It
// is rolled back when the test ends, if the test has not ended it.
func holdTable(t *testing.T, db *sql.DB) *sql.Tx {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	if _, err := tx.Exec("SELECT COUNT(*) FROM files"); err != nil {
		t.Fatal(err)
	}
	return tx
}

// markEveryOutcome takes the first four of five tasks and marks one result
// of each kind: done, a passing failure, a final failure, a full disk with
// its token and a full disk without (the fifth, never taken).
func markEveryOutcome(t *testing.T, st *store.Store, tasks []record.Task) {
	t.Helper()
	taken := claimAndTake(t, st, tasks[:4])
	p := store.RetryPolicy{MaxAttempts: 3, Base: time.Minute, Max: time.Hour}
	results := []record.Result{
		{ID: "1", Outcome: record.Done, Path: "d/1", Bytes: 10, HTTP: 200, Token: taken[0].Token},
		{ID: "2", Outcome: record.Failed, Error: "status 503", Retryable: true, Attempt: 1, HTTP: 503, Token: taken[1].Token},
		{ID: "3", Outcome: record.Failed, Error: "status 404", HTTP: 404, Attempt: 1, Token: taken[2].Token},
		{ID: "4", Outcome: record.Failed, Error: "no space left on device", Retryable: true, Local: true, Token: taken[3].Token},
		{ID: "5", Outcome: record.Failed, Error: "no space left on device", Retryable: true, Local: true}, // tokenless
	}
	markAll(t, st, results, p, store.MarkedDone, store.MarkedRetry, store.MarkedFailed, store.MarkedRetry, store.MarkedRetry)
}
