package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/dlkit/dl/internal/fetch"
)

// transportOnly is the breakdown row of workload 2: the list's requests made
// with Go's net/http through dl-fetch's own transport (fetch.NewTransport),
// the bodies counted and dropped. Set beside dl-fetch and beside curl writing
// to /dev/null, it separates the cost of HTTP from the cost of what dl does
// with a body: the part file and its lock, the rename, the sharded
// directories, the hash and the result line.
//
// The driver runs it as a child (its own binary with -transport-only) so that
// its CPU and RSS are measured like any tool's. Every response must be a 200
// whose body has the announced length (chunked framing checks its own end);
// anything else fails the run.
func transportOnly(ctx context.Context, in io.Reader, conc int) error {
	c := &http.Client{Transport: fetch.NewTransport(0)}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	urls := make(chan string)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for u := range urls {
				if err := getDiscard(ctx, c, u, buf); err != nil {
					cancel(err) // the first cause stays
				}
			}
		}()
	}
	sc := bufio.NewScanner(in)
	for ctx.Err() == nil && sc.Scan() {
		urls <- sc.Text()
	}
	close(urls)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read URLs: %w", err)
	}
	return nil
}

func getDiscard(ctx context.Context, c *http.Client, u string, buf []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Hide WriterTo so the copy goes through buf, as dl-fetch's does.
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{resp.Body}, buf)
	switch {
	case err != nil:
		return fmt.Errorf("GET %s: read body: %w", u, err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		return fmt.Errorf("GET %s: %d of %d bytes", u, n, resp.ContentLength)
	}
	return nil
}

// runTransportOnly is main's branch for the child.
func runTransportOnly(conc int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return transportOnly(ctx, os.Stdin, conc)
}
