package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// DefaultMySQL is the server the tests use unless DL_TEST_MYSQL_DSN says
// otherwise.
const DefaultMySQL = "root@tcp(127.0.0.1:3306)/"

var dbCounter atomic.Int64

// MySQL creates a database of the test's own on the server named by
// DL_TEST_MYSQL_DSN (default DefaultMySQL) and returns a DSN for it (with
// parseTime and interpolateParams, as the tools use) and an open handle. The
// database is dropped at cleanup. An unreachable server fails the test: CI
// must never skip these quietly.
func MySQL(t testing.TB) (dsn string, db *sql.DB) {
	t.Helper()
	cfg, err := mysql.ParseDSN(envOr("DL_TEST_MYSQL_DSN", DefaultMySQL))
	if err != nil {
		t.Fatalf("testenv: DL_TEST_MYSQL_DSN is not a MySQL DSN: %v", err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	cfg.DBName = ""
	admin, err := openPing(cfg)
	if err != nil {
		t.Fatalf("testenv: MySQL server %s is unreachable (start it, or point DL_TEST_MYSQL_DSN at one): %v", where(cfg), err)
	}

	name := fmt.Sprintf("dltest_%d_%d_%s", os.Getpid(), dbCounter.Add(1), randomHex(3))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"`"); err != nil {
		admin.Close()
		t.Fatalf("testenv: create database %s on %s: %v", name, where(cfg), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
		admin.Close()
	})

	cfg = cfg.Clone()
	cfg.DBName, cfg.ParseTime, cfg.InterpolateParams = name, true, true
	db, err = openPing(cfg)
	if err != nil {
		t.Fatalf("testenv: connect to database %s: %v", name, err)
	}
	t.Cleanup(func() { db.Close() }) // runs before the drop: cleanups are LIFO
	return cfg.FormatDSN(), db
}

func openPing(cfg *mysql.Config) (*sql.DB, error) {
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("configure connector: %w", err)
	}
	db := sql.OpenDB(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("ping: %w", err)
	}
	return db, nil
}

// where names a server without its password.
func where(cfg *mysql.Config) string {
	return fmt.Sprintf("%s@%s(%s)", cfg.User, cfg.Net, cfg.Addr)
}

// WithSession returns dsn with session variables (name, value, name,
// value...) set on each of its connections, as the driver does for a DSN's
// parameters when it connects: a test's own statement limit, language or
// read-only flag, which no other test's session sees. A value is written
// as SQL (a string quoted: "'zh_CN'").
func WithSession(t testing.TB, dsn string, vars ...string) string {
	t.Helper()
	if len(vars)%2 != 0 {
		t.Fatalf("testenv: session variables %q: want name and value pairs", vars)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("testenv: %q is not a MySQL DSN: %v", dsn, err)
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	for i := 0; i < len(vars); i += 2 {
		cfg.Params[vars[i]] = vars[i+1]
	}
	return cfg.FormatDSN()
}

// ReadOnlyPool leaves pool with one idle connection, whose session refuses
// writes, as a failover's old primary does while a new connection reaches
// the new one: the pool's next statement gets it, and only a connection
// made afresh can write.
func ReadOnlyPool(t testing.TB, pool *sql.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool.SetMaxIdleConns(0) // closes the idle ones: the one made below is the pool's only one
	pool.SetMaxIdleConns(1)
	conn, err := pool.Conn(ctx)
	if err != nil {
		t.Fatalf("testenv: connect: %v", err)
	}
	defer conn.Close() // back to the pool, idle
	if _, err := conn.ExecContext(ctx, "SET SESSION TRANSACTION READ ONLY"); err != nil {
		t.Fatalf("testenv: make a session read-only: %v", err)
	}
}
