// Package groupsync makes writes durable in groups (group commit): many
// writers that each need a sync of the same thing — a directory, a
// filesystem — share one.
package groupsync

import (
	"sync"
)

// Group syncs in groups, one group per key (a directory, a filesystem). A
// writer that has renamed its file into place needs a sync of its key that
// began after the rename; one sync serves every writer that was waiting on
// the key when it began. While one sync of a key runs, the writers that
// finish meanwhile queue behind it and share the next one, so many writers
// finishing at once cost a few syncs instead of one each, and nothing waits
// for a timer.
type Group[K comparable] struct {
	mu     sync.Mutex
	groups map[K]*groupState
	// Run is the sync itself. It may be replaced before the first Sync
	// (tests count or fail calls through it).
	Run func(K) error
}

// groupState is one key's group commit. Its fields are guarded by
// Group.mu.
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

// New returns a Group whose syncs call run.
func New[K comparable](run func(K) error) *Group[K] {
	return &Group[K]{groups: map[K]*groupState{}, Run: run}
}

// Sync returns once a sync of key that began after the call has ended, with
// that sync's error.
func (s *Group[K]) Sync(key K) error {
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
		err := s.Run(key)
		s.mu.Lock()
		g.running = false
		fl.done, fl.err = true, err
		g.cond.Broadcast()
	}
	return fl.err
}
