package distributor_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dlkit/dl/internal/distributor"
	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/testenv"
	"github.com/dlkit/dl/internal/tool"
)

// env is a test's own table (in its own database) and Redis keys, with the
// store and queue over them; all closed and removed when the test ends.
type env struct {
	db   *sql.DB
	rdb  *redis.Client
	st   *store.Store
	q    *queue.Queue
	keys queue.Keys
}

// openStore is a store over dl's table in a database of the test's own.
func openStore(t *testing.T) (*store.Store, *sql.DB) {
	t.Helper()
	dsn, db := testenv.MySQL(t)
	st, err := store.Open(context.Background(), dsn, "files")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st, db
}

func newEnv(t *testing.T) env {
	t.Helper()
	ctx := context.Background()
	st, db := openStore(t)
	redisURL, prefix, rdb := testenv.Redis(t)
	keys := queue.NewKeys(prefix+"download_queue", prefix+"download_")
	q, err := queue.Open(ctx, redisURL, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return env{db: db, rdb: rdb, st: st, q: q, keys: keys}
}

func TestSelectThenEnqueue(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	db, rdb, st, q, keys := e.db, e.rdb, e.st, e.q, e.keys
	if _, err := db.Exec("INSERT INTO files (id, url, status) SELECT seq, CONCAT('http://h/', seq), IF(seq % 5 = 0, 1, 0) FROM seq_1_to_100"); err != nil {
		t.Fatal(err)
	}

	var sel bytes.Buffer
	if err := distributor.Select(ctx, st, store.SelectOptions{Limit: 50}, &sel); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(sel.String(), "\n"); n != 50 {
		t.Fatalf("selected %d, want the limit of 50", n)
	}
	o := distributor.EnqueueOptions{Batch: 7, RenewMax: 1000, Claim: store.ClaimOptions{QueueLease: time.Minute, Stale: time.Minute}}
	var out bytes.Buffer
	in := sel.String() + sel.String() // every line twice: each row is claimed once
	if err := distributor.Enqueue(ctx, st, q, o, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 50 {
		t.Fatalf("enqueued %d, want 50", n)
	}
	if n, _ := rdb.LLen(ctx, keys.Queue).Result(); n != 50 {
		t.Fatalf("queue holds %d, want 50", n)
	}

	// The next round renews the queue leases of what is still queued.
	if _, err := db.Exec("UPDATE files SET lease_until = NOW(3) + INTERVAL 1 SECOND WHERE status = 2"); err != nil {
		t.Fatal(err)
	}
	o.Claim.QueueLease = time.Hour
	if err := distributor.Enqueue(ctx, st, q, o, strings.NewReader(""), &out); err != nil {
		t.Fatal(err)
	}
	var short int
	if err := db.QueryRow("SELECT COUNT(*) FROM files WHERE status = 2 AND lease_until < NOW(3) + INTERVAL 59 MINUTE").Scan(&short); err != nil {
		t.Fatal(err)
	}
	if short != 0 {
		t.Fatalf("%d queued rows kept a short queue lease", short)
	}
}

// TestEnqueueClaimsBigBatchesInParts: a batch big enough to be claimed in
// parts at once still claims each row once, even when a line repeats across
// the parts, and the queue and the output keep the order of the input.
func TestEnqueueClaimsBigBatchesInParts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	db, rdb, st, q, keys := e.db, e.rdb, e.st, e.q, e.keys
	const rows = 600
	if _, err := db.Exec(fmt.Sprintf("INSERT INTO files (id, url) SELECT seq, CONCAT('http://h/', seq) FROM seq_1_to_%d", rows)); err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	var want []string
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&in, `{"id":"%d","url":"http://h/%d"}`+"\n", i, i)
		want = append(want, strconv.Itoa(i))
	}
	in.WriteString(`{"id":"1","url":"http://h/1"}` + "\n") // in the second part of the batch, again
	o := distributor.EnqueueOptions{Batch: rows + 1, Claim: store.ClaimOptions{QueueLease: time.Minute, Stale: time.Minute}}
	var out bytes.Buffer
	if err := distributor.Enqueue(ctx, st, q, o, strings.NewReader(in.String()), &out); err != nil {
		t.Fatal(err)
	}
	var echoed []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		task, err := record.ParseTask([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		echoed = append(echoed, task.ID)
	}
	queued, err := rdb.LRange(ctx, keys.Queue, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	var queuedIDs []string
	for _, v := range queued {
		task, err := record.ParseTask([]byte(v))
		if err != nil {
			t.Fatal(err)
		}
		queuedIDs = append(queuedIDs, task.ID)
	}
	if !slices.Equal(echoed, want) || !slices.Equal(queuedIDs, want) {
		t.Errorf("each row once in input order wanted (%d rows); output has %d (first %v), queue %d (first %v)",
			rows, len(echoed), echoed[:min(3, len(echoed))], len(queuedIDs), queuedIDs[:min(3, len(queuedIDs))])
	}
	var claimed int
	if err := db.QueryRow("SELECT COUNT(*) FROM files WHERE status = 2 AND claim_token IS NOT NULL").Scan(&claimed); err != nil {
		t.Fatal(err)
	}
	if claimed != rows {
		t.Errorf("%d rows claimed, want %d", claimed, rows)
	}
}

// TestSecondSignalEndsAWaitOnRedis: a first signal lets the batch in hand be
// pushed, waiting out a Redis outage; a second ends that wait (the claimed
// rows come back when their queue leases run out).
func TestSecondSignalEndsAWaitOnRedis(t *testing.T) {
	st, db := openStore(t)
	redisURL, stopRedis, _ := testenv.StartRedisServer(t)
	ctx := context.Background()
	if _, err := db.Exec("INSERT INTO files (id, url) VALUES ('1', 'http://h/1')"); err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(ctx, redisURL, queue.NewKeys("download_queue", "download_"))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	stopRedis()
	hard, abort := context.WithCancel(ctx)
	defer abort()
	soft, stop := context.WithCancel(tool.WithHard(hard, hard))
	defer stop()
	done := make(chan error, 1)
	o := distributor.EnqueueOptions{Claim: store.ClaimOptions{QueueLease: time.Minute, Stale: time.Minute}, Batch: 10}
	go func() {
		done <- distributor.Enqueue(soft, st, q, o, strings.NewReader(`{"id":"1","url":"http://h/1"}`+"\n"), io.Discard)
	}()
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, func() bool {
		var n int
		db.QueryRow("SELECT COUNT(*) FROM files WHERE status = 2").Scan(&n)
		return n == 1
	}, "the row claimed, its push waiting on Redis")
	stop()
	select {
	case err := <-done:
		t.Fatalf("Enqueue returned %v on the first signal, its claimed batch not pushed", err)
	case <-time.After(300 * time.Millisecond):
	}
	abort()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Enqueue still waiting on Redis 15 s after the second signal")
	}
}

// TestQueueStaysWithinRenewMax: with no worker draining the queue, rounds of
// the distributor keep it at --renew-max tasks. A task pushed beyond what a
// round renews loses its queue lease while still queued, is claimed again and
// pushed again, so the queue used to grow by the same rows every queue lease,
// without end.
func TestQueueStaysWithinRenewMax(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	db, rdb, st, q, keys := e.db, e.rdb, e.st, e.q, e.keys
	if _, err := db.Exec("INSERT INTO files (id, url) SELECT seq, CONCAT('http://h/', seq) FROM seq_1_to_100"); err != nil {
		t.Fatal(err)
	}
	const renewMax = 30
	lease := 300 * time.Millisecond
	o := distributor.EnqueueOptions{Batch: 7, RenewMax: renewMax, Claim: store.ClaimOptions{QueueLease: lease, Stale: lease}}
	for round := 1; round <= 3; round++ {
		var sel, out bytes.Buffer
		if err := distributor.Select(ctx, st, store.SelectOptions{Expired: true, Stale: lease}, &sel); err != nil {
			t.Fatal(err)
		}
		if err := distributor.Enqueue(ctx, st, q, o, &sel, &out); err != nil {
			t.Fatal(err)
		}
		n, err := rdb.LLen(ctx, keys.Queue).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n != renewMax {
			t.Fatalf("round %d: the queue holds %d tasks, want --renew-max %d", round, n, renewMax)
		}
		var pending int
		if err := db.QueryRow("SELECT COUNT(*) FROM files WHERE status = 0").Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending != 100-renewMax {
			t.Fatalf("round %d: %d rows pending, want the %d not enqueued left for later", round, pending, 100-renewMax)
		}
		time.Sleep(2 * lease) // the queue leases of tasks no round renewed run out
	}
}

// TestEnqueuePushesRowsNamedInAnotherCase: MariaDB compares ids by the
// table's collation (utf8mb4_general_ci by default: case, trailing spaces
// and accents aside), so a line whose id differs from its row's only so
// claims that row. It must be pushed at once, with the row's own id, in the
// line's place; it used to stay claimed and unqueued until its queue lease
// ran out.
func TestEnqueuePushesRowsNamedInAnotherCase(t *testing.T) {
	var many, manyLines []string
	for i := 1; i <= 250; i++ { // enough for a batch claimed in parts
		many = append(many, fmt.Sprintf("row-%d", i))
		manyLines = append(manyLines, fmt.Sprintf("ROW-%d", i))
	}
	tests := []struct {
		name        string
		rows, lines []string
		want        []string // the queue's ids, in order
	}{
		{"other case", []string{"abc"}, []string{"ABC"}, []string{"abc"}},
		{"order kept", []string{"a1", "B2", "c3"}, []string{"a1", "b2", "C3"}, []string{"a1", "B2", "c3"}},
		{"both spellings", []string{"abc", "x"}, []string{"ABC", "x", "abc"}, []string{"abc", "x"}},
		{"trailing space", []string{"abc"}, []string{"abc "}, []string{"abc"}},
		{"accent", []string{"café"}, []string{"cafe"}, []string{"café"}},
		{"claimed in parts", many, manyLines, many},
		// The parts run at once: the later spelling, in the second part,
		// must not claim the row before the first one does.
		{"both spellings in parts", many, append(manyLines, "row-1"), many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			for _, id := range tt.rows {
				if _, err := e.db.Exec("INSERT INTO files (id, url) VALUES (?, ?)", id, "http://h/"+id); err != nil {
					t.Fatal(err)
				}
			}
			var in strings.Builder
			for _, id := range tt.lines {
				fmt.Fprintf(&in, `{"id":%q,"url":"http://h/%s"}`+"\n", id, strings.TrimSpace(id))
			}
			o := distributor.EnqueueOptions{Batch: 1000, Claim: store.ClaimOptions{QueueLease: time.Hour, Stale: time.Hour}}
			var out bytes.Buffer
			if err := distributor.Enqueue(ctx, e.st, e.q, o, strings.NewReader(in.String()), &out); err != nil {
				t.Fatal(err)
			}
			queued, err := e.q.Peek(ctx, 10000)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, task := range queued {
				ids = append(ids, task.ID)
			}
			if !slices.Equal(ids, tt.want) {
				i := 0
				for i < min(len(ids), len(tt.want)) && ids[i] == tt.want[i] {
					i++
				}
				t.Errorf("queue holds %d ids, want %d; from #%d on it holds %q, want %q",
					len(ids), len(tt.want), i, ids[i:min(i+3, len(ids))], tt.want[i:min(i+3, len(tt.want))])
			}
			if echoed := strings.Count(out.String(), "\n"); echoed != len(tt.want) {
				t.Errorf("%d lines echoed, want %d:\n%s", echoed, len(tt.want), out.String())
			}
			var claimed int
			if err := e.db.QueryRow("SELECT COUNT(*) FROM files WHERE status = 2").Scan(&claimed); err != nil {
				t.Fatal(err)
			}
			if claimed != len(ids) {
				t.Errorf("%d rows claimed but %d queued: the rest wait for their queue leases", claimed, len(ids))
			}
		})
	}
}

// TestEnqueueRidesOutAKilledClaim: a claim that the server interrupts (a
// DBA's KILL QUERY, a statement time limit) is retried, with a warning
// naming the job, and dl-enqueue goes on: every row claimed and pushed
// once, instead of the round ending with an error.
func TestEnqueueRidesOutAKilledClaim(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newEnv(t)
	if _, err := e.db.Exec("INSERT INTO files (id, url) SELECT seq, CONCAT('http://h/', seq) FROM seq_1_to_3"); err != nil {
		t.Fatal(err)
	}
	in := `{"id":"1","url":"http://h/1"}` + "\n" + `{"id":"2","url":"http://h/2"}` + "\n" + `{"id":"3","url":"http://h/3"}` + "\n"
	logs := testenv.CaptureLogs(t)
	var out bytes.Buffer
	o := distributor.EnqueueOptions{Batch: 10, RenewMax: 1000, Claim: store.ClaimOptions{QueueLease: time.Minute, Stale: time.Minute}}
	err := testenv.InterruptWhileLocked(t, e.db, "files", true, logs, `msg="mysql statement interrupted; retrying" job="claim `, // the lines may come in more than one batch
		func() error { return distributor.Enqueue(ctx, e.st, e.q, o, strings.NewReader(in), &out) })
	if err != nil {
		t.Fatalf("dl-enqueue after a KILL QUERY: %v", err)
	}
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Errorf("enqueued %d, want 3", n)
	}
	queued, _ := e.rdb.LRange(ctx, e.keys.Queue, 0, -1).Result()
	ids := map[string]bool{}
	for _, line := range queued {
		tk, err := record.ParseTask([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		ids[tk.ID] = true
	}
	if len(queued) != 3 || len(ids) != 3 {
		t.Errorf("queue holds %q, want the 3 tasks once each", queued)
	}
	var claimed int
	if err := e.db.QueryRow("SELECT COUNT(*) FROM files WHERE status = 2").Scan(&claimed); err != nil || claimed != 3 {
		t.Errorf("%d rows claimed (%v), want 3", claimed, err)
	}
}
