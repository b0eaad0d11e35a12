package testenv

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

func TestStartRedisServerStopsAndStarts(t *testing.T) {
	t.Parallel()
	url, stop, start := StartRedisServer(t)
	if strings.Contains(url, ":6379/") {
		t.Fatalf("private Redis took the machine's port: %s", url)
	}
	rdb, err := redisClient(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	stop()
	stop() // idempotent
	if err := pingRedis(ctx, strings.TrimSuffix(strings.TrimPrefix(url, "redis://"), "/0")); err == nil {
		t.Fatal("Redis still answers after stop")
	}
	start()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis down after start: %v", err)
	}
	if n, _ := rdb.Exists(ctx, "k").Result(); n != 0 {
		t.Fatal("a key survived the restart of a Redis without persistence")
	}
}

func TestStartMariaDBStopsAndStartsKeepingData(t *testing.T) {
	t.Parallel()
	dsn, stop, start := StartMariaDB(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr == "127.0.0.1:3306" || cfg.DBName != "dltest" || !cfg.ParseTime {
		t.Fatalf("DSN %s", dsn)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE files (id BIGINT PRIMARY KEY, status TINYINT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO files VALUES (1, 2)"); err != nil {
		t.Fatal(err)
	}

	stop()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err == nil {
		t.Fatal("MariaDB still answers after stop")
	}
	start()
	// The old pool must recover by itself, as the tools' pools will.
	var status int
	if err := db.QueryRow("SELECT status FROM files WHERE id = 1").Scan(&status); err != nil || status != 2 {
		t.Fatalf("after restart: status %d, %v; want the committed row", status, err)
	}
}
