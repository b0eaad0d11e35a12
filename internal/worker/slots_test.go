package worker

import (
	"context"
	"testing"
)

func TestSlotsGather(t *testing.T) {
	for _, tc := range []struct {
		name          string
		idle, held    int
		min           int
		busyFor       int // busy() answers true this many times
		want, leftIdl int
	}{
		{"enough idle: takes up to min", 10, 1, 4, 100, 4, 7},
		{"transfers may run dry: stops at once", 10, 1, 4, 0, 1, 10},
		{"runs dry after two more", 10, 1, 8, 2, 3, 8},
		{"already holds min", 10, 5, 4, 100, 5, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSlots(tc.idle, make(chan struct{}))
			calls := 0
			got := s.gather(context.Background(), tc.held, tc.min, func() bool { calls++; return calls <= tc.busyFor })
			if got != tc.want || len(s.idle) != tc.leftIdl {
				t.Errorf("gather holds %d with %d idle left, want %d and %d", got, len(s.idle), tc.want, tc.leftIdl)
			}
		})
	}
}

// TestSlotsGatherStops: a gather waiting for transfers to go idle returns
// when the context ends or the engine fails.
func TestSlotsGatherStops(t *testing.T) {
	failed := make(chan struct{})
	s := newSlots(0, failed)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := s.gather(ctx, 1, 4, func() bool { return true }); got != 1 {
		t.Errorf("cancelled gather holds %d, want 1", got)
	}
	close(failed)
	if got := s.gather(context.Background(), 2, 4, func() bool { return true }); got != 2 {
		t.Errorf("gather after a failure holds %d, want 2", got)
	}
}
