package store

import (
	"testing"
	"time"
)

func TestNextLockWait(t *testing.T) {
	for _, tc := range []struct {
		name           string
		lockWait, took time.Duration
		want           time.Duration
	}{
		{"timed out waiting to start: no work lost", 2 * time.Second, 2100 * time.Millisecond, 2 * time.Second},
		{"a build of 100 s lost at its end", 2 * time.Second, 100 * time.Second, 10 * time.Second},
		{"a shorter loss after a longer one keeps the longer wait", 10 * time.Second, 12 * time.Second, 10 * time.Second},
		{"a build of hours waits at most the bound", 2 * time.Second, 5 * time.Hour, alterMaxLockWait},
	} {
		if got := nextLockWait(tc.lockWait, tc.took); got != tc.want {
			t.Errorf("%s: nextLockWait(%v, %v) = %v, want %v", tc.name, tc.lockWait, tc.took, got, tc.want)
		}
	}
}
