package testenv

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
)

func TestRedisCleanupRemovesEveryKeyUnderThePrefixOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, outer, rdb := Redis(t)
	if err := rdb.Set(ctx, outer+"keep", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var inner string
	t.Run("user", func(t *testing.T) {
		url, prefix, rdb := Redis(t)
		if url == "" || !strings.HasPrefix(prefix, "dltest:") || prefix == outer {
			t.Fatalf("url %q prefix %q", url, prefix)
		}
		inner = prefix
		pipe := rdb.Pipeline()
		for i := range 1203 { // more than one SCAN page and one UNLINK batch
			pipe.Set(ctx, fmt.Sprintf("%sk%d", prefix, i), "v", 0)
		}
		pipe.RPush(ctx, prefix+"download_queue", "a", "b")
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	})
	keys, err := rdb.Keys(ctx, inner+"*").Result()
	if err != nil || len(keys) != 0 {
		t.Fatalf("%d keys left under %s (%v)", len(keys), inner, err)
	}
	if n, err := rdb.Exists(ctx, outer+"keep").Result(); err != nil || n != 1 {
		t.Fatalf("a key outside the prefix was deleted (%v)", err)
	}
}

func TestRedisUnreachableFailsClearly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("DL_TEST_REDIS_URL", "redis://:s3cret@"+addr+"/0")
	msg := fatalOf(t, func(tb testing.TB) { Redis(tb) })
	if !strings.Contains(msg, "unreachable") || !strings.Contains(msg, addr) || strings.Contains(msg, "s3cret") {
		t.Fatalf("message %q: want unreachable, the address, and no password", msg)
	}
}
