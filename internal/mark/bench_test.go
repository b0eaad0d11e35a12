package mark_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/mark"
	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/testenv"
)

// BenchmarkRun is dl-mark end to end on real MariaDB and Redis: result
// lines in, rows marked, result keys set, lines echoed. One op is one
// result. It reports MySQL statements per result (MariaDB's session
// counter, the pool held to one connection) beside allocations:
//
//	go test -run '^$' -bench Run -benchtime 20000x -benchmem -cpuprofile mark.prof ./internal/mark
func BenchmarkRun(b *testing.B) {
	ctx := context.Background()
	redisURL, prefix, _ := testenv.Redis(b)
	st, q, db := open(b, redisURL, queue.NewKeys(prefix+"queue", prefix))

	tasks := make([]record.Task, b.N)
	var sb strings.Builder
	for i := 0; i < b.N; i += 2000 {
		sb.Reset()
		sb.WriteString("INSERT INTO files (id, url) VALUES ")
		for j := i; j < min(i+2000, b.N); j++ {
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
	var lines bytes.Buffer
	for i := 0; i < b.N; i += 1000 {
		got, err := st.Claim(ctx, tasks[i:min(i+1000, b.N)], store.ClaimOptions{QueueLease: 30 * time.Minute, Stale: 30 * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range got {
			line, err := json.Marshal(record.Result{ID: t.ID, URL: t.URL, Token: t.Token, Outcome: record.Done,
				Path: "/data/abc/" + t.ID, Bytes: 4096, SHA256: strings.Repeat("ab", 32), HTTP: 200, Duration: 0.01, Attempt: 0})
			if err != nil {
				b.Fatal(err)
			}
			lines.Write(append(line, '\n'))
		}
	}
	st.DB().SetMaxOpenConns(1)
	before := benchQuestions(b, st.DB())
	b.ReportAllocs()
	b.ResetTimer()
	err := mark.Run(ctx, st, q, mark.Options{Batch: 500, Retry: store.RetryPolicy{MaxAttempts: 5, Base: 30 * time.Second, Max: time.Hour}},
		&lines, io.Discard)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	after := benchQuestions(b, st.DB())
	b.ReportMetric(float64(after-before-1)/float64(b.N), "stmts/row")
	var done int
	if err := db.QueryRow("SELECT COUNT(*) FROM files WHERE status = 1").Scan(&done); err != nil || done != b.N {
		b.Fatalf("%d of %d rows done: %v", done, b.N, err)
	}
}

func benchQuestions(b *testing.B, db *sql.DB) int64 {
	b.Helper()
	var name string
	var n int64
	if err := db.QueryRow("SHOW SESSION STATUS LIKE 'Questions'").Scan(&name, &n); err != nil {
		b.Fatal(err)
	}
	return n
}
