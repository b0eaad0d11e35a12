// Command dl-flag sets, clears and shows the fleet-wide exit flag.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/dlkit/dl/internal/config"
	"github.com/dlkit/dl/internal/tool"
)

// exitUnknown is status's exit code when Redis could not be asked (0: set,
// 1: clear), as scripts/dl-distributor reads it.
const exitUnknown = 2

// state is the line every command prints: the flag's key and its state.
func state(key string, set bool) string {
	if set {
		return key + ": set\n"
	}
	return key + ": clear\n"
}

func main() {
	flag := func(on bool) cli.ActionFunc {
		return func(c *cli.Context) error {
			q, err := config.OpenQueue(c)
			if err != nil {
				return err
			}
			defer q.Close()
			if err := q.SetExitFlag(c.Context, on); err != nil {
				return err
			}
			_, err = fmt.Fprint(c.App.Writer, state(q.Keys().ExitFlag, on))
			return err
		}
	}
	os.Exit(tool.Run(&cli.App{
		Name:      "dl-flag",
		Usage:     "set, clear or show the exit flag that stops every worker and distributor",
		UsageText: "dl-flag set|clear|status\n\nExample:\n   dl-flag set      # every worker finishes what it has and exits\n   dl-flag status && echo stopping",
		Flags:     config.RedisFlags(),
		Commands: []*cli.Command{
			{Name: "set", Usage: "set the flag: workers finish their transfers and exit 0; prints the new state", Action: flag(true)},
			{Name: "clear", Usage: "clear the flag: workers may run again; prints the new state", Action: flag(false)},
			{Name: "status", Usage: "print the flag; exit 0 when set, 1 when clear, 2 when Redis could not be asked", Action: func(c *cli.Context) error {
				q, err := config.OpenQueue(c)
				if err != nil {
					return tool.Exit(exitUnknown, err)
				}
				defer q.Close()
				set, err := q.ExitFlag(c.Context)
				if err != nil {
					return tool.Exit(exitUnknown, err)
				}
				fmt.Fprint(c.App.Writer, state(q.Keys().ExitFlag, set))
				if !set {
					return tool.Exit(1, nil)
				}
				return nil
			}},
		},
	}))
}
