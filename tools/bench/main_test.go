package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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

// A replot names the large file's size as the run measured it, from the
// samples of workload 4 or, in a run of the static workloads alone, of 4s:
// not the size of the options the replot is given.
func TestReplotNamesTheLargeFilesSize(t *testing.T) {
	for _, workload := range []string{"big", "big-static"} {
		t.Run(workload, func(t *testing.T) {
			dir := t.TempDir()
			js, err := json.Marshal(results{Quick: true, Reps: 1, Samples: []sample{
				{Workload: workload, Tool: "curl", N: 1, Bytes: 64 << 20, Secs: 1, Rate: 67.1, Unit: "MB/s"},
			}})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "results.json")
			if err := os.WriteFile(path, js, 0o644); err != nil {
				t.Fatal(err)
			}
			var c config
			fullSizes(&c) // the options' size: 1 GiB
			c.out = filepath.Join(dir, "out")
			if err := replotFrom(context.Background(), path, c); err != nil {
				t.Fatal(err)
			}
			md, err := os.ReadFile(filepath.Join(c.out, "results.md"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(md), "| 1 × 64 MiB |") {
				t.Errorf("results.md does not name the 64 MiB file:\n%s", md)
			}
		})
	}
}
