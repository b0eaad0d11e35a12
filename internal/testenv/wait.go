package testenv

import (
	"fmt"
	"testing"
	"time"
)

// Eventually checks cond every tick until it holds, and fails the test when
// timeout passes first. format and args say what was awaited.
func Eventually(t testing.TB, timeout, tick time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("testenv: still waiting after %v for: %s", timeout, fmt.Sprintf(format, args...))
		}
		time.Sleep(tick)
	}
}
