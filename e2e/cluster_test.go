package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dlkit/dl/internal/testenv"
)

// startCluster runs a three-master Redis Cluster of the test's own on
// loopback ports and returns a redis-cluster:// URL naming all three nodes.
// The nodes are killed at cleanup.
func startCluster(t *testing.T) string {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed (apt-get install redis-server)")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal("redis-cli is not installed (apt-get install redis-tools)")
	}
	dir := t.TempDir()
	var addrs []string
	for i := 0; i < 3; i++ {
		// Two ports each: clients' and the cluster bus (cluster-port).
		port, bus := freePort(t), freePort(t)
		nodeDir := filepath.Join(dir, strconv.Itoa(port))
		if err := os.Mkdir(nodeDir, 0o700); err != nil {
			t.Fatal(err)
		}
		log, err := os.Create(filepath.Join(nodeDir, "redis.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(server, "--port", strconv.Itoa(port), "--cluster-port", strconv.Itoa(bus), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(nodeDir, "nodes.conf"),
			"--cluster-node-timeout", "5000", "--save", "", "--appendonly", "no", "--dir", nodeDir, "--daemonize", "no")
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
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
		addr := "127.0.0.1:" + strconv.Itoa(port)
		testenv.Eventually(t, time.Minute, 50*time.Millisecond, func() bool {
			select {
			case <-exited:
				b, _ := os.ReadFile(filepath.Join(nodeDir, "redis.log"))
				t.Fatalf("cluster node %s exited:\n%s", addr, b)
			default:
			}
			c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
			defer c.Close()
			return c.Ping(context.Background()).Err() == nil
		}, "cluster node %s to answer", addr)
		addrs = append(addrs, addr)
	}
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, addr := range addrs {
		testenv.Eventually(t, time.Minute, 100*time.Millisecond, func() bool {
			c := redis.NewClient(&redis.Options{Addr: addr})
			defer c.Close()
			info, err := c.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_assigned:16384")
		}, "node %s to see the cluster ok", addr)
	}
	return "redis-cluster://" + strings.Join(addrs, ",")
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestPipelineThroughRedisCluster runs the whole pipeline with DL_REDIS_URL
// naming a three-node Redis Cluster: the distributor round, two workers in
// batch mode, the exit flag and dl-stat. Every key of the pipeline must sit
// in one hash slot (so any multi-key command over them is allowed), and the
// slot must not be one every pipeline shares.
func TestPipelineThroughRedisCluster(t *testing.T) {
	e := newEnv(t)
	url := startCluster(t)
	for i, v := range e.vars {
		if strings.HasPrefix(v, "DL_REDIS_URL=") {
			e.vars[i] = "DL_REDIS_URL=" + url
		}
	}
	files := manyFiles(60, 2048)
	files = append(files, file{id: "gone", name: "gone.bin", size: 10, knobs: []string{"status=404"}})
	e.insert(files)

	r := testenv.Pipeline(t, bg, nil, e.proc("dl-select", "--limit", "0"), e.proc("dl-enqueue"))
	if !r.OK() || len(lines(r.Stdout)) != len(files) {
		t.Fatalf("distributor round through the cluster enqueued %d of %d:\n%s", len(lines(r.Stdout)), len(files), r)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(strings.TrimPrefix(url, "redis-cluster://"), ",")})
	defer cc.Close()
	queue := "{" + e.queue() + "}"
	if n, err := cc.LLen(bg, queue).Result(); err != nil || n != int64(len(files)) {
		t.Fatalf("cluster queue %s holds %d (%v), want %d", queue, n, err, len(files))
	}

	done := make(chan testenv.Result, 2)
	for i := 0; i < 2; i++ {
		go func() {
			done <- testenv.Pipeline(t, bg, nil, e.proc("dl-fetch", "--mode", "batch", "--concurrency", "4", "--retries", "0"),
				e.proc("dl-mark", "--max-attempts", "1"))
		}()
	}
	for i := 0; i < 2; i++ {
		if r := <-done; !r.OK() {
			t.Fatalf("worker through the cluster failed:\n%s", r)
		}
	}
	e.checkRows(files)

	if r := testenv.Pipeline(t, bg, nil, e.proc("dl-flag", "set")); !r.OK() {
		t.Fatalf("dl-flag set:\n%s", r)
	}
	if out, _, err := testenv.Run(t, bg, e.tool("dl-flag"), e.vars, nil, "status"); err != nil || !strings.Contains(out, ": set") {
		t.Fatalf("dl-flag status through the cluster: %q %v", out, err)
	}
	out, stderr, err := testenv.Run(t, bg, e.tool("dl-stat"), e.vars, nil, "--json", "--publish")
	if err != nil || !strings.Contains(out, `"exit_flag":true`) || !strings.Contains(out, fmt.Sprintf(`"done":%d`, len(files)-1)) {
		t.Fatalf("dl-stat through the cluster: %v\n%s\n%s", err, out, stderr)
	}

	// Every key the pipeline wrote, on whichever node holds it, is in the
	// queue's slot.
	want, err := cc.ClusterKeySlot(bg, queue).Result()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	err = cc.ForEachMaster(bg, func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, "*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		return iter.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	results := 0
	for _, k := range keys {
		slot, err := cc.ClusterKeySlot(bg, k).Result()
		if err != nil || slot != want {
			t.Errorf("key %s is in slot %d (%v), not the queue's %d", k, slot, err, want)
		}
		if strings.Contains(k, "download_result:") {
			results++
		}
	}
	if results != len(files) || len(keys) != len(files)+2 { // results, the exit flag, the status
		t.Errorf("%d keys (%d results) in the cluster, want %d results + exit flag + status: %v", len(keys), results, len(files), keys)
	}
	if plain, _ := cc.ClusterKeySlot(bg, "download_queue").Result(); plain == want {
		t.Errorf("the test's queue landed in the default queue's slot %d: the tag does not come from the queue's name", want)
	}
}
