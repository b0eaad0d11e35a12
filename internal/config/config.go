// Package config declares the command-line flags that several tools share,
// each with its environment variable and a default that works against a local
// MariaDB and Redis. The names are a contract: scripts, systemd units and
// users' environment files rely on them, so they are defined once, here.
package config

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/tool"
)

// Defaults that work against the MariaDB and Redis of a Debian machine.
const (
	DefaultMySQL  = "root@unix(/run/mysqld/mysqld.sock)/downloads"
	DefaultRedis  = "redis://127.0.0.1:6379/0"
	DefaultTable  = "files"
	DefaultQueue  = "download_queue"
	DefaultPrefix = "download_"
)

// Flag names, used by the tools to read the values back.
const (
	FlagMySQL     = "mysql"
	FlagRedis     = "redis"
	FlagTable     = "table"
	FlagQueue     = "queue"
	FlagPrefix    = "key-prefix"
	FlagLease     = "lease"
	FlagQueueWait = "queue-lease"
	FlagWait      = "wait-for-services"
)

// MySQLFlag is the go-sql-driver DSN, database included.
func MySQLFlag() cli.Flag {
	return tool.Valid(&cli.StringFlag{Name: FlagMySQL, EnvVars: []string{"DL_MYSQL_DSN"}, Value: DefaultMySQL,
		Usage: "MySQL `DSN` (go-sql-driver form, database included)"},
		func(c *cli.Context, dsn string) error { return unlessUnused(c, store.CheckDSN(dsn)) })
}

// WaitFlag is how long a tool waits at start for MySQL and Redis to accept
// connections. The worker unit sets it: a host that boots before its
// database would otherwise use up systemd's start limit (five failures in
// ten minutes) and stay failed until someone resets it.
func WaitFlag() cli.Flag {
	return &cli.DurationFlag{Name: FlagWait, EnvVars: []string{"DL_WAIT_FOR_SERVICES"},
		Usage: "at start, wait up to this `DURATION` for MySQL and Redis to accept connections (0: fail at once)"}
}

// TableFlag names the table of files.
func TableFlag() cli.Flag {
	return tool.Valid(&cli.StringFlag{Name: FlagTable, EnvVars: []string{"DL_TABLE"}, Value: DefaultTable,
		Usage: "`name` of the table of files"},
		func(c *cli.Context, table string) error { return unlessUnused(c, store.CheckTable(table)) })
}

// RedisFlags are the Redis URL and the key names.
func RedisFlags() []cli.Flag {
	return []cli.Flag{
		tool.Valid(&cli.StringFlag{Name: FlagRedis, EnvVars: []string{"DL_REDIS_URL"}, Value: DefaultRedis,
			Usage: "Redis `URL`: redis://[:password@]host:port/db, redis-cluster://h1:p,h2:p or redis-sentinel://s1:p,s2:p/db?master_name=NAME"},
			func(c *cli.Context, u string) error {
				return unlessUnused(c, queue.CheckURL(u, queue.NewKeys(c.String(FlagQueue), c.String(FlagPrefix))))
			}),
		tool.Valid(&cli.StringFlag{Name: FlagQueue, EnvVars: []string{"DL_QUEUE"}, Value: DefaultQueue,
			Usage: "Redis `list` that carries the tasks"},
			func(c *cli.Context, name string) error {
				// Redis takes "" as a key: a DL_QUEUE left empty would carry
				// the tasks in a list nobody looks at.
				if strings.TrimSpace(name) == "" {
					return unlessUnused(c, errors.New("empty queue name"))
				}
				return nil
			}),
		&cli.StringFlag{Name: FlagPrefix, EnvVars: []string{"DL_KEY_PREFIX"}, Value: DefaultPrefix,
			Usage: "`prefix` of the other Redis keys (<prefix>exit_flag, <prefix>result:<id>)"},
	}
}

// unlessUnused is err, unless the command uses neither MySQL nor Redis:
// dl-fetch given "-" or URLs (the one tool that takes arguments) must not
// refuse to run for a dl.env value it has no use for.
func unlessUnused(c *cli.Context, err error) error {
	if c.App.ArgsUsage != "" && c.NArg() > 0 {
		return nil
	}
	return err
}

// LeaseFlags set how long a claimed row may go without news before it is
// handed out again: lease while a worker holds it (renewed while it works),
// queue-lease while it waits in the Redis queue.
func LeaseFlags() []cli.Flag {
	return []cli.Flag{
		tool.Positive(&cli.DurationFlag{Name: FlagLease, EnvVars: []string{"DL_LEASE"}, Value: 60 * time.Second,
			Usage: "a worker's hold on a task; renewed every third of it while the task is in progress"}),
		QueueLeaseFlag(),
	}
}

// QueueLeaseFlag is the queue lease alone, for dl-stat, which counts rows
// expired as dl-select finds them.
func QueueLeaseFlag() cli.Flag {
	return tool.Positive(&cli.DurationFlag{Name: FlagQueueWait, EnvVars: []string{"DL_QUEUE_LEASE"}, Value: 5 * time.Minute,
		Usage: "how long a claimed task may wait in the queue before it is claimable again (covers a lost Redis); each distributor round renews it for tasks still queued, so keep it well above DL_INTERVAL"})
}

// WorkerName names this process in the rows it holds, for dl-stat and for
// operators reading the table: host:pid, and a random suffix. The name is
// also what makes a claim one worker's (a second copy of a task, popped by
// another worker, finds the row taken), and host and pid alone can be
// shared: containers on the host's network keep its host name, each with
// its own pids, often the same (1).
func WorkerName() string {
	h, err := os.Hostname()
	if err != nil {
		h = "unknown"
	}
	return fmt.Sprintf("%s:%d-%08x", h, os.Getpid(), rand.Uint32())
}
