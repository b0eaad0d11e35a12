// Command dl-flag sets, clears and shows the fleet-wide exit flag.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/dlkit/dl/internal/config"
	"github.com/dlkit/dl/internal/tool"
)

func main() {
	flag := func(on bool) cli.ActionFunc {
		return func(c *cli.Context) error {
			q, err := config.OpenQueue(c)
			if err != nil {
				return err
			}
			defer q.Close()
			return q.SetExitFlag(c.Context, on)
		}
	}
	os.Exit(tool.Run(&cli.App{
		Name:      "dl-flag",
		Usage:     "set, clear or show the exit flag that stops every worker and distributor",
		UsageText: "dl-flag set|clear|status\n\nExample:\n   dl-flag set      # every worker finishes what it has and exits\n   dl-flag status && echo stopping",
		Flags:     config.RedisFlags(),
		Commands: []*cli.Command{
			{Name: "set", Usage: "set the flag: workers finish their transfers and exit 0", Action: flag(true)},
			{Name: "clear", Usage: "clear the flag: workers may run again", Action: flag(false)},
			{Name: "status", Usage: "print the flag; exit 0 when set, 1 when clear", Action: func(c *cli.Context) error {
				q, err := config.OpenQueue(c)
				if err != nil {
					return err
				}
				defer q.Close()
				set, err := q.ExitFlag(c.Context)
				if err != nil {
					return err
				}
				if !set {
					fmt.Fprintf(c.App.Writer, "%s: clear\n", q.Keys().ExitFlag)
					return cli.Exit("", 1)
				}
				fmt.Fprintf(c.App.Writer, "%s: set\n", q.Keys().ExitFlag)
				return nil
			}},
		},
	}))
}
