package testenv

import (
	"fmt"
	"runtime"
	"testing"
)

// fakeTB records a helper's Fatalf instead of failing the real test, so the
// failure paths (unreachable server, timeout) can be checked. Cleanups still
// go to the real test.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Fatal(args ...any) {
	f.fatal = fmt.Sprint(args...)
	runtime.Goexit()
}

// fatalOf runs fn on its own goroutine (Fatalf ends it) and returns the
// failure message, or "" if fn returned normally.
func fatalOf(t *testing.T, fn func(tb testing.TB)) string {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.fatal
}
