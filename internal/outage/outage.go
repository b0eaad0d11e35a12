// Package outage rides out a service that is briefly unavailable (a restart,
// a failover): it retries with exponential backoff and logs one line when the
// outage starts and one when it ends, never one per attempt.
package outage

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Retry calls fn until it succeeds, fails with an error that transient does
// not accept, or ctx is done. service names what is down in the log line.
func Retry(ctx context.Context, service string, transient func(error) bool, fn func() error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = 0 // an operator restarts the service; we wait for it
	var since time.Time
	err := backoff.RetryNotify(func() error {
		err := fn()
		if err != nil && !transient(err) {
			return backoff.Permanent(err)
		}
		return err
	}, backoff.WithContext(b, ctx), func(err error, _ time.Duration) {
		if since.IsZero() {
			since = time.Now()
			slog.Warn(service+" unavailable; retrying until it returns", "err", err)
		}
	})
	if !since.IsZero() && err == nil {
		slog.Info(service+" is back", "after", time.Since(since).Round(time.Millisecond))
	}
	return err
}

// Network tells whether err is a connection-level failure (refused, reset,
// timed out, closed) — the kind a restart or failover causes.
func Network(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}
