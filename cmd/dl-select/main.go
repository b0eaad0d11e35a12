// Command dl-select prints the rows that are due for download as task lines.
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
	os.Exit(tool.Run(&cli.App{
		Name:      "dl-select",
		Usage:     "print rows due for download as task lines",
		UsageText: "dl-select [--limit N] [--expired] | dl-enqueue\n\nExample:\n   DL_MYSQL_DSN='root@tcp(127.0.0.1:3306)/downloads' dl-select --limit 1000 --expired | dl-enqueue",
		Flags: append([]cli.Flag{
			config.MySQLFlag(), config.TableFlag(), config.WaitFlag(),
			// A negative limit would select every row, as 0 does.
			tool.AtLeast(&cli.IntFlag{Name: "limit", EnvVars: []string{"DL_LIMIT"}, Value: 1000, Usage: "at most `N` rows (0: all)"}, 0),
			&cli.BoolFlag{Name: "expired", EnvVars: []string{"DL_EXPIRED"}, Usage: "also rows in processing whose lease ran out (crashed workers, a lost queue)"},
		}, config.LeaseFlags()...),
		Action: func(c *cli.Context) error {
			st, err := config.OpenStore(c)
			if err != nil {
				return err
			}
			defer st.Close()
			return distributor.Select(c.Context, st, store.SelectOptions{
				Limit: c.Int("limit"), Expired: c.Bool("expired"), Stale: c.Duration(config.FlagQueueWait),
			}, os.Stdout)
		},
	}))
}
