package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/testenv"
)

// The benchmarks here measure the store's statements per row (the cost
// that batching is for) and its allocations per row, one op being one row:
//
//	go test -run '^$' -bench . -benchtime 20000x -benchmem ./internal/store
//
// The pool is held to one connection so that MariaDB's session counter of
// statements ("Questions") sees exactly what the store sent.

const benchClaimBatch = 1000 // dl-enqueue's default --batch
const benchMarkBatch = 500   // dl-mark's default --batch

// benchStore opens a store on a database of the benchmark's own with n
// pending rows, and returns their tasks.
func benchStore(b *testing.B, n int) (*store.Store, []record.Task) {
	b.Helper()
	dsn, db := testenv.MySQL(b)
	st, err := store.Open(context.Background(), dsn, "files")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.Ensure(context.Background()); err != nil {
		b.Fatal(err)
	}
	st.DB().SetMaxOpenConns(1)
	tasks := make([]record.Task, n)
	var sb strings.Builder
	for i := 0; i < n; i += 2000 {
		sb.Reset()
		sb.WriteString("INSERT INTO files (id, url) VALUES ")
		for j := i; j < min(i+2000, n); j++ {
			tasks[j] = record.Task{ID: fmt.Sprintf("r%08d", j), URL: fmt.Sprintf("http://127.0.0.1:9/files/r%08d?size=4096", j)}
			if j > i {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "('%s','%s')", tasks[j].ID, tasks[j].URL)
		}
		if _, err := db.Exec(sb.String()); err != nil {
			b.Fatal(err)
		}
	}
	return st, tasks
}

// questions returns the session's statement count on the store's one
// connection; the SHOW itself counts one.
func questions(tb testing.TB, db *sql.DB) int64 {
	tb.Helper()
	var name string
	var n int64
	if err := db.QueryRow("SHOW SESSION STATUS LIKE 'Questions'").Scan(&name, &n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// statements reports the statements per row that fn sent.
func statements(b *testing.B, db *sql.DB, fn func()) {
	b.Helper()
	before := questions(b, db)
	fn()
	after := questions(b, db)
	b.ReportMetric(float64(after-before-1)/float64(b.N), "stmts/row")
}

func claimAll(b *testing.B, st *store.Store, tasks []record.Task) []record.Task {
	b.Helper()
	var out []record.Task
	for i := 0; i < len(tasks); i += benchClaimBatch {
		got, err := st.Claim(context.Background(), tasks[i:min(i+benchClaimBatch, len(tasks))],
			store.ClaimOptions{QueueLease: 30 * time.Minute, Stale: 30 * time.Minute, MaxDeliveries: 5})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, got...)
	}
	if len(out) != len(tasks) {
		b.Fatalf("claimed %d of %d rows", len(out), len(tasks))
	}
	return out
}

// BenchmarkSelectDue is dl-select: streaming pending rows.
func BenchmarkSelectDue(b *testing.B) {
	st, _ := benchStore(b, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	statements(b, st.DB(), func() {
		n := 0
		err := st.SelectDue(context.Background(), store.SelectOptions{Stale: 30 * time.Minute}, func(record.Task) error { n++; return nil })
		if err != nil || n != b.N {
			b.Fatalf("selected %d of %d rows: %v", n, b.N, err)
		}
	})
}

// BenchmarkClaim is dl-enqueue's MySQL half, in batches of its default size.
func BenchmarkClaim(b *testing.B) {
	st, tasks := benchStore(b, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	statements(b, st.DB(), func() { claimAll(b, st, tasks) })
}

// BenchmarkTake is a queue worker taking what it popped, in pops of 64
// (the benchmark's --concurrency).
func BenchmarkTake(b *testing.B) {
	st, tasks := benchStore(b, b.N)
	claimed := claimAll(b, st, tasks)
	b.ReportAllocs()
	b.ResetTimer()
	statements(b, st.DB(), func() {
		for i := 0; i < len(claimed); i += 64 {
			if _, err := st.Take(context.Background(), claimed[i:min(i+64, len(claimed))], time.Minute, "bench:1", ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMark is dl-mark's MySQL half: done results in batches of its
// default size.
func BenchmarkMark(b *testing.B) {
	st, tasks := benchStore(b, b.N)
	claimed := claimAll(b, st, tasks)
	results := make([]record.Result, len(claimed))
	for i, t := range claimed {
		results[i] = record.Result{ID: t.ID, URL: t.URL, Token: t.Token, Outcome: record.Done, Path: "/data/abc/" + t.ID,
			Bytes: 4096, SHA256: strings.Repeat("ab", 32), HTTP: 200, Duration: 0.01}
	}
	policy := store.RetryPolicy{MaxAttempts: 5, Base: 30 * time.Second, Max: time.Hour}
	b.ReportAllocs()
	b.ResetTimer()
	statements(b, st.DB(), func() {
		for i := 0; i < len(results); i += benchMarkBatch {
			marked, err := st.Mark(context.Background(), results[i:min(i+benchMarkBatch, len(results))], policy)
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range marked {
				if m != store.MarkedDone {
					b.Fatalf("marked %s, want done", m)
				}
			}
		}
	})
}
