package queue_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/testenv"
)

func open(t *testing.T) (*queue.Queue, queue.Keys) {
	t.Helper()
	url, prefix, _ := testenv.Redis(t)
	keys := queue.NewKeys(prefix+"download_queue", prefix+"download_")
	q, err := queue.Open(context.Background(), url, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q, keys
}

func TestPushPopKeepsTheSeedPayload(t *testing.T) {
	q, keys := open(t)
	ctx := context.Background()
	tasks := []record.Task{{ID: "1", URL: "http://h/a", Token: "t"}, {ID: "2", URL: "http://h/b"}}
	if err := q.Push(ctx, tasks); err != nil {
		t.Fatal(err)
	}
	// The original worker does json.loads(payload)['id'] and ['url'].
	raw, err := q.Client().LIndex(ctx, keys.Queue, 0).Result()
	if err != nil {
		t.Fatal(err)
	}
	var seed map[string]any
	if err := json.Unmarshal([]byte(raw), &seed); err != nil || seed["id"] != "1" || seed["url"] != "http://h/a" {
		t.Fatalf("payload %s is not the seed's", raw)
	}
	// A payload the original distributor pushed (json.dumps, with spaces) and a bad one.
	q.Client().RPush(ctx, keys.Queue, `{"id": "3", "url": "http://h/c"}`, `garbage`)
	got, bad, err := q.Pop(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != tasks[0] || got[1] != tasks[1] || got[2].ID != "3" {
		t.Fatalf("popped %+v", got)
	}
	if len(bad) != 1 || !strings.Contains(bad[0].Error(), "garbage") {
		t.Fatalf("bad %v", bad)
	}
	got, _, err = q.Pop(ctx, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty queue popped %v %v", got, err)
	}
	start := time.Now()
	got, _, err = q.Wait(ctx, time.Second)
	if err != nil || len(got) != 0 || time.Since(start) < 900*time.Millisecond {
		t.Fatalf("wait on empty queue: %v %v after %v", got, err, time.Since(start))
	}
}

func TestExitFlag(t *testing.T) {
	q, keys := open(t)
	ctx := context.Background()
	for _, on := range []bool{true, false, true} {
		if err := q.SetExitFlag(ctx, on); err != nil {
			t.Fatal(err)
		}
		got, err := q.ExitFlag(ctx)
		if err != nil || got != on {
			t.Fatalf("flag %v (%v), want %v", got, err, on)
		}
	}
	if v, _ := q.Client().Get(ctx, keys.ExitFlag).Result(); v != "1" {
		t.Fatalf("flag value %q, want the seed's \"1\"", v)
	}
}

func TestSetResultsHasSeedFieldsAndTTL(t *testing.T) {
	q, keys := open(t)
	ctx := context.Background()
	rs := []record.Result{{ID: "9", URL: "http://h/a", Outcome: record.Done, Path: "p", Bytes: 5, Duration: 1.5}}
	if err := q.SetResults(ctx, rs, []string{"done"}); err != nil {
		t.Fatal(err)
	}
	raw, err := q.Client().Get(ctx, keys.Result("9")).Result()
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "success", "message", "timestamp", "outcome", "bytes"} {
		if _, ok := v[k]; !ok {
			t.Fatalf("result %s lacks %q", raw, k)
		}
	}
	if v["success"] != true {
		t.Fatalf("success %v", v["success"])
	}
	ttl, _ := q.Client().TTL(ctx, keys.Result("9")).Result()
	if ttl < 23*time.Hour || ttl > 24*time.Hour {
		t.Fatalf("ttl %v, want 24h", ttl)
	}
}

func TestOpenErrorNamesServerWithoutPassword(t *testing.T) {
	_, err := queue.Open(context.Background(), "redis://:s3cret@127.0.0.1:1/0", queue.NewKeys("q", "p_"))
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("error %v: want the address and no password", err)
	}
}

// A rediss:// URL for a server that does not speak TLS (plain Redis reads the
// handshake as the start of a command and waits) times out: the error says
// what is likely wrong instead of only "context deadline exceeded".
func TestOpenTLSToAServerThatDoesNotAnswerSaysSo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered, until the test ends
		}
	}()
	for _, scheme := range []string{"rediss", "redis"} {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		q, err := queue.Open(ctx, scheme+"://"+ln.Addr().String()+"/0?dial_timeout=300ms&read_timeout=300ms&write_timeout=300ms&max_retries=-1", queue.NewKeys("q", "p_"))
		cancel()
		if err == nil {
			q.Close()
			t.Fatalf("%s: Open succeeded against a server that never answers", scheme)
		}
		hint := strings.Contains(err.Error(), "the URL is redis://")
		if hint != (scheme == "rediss") {
			t.Errorf("%s: %v", scheme, err)
		}
	}
}
