package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// StartRedisServer runs a Redis of the test's own on a free loopback port,
// without persistence, and returns its URL and controls: stop kills it (its
// data is lost, as in a crash of a cache), start brings it back on the same
// port, empty. It is killed at cleanup. The machine's own Redis is never
// touched.
func StartRedisServer(t testing.TB) (url string, stop, start func()) {
	t.Helper()
	bin := lookPath(t, "redis-server")
	dir := t.TempDir()
	s := startOnFreePort(t, func(port int) *server {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		url = "redis://" + addr + "/0"
		return &server{
			name: "redis-server",
			argv: []string{bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
				"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no"},
			out:   filepath.Join(dir, "redis.log"),
			ready: func(ctx context.Context) error { return pingRedis(ctx, addr) },
		}
	})
	stop, start = controls(t, s)
	return url, stop, start
}

// pingRedis speaks just enough RESP to know the server answers commands
// (it refuses them while loading), without a client that logs its retries.
func pingRedis(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return fmt.Errorf("send PING: %w", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read PING reply: %w", err)
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("%w: PING answered %q", errNotReady, line)
	}
	return nil
}
