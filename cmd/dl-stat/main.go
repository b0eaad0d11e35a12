// Command dl-stat shows the whole fleet at a glance, from MySQL and Redis.
package main

import (
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dlkit/dl/internal/config"
	"github.com/dlkit/dl/internal/stat"
	"github.com/dlkit/dl/internal/tool"
)

func main() {
	flags := append([]cli.Flag{config.MySQLFlag(), config.TableFlag(), config.WaitFlag(),
		&cli.BoolFlag{Name: "json", EnvVars: []string{"DL_STAT_JSON"}, Usage: "one JSON object (one line per snapshot with --watch)"},
		&cli.BoolFlag{Name: "prometheus", EnvVars: []string{"DL_STAT_PROMETHEUS"}, Usage: "Prometheus text format, for node_exporter's textfile collector"},
		&cli.DurationFlag{Name: "watch", Aliases: []string{"w"}, EnvVars: []string{"DL_STAT_WATCH"}, Usage: "show a new snapshot every `DURATION` until interrupted (0: once)"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, EnvVars: []string{"DL_STAT_OUTPUT"}, Usage: "replace `FILE` atomically with each snapshot instead of writing to stdout"},
		&cli.BoolFlag{Name: "publish", EnvVars: []string{"DL_STAT_PUBLISH"}, Usage: "also keep the JSON status in Redis (<prefix>status) for other tools"},
		tool.Positive(&cli.DurationFlag{Name: "window", EnvVars: []string{"DL_STAT_WINDOW"}, Value: time.Minute, Usage: "span of the throughput figures"}),
		tool.AtLeast(&cli.IntFlag{Name: "errors", EnvVars: []string{"DL_STAT_ERRORS"}, Value: 5, Usage: "show the `N` most common error messages"}, 0),
		config.QueueLeaseFlag(),
	}, config.RedisFlags()...)
	os.Exit(tool.Run(&cli.App{
		Name:  "dl-stat",
		Usage: "show rows by status, the queue, downloads in flight, throughput and the commonest errors",
		UsageText: "dl-stat [--json | --prometheus] [--watch DURATION] [--output FILE]\n\nExample:\n   dl-stat --watch 2s\n" +
			"   dl-stat --prometheus --watch 15s --output /var/lib/prometheus/node-exporter/dl.prom",
		Flags: flags,
		Action: func(c *cli.Context) error {
			format := stat.Table
			switch {
			case c.Bool("json") && c.Bool("prometheus"):
				return tool.Usage(c, "--json and --prometheus: choose one")
			case c.Bool("json"):
				format = stat.JSON
			case c.Bool("prometheus"):
				format = stat.Prometheus
			}
			// Only reads: the table is neither created nor upgraded. A watch
			// shows a Redis outage as it goes (dl_redis_up 0), from the start
			// too; a single look fails on it.
			sv, err := config.OpenReader(c, c.Duration("watch") > 0)
			if err != nil {
				return err
			}
			defer sv.Close()
			return stat.Run(c.Context, stat.Source{Store: sv.Store, Queue: sv.Queue, Window: c.Duration("window"), TopErrors: c.Int("errors"),
				QueueLease: c.Duration(config.FlagQueueWait)},
				stat.Options{Format: format, Watch: c.Duration("watch"), Output: c.String("output"), Publish: c.Bool("publish")}, os.Stdout)
		},
	}))
}
