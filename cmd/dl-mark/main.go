// Command dl-mark records result lines in MySQL and Redis.
package main

import (
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dlkit/dl/internal/config"
	"github.com/dlkit/dl/internal/mark"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/tool"
)

func main() {
	flags := []cli.Flag{config.MySQLFlag(), config.TableFlag(),
		&cli.IntFlag{Name: "batch", EnvVars: []string{"DL_MARK_BATCH"}, Value: 500, Usage: "most rows per transaction"},
		&cli.IntFlag{Name: "max-attempts", EnvVars: []string{"DL_MAX_ATTEMPTS"}, Value: 5, Usage: "failed attempts after which a row fails for good"},
		&cli.DurationFlag{Name: "retry-base", EnvVars: []string{"DL_RETRY_BASE"}, Value: 30 * time.Second, Usage: "backoff before the first retry of a row; doubled each time"},
		&cli.DurationFlag{Name: "retry-max", EnvVars: []string{"DL_RETRY_MAX"}, Value: time.Hour, Usage: "longest backoff of a row"},
	}
	os.Exit(tool.Run(&cli.App{
		Name:      "dl-mark",
		Usage:     "record result lines: status in MySQL, download_result:<id> in Redis",
		UsageText: "dl-fetch | dl-mark\n\nExample:\n   dl-fetch --concurrency 32 | dl-mark > recorded.jsonl",
		Flags:     append(flags, config.RedisFlags()...),
		Action: func(c *cli.Context) error {
			st, err := config.OpenStore(c)
			if err != nil {
				return err
			}
			defer st.Close()
			q, err := config.OpenQueue(c)
			if err != nil {
				return err
			}
			defer q.Close()
			return mark.Run(tool.Hard(c.Context), st, q, mark.Options{
				Batch: max(c.Int("batch"), 1),
				Retry: store.RetryPolicy{MaxAttempts: c.Int("max-attempts"), Base: c.Duration("retry-base"), Max: c.Duration("retry-max")},
			}, os.Stdin, os.Stdout)
		},
	}))
}
