// Command dl-enqueue claims the rows of task lines and pushes them onto the queue.
package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/dlkit/dl/internal/config"
	"github.com/dlkit/dl/internal/distributor"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/tool"
)

func main() {
	tool.OneProcessor()
	flags := []cli.Flag{config.MySQLFlag(), config.TableFlag(), config.WaitFlag(),
		tool.AtLeast(&cli.IntFlag{Name: "batch", EnvVars: []string{"DL_BATCH"}, Value: 1000, Usage: "most rows per claim and per push"}, 1),
		tool.AtLeast(&cli.IntFlag{Name: "max-deliveries", EnvVars: []string{"DL_MAX_DELIVERIES"}, Value: 5,
			Usage: "fail a row after `N` deliveries that ended without a result (a task that crashes its worker); 0: never"}, 0),
		tool.AtLeast64(&cli.Int64Flag{Name: "renew-max", EnvVars: []string{"DL_RENEW_MAX"}, Value: 100000,
			Usage: "renew the queue leases of at most `N` tasks still in the queue before enqueueing, and fill the queue to at most N (0: neither)"}, 0),
	}
	flags = append(append(flags, config.RedisFlags()...), config.LeaseFlags()...)
	os.Exit(tool.Run(&cli.App{
		Name:      "dl-enqueue",
		Usage:     "claim rows (0 → 2) and push their tasks onto the Redis queue",
		UsageText: "dl-select | dl-enqueue [--batch N]\n\nExample:\n   dl-select --limit 1000 | dl-enqueue > enqueued.jsonl",
		Flags:     flags,
		Action: func(c *cli.Context) error {
			sv, err := config.OpenServices(c)
			if err != nil {
				return err
			}
			defer sv.Close()
			return distributor.Enqueue(c.Context, sv.Store, sv.Queue, distributor.EnqueueOptions{
				Batch: max(c.Int("batch"), 1), RenewMax: c.Int64("renew-max"),
				Claim: store.ClaimOptions{QueueLease: c.Duration(config.FlagQueueWait), Stale: c.Duration(config.FlagQueueWait),
					MaxDeliveries: c.Int("max-deliveries")},
			}, os.Stdin, os.Stdout)
		},
	}))
}
