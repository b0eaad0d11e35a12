package worker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/fetch"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/testenv"
	"github.com/dlkit/dl/internal/tool"
)

// TestTaskDeliveredAgainToItsWorkerKeepsItsLease: a worker whose lease ran
// out while it downloaded (cut off from MySQL for longer than a lease, or
// paused) may pop its own task again, claimed anew. The first transfer's
// result, for the old claim, must not end the renewal of the new one: it
// did, since the held tasks were keyed by id alone, so the new claim ran out
// too while its transfer went on, and the row was handed out and downloaded
// once more, each such delivery counting towards the poison limit.
func TestTaskDeliveredAgainToItsWorkerKeepsItsLease(t *testing.T) {
	ctx := context.Background()
	db, st, q := openQueue(ctx, t)

	// Each request waits for its own gate.
	arrived := make(chan int, 4)
	gates := []chan struct{}{make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})}
	reqs := make(chan int, 1)
	reqs <- 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := <-reqs
		reqs <- i + 1
		arrived <- i
		select {
		case <-gates[min(i, len(gates)-1)]:
		case <-r.Context().Done():
			return
		}
		w.Write([]byte("the file's bytes"))
	}))
	defer srv.Close()
	defer func() {
		for _, g := range gates {
			select {
			case <-g:
			default:
				close(g)
			}
		}
	}()

	task := record.Task{ID: "a", URL: srv.URL + "/a.bin"}
	if _, err := db.Exec("INSERT INTO files (id, url) VALUES (?, ?)", task.ID, task.URL); err != nil {
		t.Fatal(err)
	}
	claim := func() record.Task {
		t.Helper()
		got, err := st.Claim(ctx, []record.Task{task}, store.ClaimOptions{QueueLease: time.Minute, Stale: time.Minute})
		if err != nil || len(got) != 1 {
			t.Fatalf("claimed %d: %v", len(got), err)
		}
		if err := q.Push(ctx, got); err != nil {
			t.Fatal(err)
		}
		return got[0]
	}
	first := claim()

	f, err := fetch.New(fetch.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := new(testenv.SyncBuffer)
	done := make(chan error, 1)
	const lease = 3 * time.Second // renewed every second
	go func() {
		hard := context.Background()
		o := QueueOptions{Options: Options{Concurrency: 2}, Mode: Forever, Lease: lease, Worker: "w", Poll: 50 * time.Millisecond}
		done <- RunQueue(tool.WithHard(hard, hard), f, st, q, o, out)
	}()
	if i := receive(t, arrived, "first request"); i != 0 {
		t.Fatalf("request %d first", i)
	}

	// The first claim's lease runs out (no renewal reached MySQL in time)
	// and the distributor claims the row again; the same worker pops it.
	// Renewals of the first claim may come in between: try until the
	// claim takes.
	var second record.Task
	for deadline := time.Now().Add(within); ; {
		if _, err := db.Exec("UPDATE files SET lease_until = NOW(3) - INTERVAL 1 SECOND WHERE id = ?", task.ID); err != nil {
			t.Fatal(err)
		}
		got, err := st.Claim(ctx, []record.Task{task}, store.ClaimOptions{QueueLease: time.Minute, Stale: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 {
			second = got[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the row could not be claimed again")
		}
	}
	if err := q.Push(ctx, []record.Task{second}); err != nil {
		t.Fatal(err)
	}
	if i := receive(t, arrived, "second request"); i != 1 {
		t.Fatalf("request %d second", i)
	}

	// The first transfer ends; its result is for the old claim.
	close(gates[0])
	for deadline := time.Now().Add(within); !strings.Contains(out.String(), first.Token); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no result for the first claim")
		}
	}
	var before time.Time
	if err := db.QueryRow("SELECT lease_until FROM files WHERE id = ? AND claim_token = ?", task.ID, second.Token).Scan(&before); err != nil {
		t.Fatalf("row not held under the second claim: %v", err)
	}
	// The second claim, still downloading, must go on being renewed.
	for deadline := time.Now().Add(3 * lease); ; time.Sleep(50 * time.Millisecond) {
		var now time.Time
		if err := db.QueryRow("SELECT lease_until FROM files WHERE id = ? AND claim_token = ?", task.ID, second.Token).Scan(&now); err != nil {
			t.Fatal(err)
		}
		if now.After(before) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lease of the second claim was not renewed within %s after the first claim's result", 3*lease)
		}
	}

	close(gates[1])
	for deadline := time.Now().Add(within); !strings.Contains(out.String(), second.Token); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no result for the second claim")
		}
	}
	if err := q.SetExitFlag(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := receive(t, done, "end of the run"); err != nil {
		t.Fatalf("run: %v", err)
	}
}
