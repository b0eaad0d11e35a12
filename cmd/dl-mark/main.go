// Command dl-mark records result lines in MySQL and Redis.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dlkit/dl/internal/config"
	"github.com/dlkit/dl/internal/mark"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/tool"
)

func main() {
	tool.OneProcessor()
	flags := []cli.Flag{config.MySQLFlag(), config.TableFlag(), config.WaitFlag(),
		tool.AtLeast(&cli.IntFlag{Name: "batch", EnvVars: []string{"DL_MARK_BATCH"}, Value: 500, Usage: "most rows per transaction"}, 1),
		&cli.DurationFlag{Name: "linger", EnvVars: []string{"DL_MARK_LINGER"}, Value: mark.DefaultLinger, Usage: "how long a transaction that is not full waits for more results"},
		tool.AtLeast(&cli.IntFlag{Name: "max-attempts", EnvVars: []string{"DL_MAX_ATTEMPTS"}, Value: 5, Usage: "failed attempts after which a row fails for good"}, 1),
		&cli.DurationFlag{Name: "retry-base", EnvVars: []string{"DL_RETRY_BASE"}, Value: 30 * time.Second, Usage: "backoff before the first retry of a row; doubled each time"},
		&cli.DurationFlag{Name: "retry-max", EnvVars: []string{"DL_RETRY_MAX"}, Value: time.Hour, Usage: "longest backoff of a row"},
	}
	os.Exit(tool.Run(&cli.App{
		Name:      "dl-mark",
		Usage:     "record result lines: status in MySQL, download_result:<id> in Redis",
		UsageText: "dl-fetch | dl-mark\n\nExample:\n   dl-fetch --concurrency 32 | dl-mark > recorded.jsonl",
		Flags:     append(flags, config.RedisFlags()...),
		Commands: []*cli.Command{{
			Name:      "requeue",
			Usage:     "put failed rows (all, or those matching an error or age) back to pending with a fresh retry budget",
			UsageText: "dl-mark requeue [--error PATTERN] [--older-than DURATION]\n\nExample:\n   dl-mark requeue --error '%status 503%' --older-than 1h",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "error", Usage: "only rows whose error_message matches this SQL LIKE `pattern`"},
				&cli.DurationFlag{Name: "older-than", Usage: "only rows that failed at least this long ago"},
			},
			Action: func(c *cli.Context) error {
				st, err := config.OpenStore(c)
				if err != nil {
					return err
				}
				defer st.Close()
				n, err := st.Requeue(c.Context, store.RequeueFilter{ErrorLike: c.String("error"), OlderThan: c.Duration("older-than")})
				if err == nil {
					fmt.Fprintf(c.App.Writer, "%d failed rows put back to pending\n", n)
				}
				return err
			},
		}},
		Action: func(c *cli.Context) error {
			var in io.Reader
			c.Context, in = mark.WatchInput(c.Context, os.Stdin)
			sv, err := config.OpenServices(c)
			if err != nil {
				return mark.Unrecorded(err, in)
			}
			defer sv.Close()
			return mark.Run(tool.Hard(c.Context), sv.Store, sv.Queue, mark.Options{
				Batch: max(c.Int("batch"), 1), Linger: c.Duration("linger"),
				Retry: store.RetryPolicy{MaxAttempts: c.Int("max-attempts"), Base: c.Duration("retry-base"), Max: c.Duration("retry-max")},
			}, in, os.Stdout)
		},
	}))
}
