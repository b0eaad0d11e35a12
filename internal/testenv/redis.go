package testenv

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedis is the server the tests use unless DL_TEST_REDIS_URL says
// otherwise.
const DefaultRedis = "redis://127.0.0.1:6379/0"

// Redis returns the URL of the test Redis (DL_TEST_REDIS_URL, default
// DefaultRedis), a key prefix of the test's own ("dltest:<random>:") and a
// client. Every key under the prefix is deleted at cleanup, so the code
// under test must put all its keys under it.
func Redis(t testing.TB) (redisURL, prefix string, rdb *redis.Client) {
	t.Helper()
	redisURL = envOr("DL_TEST_REDIS_URL", DefaultRedis)
	rdb, err := redisClient(redisURL)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		t.Fatalf("testenv: Redis %s is unreachable (start it, or point DL_TEST_REDIS_URL at one): %v", redact(redisURL), err)
	}
	prefix = "dltest:" + randomHex(8) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := deleteKeys(ctx, rdb, prefix); err != nil {
			t.Errorf("testenv: delete Redis keys %s*: %v", prefix, err)
		}
		rdb.Close()
	})
	return redisURL, prefix, rdb
}

func redisClient(redisURL string) (*redis.Client, error) {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("parse Redis URL %s: %w", redact(redisURL), err)
	}
	return redis.NewClient(opt), nil
}

// deleteKeys removes every key starting with prefix. SCAN, not KEYS, so a
// shared Redis is never blocked; UNLINK frees big values off the main thread.
func deleteKeys(ctx context.Context, rdb *redis.Client, prefix string) error {
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := rdb.Unlink(ctx, batch...).Err()
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) >= 500 {
			if err := flush(); err != nil {
				return fmt.Errorf("unlink: %w", err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("unlink: %w", err)
	}
	return nil
}

// redact hides a password in a Redis URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
