package batch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"testing"
	"time"
)

// TestLinesStopsWhileInputIsOpen: when Handle fails, or a bad line is all
// there is, Run must not wait for an end of input that a live upstream never
// sends (dl-fetch | dl-mark: a dl-mark stuck there leaves dl-fetch renewing
// leases forever).
func TestLinesStopsWhileInputIsOpen(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name   string
		handle func(context.Context, []int) ([]int, error)
		lines  string
		want   error // nil: Run must still be running
	}{
		{name: "handle fails on the first batch", lines: "1\n2\n",
			handle: func(context.Context, []int) ([]int, error) { return nil, boom }, want: boom},
		{name: "handle fails with the reader blocked on a full batch channel", lines: "1\n2\n3\n4\n5\n6\n",
			handle: func(context.Context, []int) ([]int, error) { return nil, boom }, want: boom},
		{name: "lines handled, input still open", lines: "1\n2\n",
			handle: func(_ context.Context, b []int) ([]int, error) { return b, nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			go pw.Write([]byte(tt.lines)) // the pipe stays open after it
			var out bytes.Buffer
			l := Lines[int, int]{Kind: "number", Max: 1,
				Parse:  func(b []byte) (int, error) { return strconv.Atoi(string(bytes.TrimSpace(b))) },
				Handle: tt.handle}
			wait := 10 * time.Second // for Run to stop
			if tt.want == nil {
				wait = 300 * time.Millisecond // in which Run must not stop
			}
			done := make(chan error, 1)
			go func() { done <- l.Run(context.Background(), context.Background(), pr, &out) }()
			select {
			case err := <-done:
				if tt.want == nil || !errors.Is(err, tt.want) {
					t.Fatalf("Run returned %v with its input open; want %v", err, tt.want)
				}
			case <-time.After(wait):
				if tt.want != nil {
					t.Fatalf("Run still running 10 s after Handle failed, its input open")
				}
				pw.Close()
				if err := <-done; err != nil || out.String() != "1\n2\n" {
					t.Fatalf("Run returned %v at the end of its input, wrote %q; want nil, \"1\\n2\\n\"", err, out.String())
				}
			}
		})
	}
}
