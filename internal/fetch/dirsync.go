package fetch

import (
	"sync"
)

// dirSyncer makes directory entries durable in groups. A transfer that has
// renamed its file into a directory needs an fsync of that directory that
// began after the rename; one fsync serves every transfer that was waiting
// on the directory when it began. While one fsync of a directory runs, the
// transfers that finish into it queue behind it and share the next one, so
// many transfers finishing into one directory (the flat layout, or the
// download directory that new shard directories are made in) cost a few
// directory fsyncs instead of one each, and nothing waits for a timer.
type dirSyncer struct {
	mu   sync.Mutex
	dirs map[string]*dirState
	// syncDir is the fsync itself; tests count calls through it.
	syncDir func(dir string) error
}

// dirState is one directory's group commit. Its fields are guarded by
// dirSyncer.mu.
type dirState struct {
	cond    *sync.Cond
	running bool    // an fsync of the directory is in progress
	next    *flight // the fsync that starts when the running one ends; nil: none wanted yet
	users   int     // callers inside sync for this directory
}

// flight is one fsync of a directory and its outcome.
type flight struct {
	done bool
	err  error
}

func newDirSyncer() *dirSyncer {
	return &dirSyncer{dirs: map[string]*dirState{}, syncDir: syncDir}
}

// sync returns once an fsync of dir that began after the call has ended,
// with that fsync's error.
func (s *dirSyncer) sync(dir string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dirs[dir]
	if d == nil {
		d = &dirState{cond: sync.NewCond(&s.mu)}
		s.dirs[dir] = d
	}
	d.users++
	defer func() {
		if d.users--; d.users == 0 {
			delete(s.dirs, dir)
		}
	}()
	// The running fsync, if any, may have begun before our rename: join the
	// one after it.
	fl := d.next
	if fl == nil {
		fl = &flight{}
		d.next = fl
	}
	for !fl.done {
		if d.running {
			d.cond.Wait()
			continue
		}
		// Nothing runs and our flight is not done, so it has not begun:
		// it is still d.next, and we run it for everyone who joined it.
		d.running, d.next = true, nil
		s.mu.Unlock()
		err := s.syncDir(dir)
		s.mu.Lock()
		d.running = false
		fl.done, fl.err = true, err
		d.cond.Broadcast()
	}
	return fl.err
}
