package main

import "testing"

// A results directory inside the scratch one would be removed with it.
func TestWithin(t *testing.T) {
	tests := []struct {
		path, dir string
		want      bool
	}{
		{"/tmp/w", "/tmp/w", true},
		{"/tmp/w/out", "/tmp/w", true},
		{"/tmp/w/../out", "/tmp/w", false},
		{"/tmp/wout", "/tmp/w", false},
		{"bench", "/nonexistent/scratch", false},
	}
	for _, tc := range tests {
		if got := within(tc.path, tc.dir); got != tc.want {
			t.Errorf("within(%q, %q) = %v, want %v", tc.path, tc.dir, got, tc.want)
		}
	}
}
