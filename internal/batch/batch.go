// Package batch groups a stream into batches so that a tool makes one round
// trip for many lines, while no line waits longer than the round trip already
// in progress.
package batch

import "context"

// Run reads in until it is closed and calls fn with batches of at most max
// values. It never waits to fill a batch: whatever arrived while the previous
// fn call ran forms the next batch (group commit). A trickle therefore goes
// through one line at a time with no delay, and a flood forms full batches.
// fn's error stops Run; fn must not keep the slice.
func Run[T any](ctx context.Context, in <-chan T, max int, fn func([]T) error) error {
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
	fill:
		for len(buf) < max {
			select {
			case v, ok := <-in:
				if !ok {
					closed = true
					break fill
				}
				buf = append(buf, v)
			default:
				break fill
			}
		}
		if err := fn(buf); err != nil {
			return err
		}
		if closed {
			return nil
		}
	}
}
