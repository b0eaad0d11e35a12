package testenv

import (
	"net"
	"sync"
	"testing"
)

// TCPServer listens on a loopback port and runs handle on each connection
// in a goroutine of its own, for origins that speak HTTP by hand: the
// misbehaviour net/http's server refuses to produce, or a canned answer
// with nothing in the way. done is closed when the test ends; then the
// listener and every connection are closed and the handlers waited for.
// It returns the "http://host:port" base URL.
func TCPServer(t testing.TB, handle func(c net.Conn, done <-chan struct{})) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				handle(c, done)
			})
		}
	})
	t.Cleanup(func() {
		close(done)
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}
