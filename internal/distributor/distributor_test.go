package distributor_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/distributor"
	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/testenv"
)

func TestSelectThenEnqueue(t *testing.T) {
	ctx := context.Background()
	dsn, db := testenv.MySQL(t)
	redisURL, prefix, rdb := testenv.Redis(t)
	st, err := store.Open(ctx, dsn, "files")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	keys := queue.NewKeys(prefix+"download_queue", prefix+"download_")
	q, err := queue.Open(ctx, redisURL, keys)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
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
