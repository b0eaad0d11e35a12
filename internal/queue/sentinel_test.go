package queue_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/testenv"
)

// TestSentinelURL opens the queue through a Redis Sentinel that monitors a
// private master, and moves a task and the exit flag through it.
func TestSentinelURL(t *testing.T) {
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed (apt-get install redis-server)")
	}
	masterURL, _, _ := testenv.StartRedisServer(t)
	u, err := url.Parse(masterURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	// Sentinel rewrites its configuration file, so it must be its own.
	err = os.WriteFile(conf, []byte(fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor dlmaster %s %s 1\n",
		port, dir, u.Hostname(), u.Port())), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(server, conf, "--sentinel")
	log, _ := os.Create(filepath.Join(dir, "sentinel.log"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	log.Close()
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // killed at cleanup
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	sentinel := fmt.Sprintf("127.0.0.1:%d", port)
	testenv.Eventually(t, time.Minute, 50*time.Millisecond, func() bool {
		c := redis.NewSentinelClient(&redis.Options{Addr: sentinel, MaxRetries: -1})
		defer c.Close()
		addr, err := c.GetMasterAddrByName(context.Background(), "dlmaster").Result()
		return err == nil && len(addr) == 2 && addr[1] == u.Port()
	}, "the sentinel at %s to know the master", sentinel)

	ctx := context.Background()
	q, err := queue.Open(ctx, "redis-sentinel://"+sentinel+"/0?master_name=dlmaster", queue.NewKeys("download_queue", "download_"))
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "sentinel.log"))
		t.Fatalf("open through the sentinel: %v\n%s", err, b)
	}
	defer q.Close()
	if q.Keys().Queue != "download_queue" {
		t.Errorf("sentinel mode changed the key names: %+v", q.Keys())
	}
	if err := q.Push(ctx, []record.Task{{ID: "1", URL: "http://h/a"}}); err != nil {
		t.Fatal(err)
	}
	if err := q.SetExitFlag(ctx, true); err != nil {
		t.Fatal(err)
	}
	// The task and the flag are on the master itself.
	direct := redis.NewClient(&redis.Options{Addr: u.Host})
	defer direct.Close()
	if v, err := direct.LIndex(ctx, "download_queue", 0).Result(); err != nil || !strings.Contains(v, `"id":"1"`) {
		t.Fatalf("master's queue: %q %v", v, err)
	}
	if n, _ := direct.Exists(ctx, "download_exit_flag").Result(); n != 1 {
		t.Fatal("exit flag not on the master")
	}
	if _, err := queue.Open(ctx, "redis-sentinel://"+sentinel+"/0?master_name=nosuch", queue.NewKeys("q", "p_")); err == nil {
		t.Fatal("opened a master the sentinel does not know")
	}
}
