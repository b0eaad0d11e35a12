package mark

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/dlkit/dl/internal/tool"
)

// A stop while waiting for the services exits 0 only when no result waits
// in the input: results that were never recorded must not look recorded.
func TestUnrecorded(t *testing.T) {
	stopped := &tool.StoppedError{Service: "mysql", Err: errors.New("connection refused")}
	other := errors.New("access denied")
	tests := []struct {
		name        string
		input       string
		err         error
		wantStopped bool // still the StoppedError, for an exit 0
		wantSame    bool // returned as it is
	}{
		{"stopped, results waiting", `{"id":"a"}` + "\n", stopped, false, false},
		{"stopped, input ended empty", "", stopped, true, true},
		{"another error, results waiting", `{"id":"a"}` + "\n", other, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, in := WatchInput(context.Background(), strings.NewReader(tc.input))
			<-in.(afterPeek).peeked // the look at the first byte is over
			got := Unrecorded(tc.err, in)
			var s *tool.StoppedError
			if errors.As(got, &s) != tc.wantStopped {
				t.Errorf("Unrecorded(%v) = %v: a stop (exit 0) is %v, want %v", tc.err, got, !tc.wantStopped, tc.wantStopped)
			}
			if (got == tc.err) != tc.wantSame {
				t.Errorf("Unrecorded(%v) = %v, want it returned as it is: %v", tc.err, got, tc.wantSame)
			}
			if !tc.wantStopped && !tc.wantSame && !strings.Contains(got.Error(), "not recorded") {
				t.Errorf("error %q does not say the results are not recorded", got)
			}
		})
	}
	// Before the first byte or the end has come, nothing is lost yet.
	pr, pw := io.Pipe()
	defer pw.Close()
	_, in := WatchInput(context.Background(), pr)
	if got := Unrecorded(stopped, in); got != error(stopped) {
		t.Errorf("with no input yet: %v, want the stop as it is", got)
	}
}
