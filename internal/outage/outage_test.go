package outage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
)

func TestRetryLogsOncePerOutage(t *testing.T) {
	var logs bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(old)

	down := errors.New("connection refused")
	calls := 0
	err := Retry(context.Background(), "mysql", func(error) bool { return true }, func() error {
		calls++
		if calls < 4 {
			return down
		}
		return nil
	})
	if err != nil || calls != 4 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	if n := strings.Count(logs.String(), "unavailable"); n != 1 {
		t.Fatalf("%d outage lines, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "mysql is back") {
		t.Fatalf("no recovery line:\n%s", logs.String())
	}
}

func TestRetryStopsOnPermanentError(t *testing.T) {
	bad := errors.New("syntax error")
	calls := 0
	err := Retry(context.Background(), "mysql", func(error) bool { return false }, func() error { calls++; return bad })
	if !errors.Is(err, bad) || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

func TestRetryStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Retry(ctx, "redis", func(error) bool { return true }, func() error {
		calls++
		if calls == 2 {
			cancel()
		}
		return io.EOF
	})
	if err == nil || calls > 3 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

func TestNetwork(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("ERR syntax"), false},
		{context.Canceled, false},
		{io.EOF, true},
		{fmt.Errorf("push: %w", syscall.ECONNREFUSED), true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNRESET}, true},
		{net.ErrClosed, true},
	}
	for _, tc := range tests {
		if got := Network(tc.err); got != tc.want {
			t.Errorf("Network(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
