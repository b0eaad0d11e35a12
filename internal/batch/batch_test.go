package batch

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name  string
		input []int
		max   int
		want  [][]int // when all input is queued before Run starts
	}{
		{"empty", nil, 3, nil},
		{"one", []int{1}, 3, [][]int{{1}}},
		{"exact", []int{1, 2, 3}, 3, [][]int{{1, 2, 3}}},
		{"split", []int{1, 2, 3, 4, 5, 6, 7}, 3, [][]int{{1, 2, 3}, {4, 5, 6}, {7}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := make(chan int, len(tc.input))
			for _, v := range tc.input {
				in <- v
			}
			close(in)
			var got [][]int
			err := Run(context.Background(), in, tc.max, 0, func(b []int) error {
				got = append(got, append([]int(nil), b...))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("batches %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRunTrickleIsNotHeld(t *testing.T) {
	in := make(chan int)
	got := make(chan []int)
	go Run(context.Background(), in, 100, 0, func(b []int) error { //nolint:errcheck
		got <- append([]int(nil), b...)
		return nil
	})
	for i := 0; i < 3; i++ {
		in <- i
		if b := <-got; len(b) != 1 || b[0] != i {
			t.Fatalf("batch %v, want [%d] at once", b, i)
		}
	}
	close(in)
}

func TestRunStopsOnError(t *testing.T) {
	in := make(chan int, 10)
	for i := 0; i < 10; i++ {
		in <- i
	}
	boom := errors.New("boom")
	calls := 0
	err := Run(context.Background(), in, 2, 0, func([]int) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("err %v after %d calls, want boom after 1", err, calls)
	}
}

// TestRunLinger: with a linger, values that trickle in join the batch that
// is waiting, until it is full or the input ends; neither waits for the
// linger (an hour here) to run out.
func TestRunLinger(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close bool
		want  []int
	}{
		{"full batch goes at once", false, []int{0, 1, 2}},
		{"end of input flushes at once", true, []int{0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := make(chan int)
			got := make(chan []int, 1)
			done := make(chan error, 1)
			go func() {
				done <- Run(context.Background(), in, 3, time.Hour, func(b []int) error {
					got <- append([]int(nil), b...)
					return nil
				})
			}()
			n := len(tc.want)
			for i := range n {
				in <- i
				time.Sleep(10 * time.Millisecond) // a trickle, not a burst
			}
			if tc.close {
				close(in)
			}
			select {
			case b := <-got:
				if !reflect.DeepEqual(b, tc.want) {
					t.Fatalf("batch %v, want %v", b, tc.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the batch waited for the linger")
			}
			if !tc.close {
				close(in)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRunLingerEnds: a batch that stays short goes when the linger ends.
func TestRunLingerEnds(t *testing.T) {
	in := make(chan int, 1)
	got := make(chan []int, 1)
	go Run(context.Background(), in, 100, 20*time.Millisecond, func(b []int) error { //nolint:errcheck
		got <- append([]int(nil), b...)
		return nil
	})
	in <- 7
	select {
	case b := <-got:
		if !reflect.DeepEqual(b, []int{7}) {
			t.Fatalf("batch %v, want [7]", b)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a short batch was held past its linger")
	}
	close(in)
}
