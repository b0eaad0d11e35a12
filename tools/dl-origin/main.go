// Command dl-origin serves internal/origin: generated files with injectable
// faults, for the demo script and the benchmark to download from. It is a
// test fixture that obeys any client's fault knobs, so it listens on
// loopback only.
//
//	dl-origin --listen 127.0.0.1:8089 &
//	curl -o a.bin 'http://127.0.0.1:8089/files/a.bin?size=1g'
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dlkit/dl/internal/origin"
)

// shutdownGrace bounds the wait for requests in flight: endless and trickle
// bodies never finish on their own.
const shutdownGrace = 3 * time.Second

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	app := &cli.App{
		Name:      "dl-origin",
		Usage:     "serve generated test files with injectable faults (see internal/origin for the URL knobs)",
		UsageText: "dl-origin [--listen 127.0.0.1:8089]\n\nExample:\n   dl-origin & curl -o a.bin 'http://127.0.0.1:8089/files/a.bin?size=1g&fail=2'",
		Flags: []cli.Flag{&cli.StringFlag{
			Name: "listen", EnvVars: []string{"DL_ORIGIN_LISTEN"}, Value: "127.0.0.1:8089",
			Usage: "loopback `address` to serve on (port 0 picks a free one)",
		}},
		Action: func(c *cli.Context) error {
			ln, err := listen(c.String("listen"))
			if err != nil {
				return err
			}
			return serve(c.Context, ln, log)
		},
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.RunContext(ctx, os.Args); err != nil {
		log.Error("dl-origin failed", "err", err)
		stop()
		os.Exit(1)
	}
}

// listen refuses anything but loopback: the origin serves whatever faults a
// URL asks for and must never be reachable from another machine.
func listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("refusing to listen on %q: dl-origin listens on loopback only (e.g. 127.0.0.1:8089)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// serve runs until ctx ends, then shuts down within shutdownGrace.
func serve(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           origin.New(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving", "url", "http://"+ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("closing connections still in flight", "err", err)
		if err := srv.Close(); err != nil {
			return fmt.Errorf("close server: %w", err)
		}
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
