package fetch

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/layout"
	"github.com/dlkit/dl/internal/record"
)

// TestTransfersLimit: no more than Transfers requests reach servers at once,
// however many Fetch calls run.
func TestTransfersLimit(t *testing.T) {
	var now, peak atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		defer now.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		w.Write(content(1000, 1))
	}))
	defer srv.Close()
	f := newFetcher(t, Options{Transfers: 2})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := f.Fetch(context.Background(), record.Task{ID: string(rune('a' + i)), URL: srv.URL + "/f"})
			checkDone(t, res, content(1000, 1))
		}()
	}
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Errorf("%d requests at once with Transfers 2, want 2", p)
	}
}

// TestTransferSlotFreedBeforeFinish: a transfer whose file is still being
// synced has given its slot back, so with Transfers 1 the next download
// runs meanwhile.
func TestTransferSlotFreedBeforeFinish(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(content(1000, 2))
	}))
	defer srv.Close()
	// Sharded, so that a and b go to different directories: b must not
	// share a's (held) directory sync.
	f := newFetcher(t, Options{Transfers: 1, Fsync: true, FsyncEach: true, Layout: layout.Sharded})
	a, b := record.Task{ID: "a", URL: srv.URL + "/a"}, record.Task{ID: "b", URL: srv.URL + "/b"}
	blockedDir := filepath.Dir(f.paths(a).final)
	if filepath.Dir(f.paths(b).final) == blockedDir {
		t.Fatal("pick tasks in different shards")
	}
	release := make(chan struct{})
	inSync := make(chan struct{}, 1)
	var first atomic.Bool
	f.syncer.Run = func(dir string) error {
		if dir == blockedDir && first.CompareAndSwap(false, true) {
			inSync <- struct{}{}
			<-release // a's directory sync hangs until b is done
		}
		return syncDir(dir)
	}
	resA := make(chan record.Result, 1)
	go func() { resA <- f.Fetch(context.Background(), a) }()
	select {
	case <-inSync:
	case <-time.After(30 * time.Second):
		t.Fatal("a never reached its directory sync")
	}
	resB := make(chan record.Result, 1)
	go func() { resB <- f.Fetch(context.Background(), b) }()
	select {
	case r := <-resB:
		checkDone(t, r, content(1000, 2))
	case <-time.After(30 * time.Second):
		t.Fatal("b waited for a's sync: the transfer slot was held through finishing")
	}
	close(release)
	checkDone(t, <-resA, content(1000, 2))
}

// TestStopBeforeTransferSlot: a task that waits for a transfer slot when
// the stop comes is not started: FetchUnlessStopped says so and asks the
// origin nothing, while the transfer holding the slot runs to its end.
func TestStopBeforeTransferSlot(t *testing.T) {
	var requests atomic.Int32
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		arrived <- struct{}{}
		<-release
		w.Write([]byte("x"))
	}))
	defer srv.Close()
	f := newFetcher(t, Options{Transfers: 1})
	holder := make(chan record.Result, 1)
	go func() { holder <- f.Fetch(context.Background(), record.Task{ID: "holder", URL: srv.URL + "/a"}) }()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the holder's request never came")
	}
	stop, cancel := context.WithCancel(context.Background())
	waited := make(chan bool, 1)
	go func() {
		_, started := f.FetchUnlessStopped(stop, context.Background(), record.Task{ID: "waiter", URL: srv.URL + "/b"})
		waited <- started
	}()
	cancel()
	select {
	case started := <-waited:
		if started {
			t.Error("a task still waiting for a transfer slot at the stop was started")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting task did not end at the stop")
	}
	close(release)
	checkDone(t, <-holder, []byte("x"))
	if n := requests.Load(); n != 1 {
		t.Errorf("origin saw %d requests; want only the holder's", n)
	}
}
