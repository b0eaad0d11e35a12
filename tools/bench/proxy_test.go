package main

import (
	"context"
	"database/sql"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/dlkit/dl/internal/testenv"
)

// The profile's statements per file are only as good as the proxy's
// counting: check it against statements and commands sent on purpose.
func TestProxyCountsMySQLStatements(t *testing.T) {
	dsn, _ := testenv.MySQL(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p, err := startProxy("mysql", cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = p.addr()
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))")
	exec("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
	exec("UPDATE t SET v = ? WHERE id = ?", "c", 1)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("UPDATE t SET v = 'd' WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("count %d, %v", n, err)
	}
	db.Close()
	p.close()
	got, bursts, conns := p.snapshot()
	want := map[string]int64{"CREATE": 1, "INSERT": 1, "UPDATE": 2, "START": 1, "COMMIT": 1, "SELECT": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: counted %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	if conns != 1 || bursts < 7 {
		t.Errorf("%d connections and %d bursts, want 1 and at least 7", conns, bursts)
	}
}

func TestProxyCountsRedisCommandsAndPipelines(t *testing.T) {
	redisURL, prefix, _ := testenv.Redis(t)
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := startProxy("redis", opt.Addr)
	if err != nil {
		t.Fatal(err)
	}
	opt.Addr = p.addr()
	opt.PoolSize = 1
	rdb := redis.NewClient(opt)
	ctx := context.Background()
	if err := rdb.Set(ctx, prefix+"a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	before, burstsBefore, _ := p.snapshot()
	_, err = rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for range 100 {
			pl.RPush(ctx, prefix+"q", "x")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rdb.Close()
	p.close()
	got, bursts, _ := p.snapshot()
	if got["SET"] != 1 || got["RPUSH"]-before["RPUSH"] != 100 {
		t.Errorf("counted %v, want SET 1 and RPUSH 100", got)
	}
	// A pipeline is one write, or a few when it exceeds a socket buffer.
	if d := bursts - burstsBefore; d < 1 || d > 5 {
		t.Errorf("the pipeline of 100 came in %d bursts, want 1 to 5", d)
	}
}
