package fetch

import (
	"sync"
)

// groupSync makes writes durable in groups, one group per key (a directory,
// a filesystem). A transfer that has renamed its file into place needs a
// sync of its key that began after the rename; one sync serves every
// transfer that was waiting on the key when it began. While one sync of a
// key runs, the transfers that finish meanwhile queue behind it and share
// the next one, so many transfers finishing at once cost a few syncs
// instead of one each, and nothing waits for a timer.
type groupSync[K comparable] struct {
	mu     sync.Mutex
	groups map[K]*groupState
	// run is the sync itself; tests count calls through it.
	run func(K) error
}

// groupState is one key's group commit. Its fields are guarded by
// groupSync.mu.
type groupState struct {
	cond    *sync.Cond
	running bool    // a sync of the key is in progress
	next    *flight // the sync that starts when the running one ends; nil: none wanted yet
	users   int     // callers inside sync for this key
}

// flight is one sync and its outcome.
type flight struct {
	done bool
	err  error
}

func newGroupSync[K comparable](run func(K) error) *groupSync[K] {
	return &groupSync[K]{groups: map[K]*groupState{}, run: run}
}

// newDirSyncer group-commits directory fsyncs: the directory entries of
// renames and new files.
func newDirSyncer() *groupSync[string] {
	return newGroupSync(syncDir)
}

// sync returns once a sync of key that began after the call has ended, with
// that sync's error.
func (s *groupSync[K]) sync(key K) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[key]
	if g == nil {
		g = &groupState{cond: sync.NewCond(&s.mu)}
		s.groups[key] = g
	}
	g.users++
	defer func() {
		if g.users--; g.users == 0 {
			delete(s.groups, key)
		}
	}()
	// The running sync, if any, may have begun before our rename: join the
	// one after it.
	fl := g.next
	if fl == nil {
		fl = &flight{}
		g.next = fl
	}
	for !fl.done {
		if g.running {
			g.cond.Wait()
			continue
		}
		// Nothing runs and our flight is not done, so it has not begun:
		// it is still g.next, and we run it for everyone who joined it.
		g.running, g.next = true, nil
		s.mu.Unlock()
		err := s.run(key)
		s.mu.Lock()
		g.running = false
		fl.done, fl.err = true, err
		g.cond.Broadcast()
	}
	return fl.err
}
