package config

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/dlkit/dl/internal/outage"
	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/tool"
)

// OpenStore connects to MySQL as the flags say and makes sure the table has
// dl's schema (creating or upgrading it in place). Like all opening, it runs
// under the hard context: a first signal during start-up must not keep
// dl-mark from draining what its upstream already wrote.
func OpenStore(c *cli.Context) (*store.Store, error) {
	st, err := OpenStoreReadOnly(c)
	if err != nil {
		return nil, err
	}
	ctx := tool.Hard(c.Context)
	// Its waits (for another process's upgrade, for a backup's
	// transaction) end with a first signal, as the wait for the server
	// does: a stop, not a failure. An upgrade refused by a read-only
	// server (a failover) or cut by a lost connection is waited out as the
	// server is.
	err = waitFor(c, "mysql", store.IsUnavailable, func() error { return st.EnsureWaiting(ctx, c.Context) })
	if err != nil {
		st.Close()
		if c.Context.Err() != nil && ctx.Err() == nil && errors.Is(err, c.Context.Err()) {
			return nil, &tool.StoppedError{Service: "mysql", Err: err}
		}
		return nil, err
	}
	return st, nil
}

// OpenStoreReadOnly connects to MySQL as the flags say, and leaves the
// table as it finds it: for a tool that only reads (dl-stat), which a
// user allowed only SELECT may run, and which must not create a table
// whose name has a typo.
func OpenStoreReadOnly(c *cli.Context) (*store.Store, error) {
	ctx := tool.Hard(c.Context)
	var st *store.Store
	err := waitFor(c, "mysql", store.IsUnavailable, func() (err error) {
		st, err = store.Open(ctx, c.String(FlagMySQL), c.String(FlagTable))
		return err
	})
	return st, err
}

// OpenQueue connects to Redis as the flags say.
func OpenQueue(c *cli.Context) (*queue.Queue, error) {
	var q *queue.Queue
	err := waitFor(c, "redis", queue.IsUnavailable, func() (err error) {
		q, err = queue.Open(tool.Hard(c.Context), c.String(FlagRedis), queue.NewKeys(c.String(FlagQueue), c.String(FlagPrefix)))
		return err
	})
	return q, err
}

// DialQueue is OpenQueue without waiting for Redis to answer, or failing
// when it does not: for a tool that reports an outage instead of stopping
// on it (dl-stat --watch). A URL it cannot use is still an error.
func DialQueue(c *cli.Context) (*queue.Queue, error) {
	return queue.Dial(c.String(FlagRedis), queue.NewKeys(c.String(FlagQueue), c.String(FlagPrefix)))
}

// waitFor calls open, and again while its service is unavailable, for up
// to --wait-for-services (if the tool has it). Unlike the opening itself,
// the wait ends with a first signal: a unit stopped while its database is
// still away must not wait out its TimeoutStopSec. Such a stop is no
// failure (a *tool.StoppedError, exit 0); the wait running out is, and so is
// a refusal that no wait can mend (a wrong password), stop or not.
func waitFor(c *cli.Context, service string, unavailable func(error) bool, open func() error) error {
	d := c.Duration(FlagWait)
	if d <= 0 {
		return open()
	}
	ctx, cancel := context.WithTimeout(c.Context, d)
	defer cancel()
	var last error
	err := outage.Retry(ctx, service, unavailable, func() error {
		last = open()
		return last
	})
	switch {
	case err == nil || last == nil || ctx.Err() == nil || !unavailable(last):
		return err
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w (waited %v for it)", last, d)
	default:
		return &tool.StoppedError{Service: service, Err: last} // stopped by a signal
	}
}

// Services are a tool's table and queue, opened together.
type Services struct {
	Store *store.Store
	Queue *queue.Queue
}

// OpenServices opens the store, then the queue; Close closes both.
func OpenServices(c *cli.Context) (*Services, error) {
	return openServices(c, OpenStore, OpenQueue)
}

// OpenReader opens the services of a tool that only reads them
// (dl-stat): the store read-only (OpenStoreReadOnly), then the queue,
// only dialled with dialQueue (DialQueue: a Redis that is down makes the
// queue's commands fail, not the opening).
func OpenReader(c *cli.Context, dialQueue bool) (*Services, error) {
	openQueue := OpenQueue
	if dialQueue {
		openQueue = DialQueue
	}
	return openServices(c, OpenStoreReadOnly, openQueue)
}

func openServices(c *cli.Context, openStore func(*cli.Context) (*store.Store, error),
	openQueue func(*cli.Context) (*queue.Queue, error)) (*Services, error) {
	st, err := openStore(c)
	if err != nil {
		return nil, err
	}
	q, err := openQueue(c)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Services{Store: st, Queue: q}, nil
}

// Close releases both connections.
func (s *Services) Close() {
	s.Queue.Close()
	s.Store.Close()
}
