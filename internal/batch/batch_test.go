package batch

import (
	"context"
	"errors"
	"reflect"
	"testing"
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
			err := Run(context.Background(), in, tc.max, func(b []int) error {
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
	go Run(context.Background(), in, 100, func(b []int) error { //nolint:errcheck
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
	err := Run(context.Background(), in, 2, func([]int) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("err %v after %d calls, want boom after 1", err, calls)
	}
}
