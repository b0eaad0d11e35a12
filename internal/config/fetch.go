package config

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dlkit/dl/internal/fetch"
	"github.com/dlkit/dl/internal/layout"
	"github.com/dlkit/dl/internal/tool"
)

// FetchFlags are dl-fetch's download options.
func FetchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "dir", EnvVars: []string{"DL_DIR"}, Value: "downloads", Usage: "download `directory`"},
		&cli.IntFlag{Name: "concurrency", Aliases: []string{"c"}, EnvVars: []string{"DL_CONCURRENCY"}, Value: 8, Usage: "transfers at once in this process"},
		&cli.StringFlag{Name: "layout", EnvVars: []string{"DL_LAYOUT"}, Value: "sharded",
			Usage: "file names: sharded (abc/<key>-<name>: never collides, 4096 subdirectories) or flat (the original design's single directory)"},
		&cli.BoolFlag{Name: "fsync", EnvVars: []string{"DL_FSYNC"}, Value: true, Usage: "sync each file before it is reported done (--fsync=false trades durability for speed)"},
		&cli.StringFlag{Name: "user-agent", EnvVars: []string{"DL_USER_AGENT"}, Value: fetch.UserAgent(tool.Version), Usage: "User-Agent header"},
		&cli.StringSliceFlag{Name: "header", Aliases: []string{"H"}, EnvVars: []string{"DL_HEADERS"}, Usage: "extra request header `'Name: value'` (repeatable)"},
		&cli.DurationFlag{Name: "connect-timeout", EnvVars: []string{"DL_CONNECT_TIMEOUT"}, Value: 30 * time.Second, Usage: "TCP connect and TLS handshake"},
		&cli.DurationFlag{Name: "stall-timeout", EnvVars: []string{"DL_STALL_TIMEOUT"}, Value: 60 * time.Second, Usage: "give up on a transfer that receives less than 1 KiB in this long"},
		&cli.DurationFlag{Name: "max-time", EnvVars: []string{"DL_MAX_TIME"}, Usage: "overall limit per task, retries included (0: none)"},
		&cli.Int64Flag{Name: "max-size", EnvVars: []string{"DL_MAX_SIZE"}, Usage: "largest file in `bytes` (0: no limit)"},
		&cli.IntFlag{Name: "max-redirects", EnvVars: []string{"DL_MAX_REDIRECTS"}, Value: 10, Usage: "redirects to follow (0: none)"},
		&cli.IntFlag{Name: "retries", EnvVars: []string{"DL_RETRIES"}, Value: 2, Usage: "in-process retries of a transient failure before it goes back to the queue"},
		&cli.DurationFlag{Name: "stats-every", EnvVars: []string{"DL_STATS_EVERY"}, Value: 10 * time.Second, Usage: "log a statistics line this often (0: never)"},
	}
}

// FetchOptions reads FetchFlags.
func FetchOptions(c *cli.Context) (fetch.Options, error) {
	lay, err := layout.Parse(c.String("layout"))
	if err != nil {
		return fetch.Options{}, fmt.Errorf("--layout: %w", err)
	}
	h := http.Header{}
	for _, kv := range c.StringSlice("header") {
		name, value, ok := strings.Cut(kv, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return fetch.Options{}, fmt.Errorf("--header %q: want 'Name: value'", kv)
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return fetch.Options{
		Dir: c.String("dir"), Layout: lay, Fsync: c.Bool("fsync"),
		UserAgent: c.String("user-agent"), Header: h,
		ConnectTimeout: c.Duration("connect-timeout"), StallTimeout: c.Duration("stall-timeout"), MaxTime: c.Duration("max-time"),
		MaxSize: c.Int64("max-size"), MaxRedirects: redirects(c.Int("max-redirects")), Retries: c.Int("retries"),
		Logger: slog.Default(),
	}, nil
}

// redirects maps the flag's 0 (follow none) to fetch's -1; fetch reads 0 as
// its default.
func redirects(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
