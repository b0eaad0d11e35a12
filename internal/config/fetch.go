package config

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/dlkit/dl/internal/fetch"
	"github.com/dlkit/dl/internal/layout"
	"github.com/dlkit/dl/internal/metrics"
	"github.com/dlkit/dl/internal/progress"
	"github.com/dlkit/dl/internal/tool"
)

// DirFlag is the download directory, which dl-fetch clean walks too.
func DirFlag() cli.Flag {
	return &cli.StringFlag{Name: "dir", EnvVars: []string{"DL_DIR"}, Value: "downloads", Usage: "download `directory`"}
}

// FetchFlags are dl-fetch's download options.
func FetchFlags() []cli.Flag {
	return []cli.Flag{
		DirFlag(),
		tool.AtLeast(&cli.IntFlag{Name: "concurrency", Aliases: []string{"c"}, EnvVars: []string{"DL_CONCURRENCY"}, Value: 8, Usage: "transfers at once in this process"}, 1),
		&cli.StringFlag{Name: "layout", EnvVars: []string{"DL_LAYOUT"}, Value: "sharded",
			Usage: "file names: sharded (abc/<key>-<name>: never collides, 4096 subdirectories) or flat (the original design's single directory)"},
		&cli.BoolFlag{Name: "fsync", EnvVars: []string{"DL_FSYNC"}, Value: true, Usage: "make each file durable before it is reported done (--fsync=false trades durability for speed)"},
		&cli.BoolFlag{Name: "fsync-each", EnvVars: []string{"DL_FSYNC_EACH"},
			Usage: "fsync every file and its directory instead of one syncfs(2) of an ext4, xfs, btrfs or f2fs filesystem for all files finishing together (for a filesystem shared with heavy writers; others always get per-file fsyncs)"},
		&cli.StringFlag{Name: "user-agent", EnvVars: []string{"DL_USER_AGENT"}, Value: fetch.UserAgent(tool.Version), Usage: "User-Agent header"},
		&cli.StringSliceFlag{Name: "header", Aliases: []string{"H"}, EnvVars: []string{"DL_HEADERS"}, Usage: "extra request header `'Name: value'` (repeatable)"},
		tool.Positive(&cli.DurationFlag{Name: "connect-timeout", EnvVars: []string{"DL_CONNECT_TIMEOUT"}, Value: 30 * time.Second, Usage: "TCP connect and TLS handshake"}),
		tool.Positive(&cli.DurationFlag{Name: "stall-timeout", EnvVars: []string{"DL_STALL_TIMEOUT"}, Value: 60 * time.Second, Usage: "give up on a transfer that receives less than 1 KiB in this long"}),
		&cli.DurationFlag{Name: "max-time", EnvVars: []string{"DL_MAX_TIME"}, Usage: "overall limit per task, retries included (0: none)"},
		&cli.StringFlag{Name: "max-size", EnvVars: []string{"DL_MAX_SIZE"}, Value: "0", Usage: "largest file in `bytes`, with an optional K, M or G (binary) suffix (0: no limit)"},
		&cli.StringFlag{Name: "min-free", EnvVars: []string{"DL_MIN_FREE"}, Value: "0",
			Usage: "free `bytes` to leave on the download directory's disk (K, M, G, T): below it dl-fetch starts no download and stops, as on a full disk (0: none)"},
		tool.AtLeast(&cli.IntFlag{Name: "max-redirects", EnvVars: []string{"DL_MAX_REDIRECTS"}, Value: 10, Usage: "redirects to follow (0: none)"}, 0),
		tool.Valid(&cli.StringFlag{Name: "metrics-listen", EnvVars: []string{"DL_METRICS_LISTEN"},
			Usage: "serve Prometheus metrics on this `address` (a bare :port listens on loopback; empty: off)"},
			func(_ *cli.Context, addr string) error {
				if addr == "" {
					return nil
				}
				_, err := metrics.ListenAddr(addr)
				return err
			}),
		tool.AtLeast(&cli.IntFlag{Name: "retries", EnvVars: []string{"DL_RETRIES"}, Value: 2, Usage: "in-process retries of a transient failure before it goes back to the queue"}, 0),
		tool.AtLeast(&cli.IntFlag{Name: "max-attempts", EnvVars: []string{"DL_MAX_ATTEMPTS"}, Value: 5, Usage: "attempts of a task in total, across workers and restarts (in-process retries stop there; dl-mark fails the row there)"}, 1),
		tool.AtLeast(&cli.IntFlag{Name: "per-host", EnvVars: []string{"DL_PER_HOST"}, Usage: "most transfers at a time to one host (0: no limit)"}, 0),
		&cli.StringFlag{Name: "limit-rate", EnvVars: []string{"DL_LIMIT_RATE"}, Value: "0", Usage: "most `bytes` per second for all transfers together, like curl's: 500K, 10M, 1G (0: no limit)"},
		&cli.DurationFlag{Name: "stats-every", EnvVars: []string{"DL_STATS_EVERY"}, Value: 10 * time.Second, Usage: "log a statistics line this often when no progress bars are drawn (0: never)"},
		&cli.BoolFlag{Name: "progress", EnvVars: []string{"DL_PROGRESS"}, Value: true, Usage: "draw progress bars when stderr is a terminal (never into a log)"},
	}
}

// FetchOptions reads FetchFlags.
func FetchOptions(c *cli.Context) (fetch.Options, error) {
	lay, err := layout.Parse(c.String("layout"))
	if err != nil {
		return fetch.Options{}, tool.Usage(c, "--layout: %v", err)
	}
	h := http.Header{}
	for _, kv := range c.StringSlice("header") {
		name, value, ok := strings.Cut(kv, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return fetch.Options{}, tool.Usage(c, "--header %q: want 'Name: value'", kv)
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	maxSize, err := ParseBytes(c.String("max-size"))
	if err != nil {
		return fetch.Options{}, tool.Usage(c, "--max-size: %v", err)
	}
	minFree, err := ParseBytes(c.String("min-free"))
	if err != nil {
		return fetch.Options{}, tool.Usage(c, "--min-free: %v", err)
	}
	limitRate, err := ParseBytes(c.String("limit-rate"))
	if err != nil {
		return fetch.Options{}, tool.Usage(c, "--limit-rate: %v", err)
	}
	return fetch.Options{
		Dir: c.String("dir"), Layout: lay, Fsync: c.Bool("fsync"), FsyncEach: c.Bool("fsync-each"),
		UserAgent: c.String("user-agent"), Header: h,
		ConnectTimeout: c.Duration("connect-timeout"), StallTimeout: c.Duration("stall-timeout"), MaxTime: c.Duration("max-time"),
		MaxSize: maxSize, MinFree: minFree, MaxRedirects: redirects(c.Int("max-redirects")), Retries: c.Int("retries"), MaxAttempts: c.Int("max-attempts"),
		PerHost: c.Int("per-host"), LimitRate: limitRate,
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

// ParseBytes reads a byte count such as 1048576, 500K, 10M or 1.5G. The
// suffixes are binary (K = 1024), as in curl's and wget's options.
func ParseBytes(s string) (int64, error) {
	orig := s
	s = strings.TrimSpace(s)
	mult := 1.0
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		case 't', 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || !(n >= 0) || n*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is not a byte count like 1048576, 500K, 10M or 1.5G", orig)
	}
	return int64(n * mult), nil
}

// Terminal is dl-fetch's face to a person: when stderr is a terminal (and
// --progress is on) it draws progress bars there, and prints log lines, and
// result lines when stdout is that same terminal, above the bars so they
// never tear. Otherwise it changes nothing: stdout gets results, stderr the
// log with its periodic statistics line.
type Terminal struct {
	bars   *progress.Bars
	lines  io.WriteCloser // result lines through the bars, or nil
	prev   *slog.Logger
	stdout io.Writer
}

// minTermWidth is the narrowest terminal that gets bars: a name, a bar
// and the figures need about this much.
const minTermWidth = 60

// StartTerminal starts the bars if there is a terminal to draw on. Call it
// before FetchOptions, which takes the logger it sets up, and Close it
// when the transfers are over.
func StartTerminal(c *cli.Context) *Terminal {
	t := &Terminal{stdout: os.Stdout}
	if !c.Bool("progress") || !term.IsTerminal(int(os.Stderr.Fd())) {
		return t
	}
	// A terminal that does not know its width (a bare pty, a serial
	// console) would get garbled bars.
	if w, _, err := term.GetSize(int(os.Stderr.Fd())); err != nil || w < minTermWidth {
		return t
	}
	t.bars = progress.New(os.Stderr, progress.Options{})
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.String("log-level"))) // checked by tool.Run already
	t.prev = slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(t.bars, &slog.HandlerOptions{Level: lvl})).With("tool", c.App.Name))
	if sameFile(os.Stdout, os.Stderr) {
		t.lines = t.bars.Lines()
		t.stdout = t.lines
	}
	return t
}

// Observer is what fetch.Options.Observer should be: the bars, or nil.
func (t *Terminal) Observer() fetch.Observer {
	if t.bars == nil {
		return nil
	}
	return t.bars
}

// Observe returns what watches the transfers: the terminal's bars and, with
// --metrics-listen, Prometheus metrics served on that address (stop closes
// the server).
func Observe(c *cli.Context, term *Terminal) (obs fetch.Observer, stop func(), err error) {
	addr := c.String("metrics-listen")
	if addr == "" {
		return term.Observer(), func() {}, nil
	}
	m := metrics.New(c.Int("max-attempts"))
	srv, err := m.Serve(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--metrics-listen (DL_METRICS_LISTEN): %w", err)
	}
	return fetch.Observers(m, term.Observer()), srv.Close, nil
}

// Stdout is where result lines go.
func (t *Terminal) Stdout() io.Writer { return t.stdout }

// StatsEvery is how often the worker should log its statistics line: never
// while bars show the same figures live.
func (t *Terminal) StatsEvery(c *cli.Context) time.Duration {
	if t.bars != nil {
		return 0
	}
	return c.Duration("stats-every")
}

// Close takes the bars down, leaving the total line, and gives stderr back
// to the log.
func (t *Terminal) Close() {
	if t.bars == nil {
		return
	}
	if t.lines != nil {
		_ = t.lines.Close() // only a last line without its newline; nothing to do if it fails
	}
	t.bars.Close()
	slog.SetDefault(t.prev)
}

func sameFile(a, b *os.File) bool {
	fa, err1 := a.Stat()
	fb, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
