package config

import (
	"github.com/urfave/cli/v2"

	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/tool"
)

// OpenStore connects to MySQL as the flags say and makes sure the table has
// dl's schema (creating or upgrading it in place). Like all opening, it runs
// under the hard context: a first signal during start-up must not keep
// dl-mark from draining what its upstream already wrote.
func OpenStore(c *cli.Context) (*store.Store, error) {
	ctx := tool.Hard(c.Context)
	st, err := store.Open(ctx, c.String(FlagMySQL), c.String(FlagTable))
	if err != nil {
		return nil, err
	}
	if err := st.Ensure(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// OpenQueue connects to Redis as the flags say.
func OpenQueue(c *cli.Context) (*queue.Queue, error) {
	return queue.Open(tool.Hard(c.Context), c.String(FlagRedis), queue.NewKeys(c.String(FlagQueue), c.String(FlagPrefix)))
}

// Services are a tool's table and queue, opened together.
type Services struct {
	Store *store.Store
	Queue *queue.Queue
}

// OpenServices opens the store, then the queue; Close closes both.
func OpenServices(c *cli.Context) (*Services, error) {
	st, err := OpenStore(c)
	if err != nil {
		return nil, err
	}
	q, err := OpenQueue(c)
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
