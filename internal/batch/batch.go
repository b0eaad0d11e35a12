// Package batch groups a stream into batches so that a tool makes one round
// trip for many lines, while no line waits longer than the round trip already
// in progress plus a short, bounded linger.
package batch

import (
	"context"
	"time"
)

// Run reads in until it is closed and calls fn with batches of at most max
// values. Whatever arrived while the previous fn call ran forms the next
// batch (group commit), so a flood forms full batches. With a linger, a
// batch that is not full waits up to that long for more values: a steady
// stream of single values (results trickling in from many slow transfers)
// then costs one round trip per linger instead of one per value, and no
// value waits longer than the linger. The end of in ends the wait at once.
// fn's error stops Run; fn must not keep the slice.
func Run[T any](ctx context.Context, in <-chan T, max int, linger time.Duration, fn func([]T) error) error {
	buf := make([]T, 0, max)
	for {
		select {
		case v, ok := <-in:
			if !ok {
				return nil
			}
			buf = append(buf[:0], v)
		case <-ctx.Done():
			return ctx.Err()
		}
		closed := false
		var expire <-chan time.Time
		var timer *time.Timer
		if linger > 0 {
			timer = time.NewTimer(linger)
			expire = timer.C
		}
	fill:
		for len(buf) < max {
			var v T
			var ok bool
			// What has arrived goes in first; only then does the batch
			// wait, if it lingers at all.
			select {
			case v, ok = <-in:
			default:
				if expire == nil {
					break fill
				}
				select {
				case v, ok = <-in:
				case <-expire:
					break fill
				case <-ctx.Done():
					timer.Stop()
					return ctx.Err()
				}
			}
			if !ok {
				closed = true
				break fill
			}
			buf = append(buf, v)
		}
		if timer != nil {
			timer.Stop()
		}
		if err := fn(buf); err != nil {
			return err
		}
		if closed {
			return nil
		}
	}
}
