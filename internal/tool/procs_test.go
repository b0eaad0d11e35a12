package tool

import (
	"runtime"
	"testing"
)

func TestOneProcessor(t *testing.T) {
	for _, tc := range []struct {
		name, env string
		before    int
		want      int
	}{
		{"unset", "", 4, 1},
		{"set by the user", "3", 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
			t.Setenv("GOMAXPROCS", tc.env)
			runtime.GOMAXPROCS(tc.before) // what the runtime made of the environment
			OneProcessor()
			if got := runtime.GOMAXPROCS(0); got != tc.want {
				t.Fatalf("GOMAXPROCS %d, want %d", got, tc.want)
			}
		})
	}
}
