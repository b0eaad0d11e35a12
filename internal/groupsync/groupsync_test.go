package groupsync

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGroupsCallers holds the first fsync of a directory open while
// many callers arrive: they must all wait for, and share, one more fsync that
// begins after the held one ends, not ride on the held one (which may have
// begun before their rename).
func TestGroupsCallers(t *testing.T) {
	s := New(func(string) error { return nil })
	var calls atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	s.Run = func(dir string) error {
		n := calls.Add(1)
		started <- struct{}{}
		if n == 1 {
			<-release
		}
		return nil
	}
	first := make(chan error, 1)
	go func() { first <- s.Sync("d") }()
	<-started // the first fsync is running and held

	const callers = 20
	var wg sync.WaitGroup
	var returned atomic.Int32
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Sync("d"); err != nil {
				t.Error(err)
			}
			returned.Add(1)
		}()
	}
	// Wait until every caller has queued; none may return on the held fsync.
	deadline := time.Now().Add(30 * time.Second)
	for queued := 0; queued != callers+1; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d callers queued", queued, callers+1)
		}
		time.Sleep(time.Millisecond)
		s.mu.Lock()
		if d := s.groups["d"]; d != nil {
			queued = d.users
		}
		s.mu.Unlock()
	}
	if n := returned.Load(); n != 0 {
		t.Fatalf("%d callers returned while the fsync that began before them still ran", n)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// 1 held + at least 1 for the callers; with all 20 queued before the
	// release, exactly one more.
	if n := calls.Load(); n != 2 {
		t.Errorf("%d fsyncs for 1 + %d callers queued behind one, want 2", n, callers)
	}
	if len(s.groups) != 0 {
		t.Errorf("%d directories still tracked after every caller returned", len(s.groups))
	}
}

// TestSeparatesKeys: directories do not wait for each other,
// and an fsync error reaches the callers it served.
func TestSeparatesKeys(t *testing.T) {
	s := New(func(string) error { return nil })
	release := make(chan struct{})
	boom := errors.New("boom")
	s.Run = func(dir string) error {
		switch dir {
		case "slow":
			<-release
			return nil
		case "bad":
			return boom
		}
		return nil
	}
	slow := make(chan error, 1)
	go func() { slow <- s.Sync("slow") }()
	if err := s.Sync("fast"); err != nil {
		t.Fatalf("fast: %v", err)
	}
	if err := s.Sync("bad"); !errors.Is(err, boom) {
		t.Fatalf("bad: got %v, want %v", err, boom)
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("slow: %v", err)
	}
}
