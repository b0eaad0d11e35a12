// Command dl-fetch downloads tasks from the Redis queue, from task lines on
// stdin (-), or the URLs given as arguments, many at once.
package main

import (
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dlkit/dl/internal/config"
	"github.com/dlkit/dl/internal/fetch"
	"github.com/dlkit/dl/internal/tool"
	"github.com/dlkit/dl/internal/worker"
)

func main() {
	flags := append(config.FetchFlags(),
		&cli.StringFlag{Name: "mode", EnvVars: []string{"DL_MODE"}, Value: "forever", Usage: "queue mode: forever (until the exit flag or a signal), once (one task) or batch (until the queue is empty)"},
		&cli.DurationFlag{Name: "stop-timeout", EnvVars: []string{"DL_STOP_TIMEOUT"},
			Usage: "after a first SIGTERM or SIGINT, or the exit flag, wait this long for the transfers in flight, then abandon them as a second signal does: their .part files stay and their rows go back to pending at once (0: wait for ever)"},
		tool.Positive(&cli.DurationFlag{Name: "poll", EnvVars: []string{"DL_POLL"}, Value: time.Second, Usage: "longest wait on an empty queue before the exit flag is looked at again"}),
		config.MySQLFlag(), config.TableFlag(), config.WaitFlag())
	flags = append(append(flags, config.RedisFlags()...), config.LeaseFlags()...)
	os.Exit(tool.Run(&cli.App{
		Name:  "dl-fetch",
		Usage: "download tasks from the queue, from stdin (-) or the URLs given, many at once",
		UsageText: "dl-fetch [options]            # tasks from the Redis queue\n   dl-fetch [options] -          # task lines or bare URLs on stdin\n   dl-fetch [options] URL...     # these URLs; needs neither MySQL nor Redis\n\n" +
			"Example:\n   dl-fetch --concurrency 32 | dl-mark\n   dl-fetch --dir . https://example.org/file.iso",
		ArgsUsage: "[- | URL...]",
		Flags:     flags,
		Commands: []*cli.Command{{
			Name:      "clean",
			Usage:     "remove part files no transfer will come back for (kept for a resume of a row that then failed, or left by a killed transfer)",
			UsageText: "dl-fetch clean [--dir DIR] [--older-than DURATION] [--dry-run]\n\nExample:\n   dl-fetch clean --dir /srv/downloads --older-than 72h",
			Flags: []cli.Flag{config.DirFlag(),
				tool.Positive(&cli.DurationFlag{Name: "older-than", EnvVars: []string{"DL_CLEAN_OLDER_THAN"}, Value: 7 * 24 * time.Hour, Usage: "only part files untouched for this `DURATION`"}),
				&cli.BoolFlag{Name: "dry-run", Usage: "print what would be removed, remove nothing"}},
			Action: func(c *cli.Context) error {
				return fetch.Clean(c.Context, fetch.CleanOptions{Dir: c.String("dir"), OlderThan: c.Duration("older-than"), DryRun: c.Bool("dry-run")}, os.Stdout)
			},
		}},
		Action: func(c *cli.Context) error {
			term := config.StartTerminal(c) // first: it may route the log above its bars
			defer term.Close()
			fo, err := config.FetchOptions(c)
			if err != nil {
				return err
			}
			obs, stopMetrics, err := config.Observe(c, term)
			if err != nil {
				return err
			}
			defer stopMetrics()
			fo.Observer = obs
			n := max(c.Int("concurrency"), 1)
			fo.Transfers = n             // and up to n/2 more tasks finishing their files meanwhile
			fo.ExpectNew = c.NArg() == 0 // the queue's rows are not done; a list may be a re-run
			f, err := fetch.New(fo)
			if err != nil {
				return err
			}
			defer f.Close()
			wo := worker.Options{Concurrency: n, Finishing: (n + 1) / 2, StatsEvery: term.StatsEvery(c), StopTimeout: c.Duration("stop-timeout")}
			switch args := c.Args().Slice(); {
			case len(args) == 1 && args[0] == "-":
				return worker.RunLines(c.Context, f, os.Stdin, wo, term.Stdout())
			case len(args) > 0:
				return worker.RunURLs(c.Context, f, args, wo, term.Stdout())
			}
			mode, err := worker.ParseMode(c.String("mode"))
			if err != nil {
				return tool.Usage(c, "--mode (DL_MODE): %v", err)
			}
			sv, err := config.OpenServices(c)
			if err != nil {
				return err
			}
			defer sv.Close()
			return worker.RunQueue(c.Context, f, sv.Store, sv.Queue, worker.QueueOptions{Options: wo, Mode: mode,
				Lease: c.Duration(config.FlagLease), Worker: config.WorkerName(), Poll: c.Duration("poll")}, term.Stdout())
		},
	}))
}
