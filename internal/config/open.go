package config

import (
	"github.com/urfave/cli/v2"

	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/store"
)

// OpenStore connects to MySQL as the flags say and makes sure the table has
// dl's schema (creating or upgrading it in place).
func OpenStore(c *cli.Context) (*store.Store, error) {
	st, err := store.Open(c.Context, c.String(FlagMySQL), c.String(FlagTable))
	if err != nil {
		return nil, err
	}
	if err := st.Ensure(c.Context); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// OpenQueue connects to Redis as the flags say.
func OpenQueue(c *cli.Context) (*queue.Queue, error) {
	return queue.Open(c.Context, c.String(FlagRedis), queue.NewKeys(c.String(FlagQueue), c.String(FlagPrefix)))
}
