package testenv

import (
	"net"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func schemaExists(t *testing.T, name string) bool {
	t.Helper()
	_, db := MySQL(t) // any connection to the server will do
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func TestMySQLGivesEachTestItsOwnDatabaseAndDropsIt(t *testing.T) {
	t.Parallel()
	var names []string
	for range 2 {
		t.Run("user", func(t *testing.T) {
			dsn, db := MySQL(t)
			cfg, err := mysql.ParseDSN(dsn)
			if err != nil {
				t.Fatal(err)
			}
			if !cfg.ParseTime || !cfg.InterpolateParams || !strings.HasPrefix(cfg.DBName, "dltest_") {
				t.Fatalf("DSN %s lacks parseTime, interpolateParams or the database", dsn)
			}
			var cur string
			if err := db.QueryRow("SELECT DATABASE()").Scan(&cur); err != nil || cur != cfg.DBName {
				t.Fatalf("connected to %q (%v), want %q", cur, err, cfg.DBName)
			}
			if _, err := db.Exec("CREATE TABLE files (id BIGINT PRIMARY KEY, url TEXT)"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec("INSERT INTO files VALUES (?, ?)", 1, "http://x/"); err != nil {
				t.Fatal(err)
			}
			names = append(names, cur)
		})
	}
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("database names %v are not unique", names)
	}
	for _, n := range names {
		if schemaExists(t, n) {
			t.Errorf("database %s still exists after its test", n)
		}
	}
}

func TestMySQLUnreachableFailsClearly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("DL_TEST_MYSQL_DSN", "root:s3cret@tcp("+addr+")/")
	msg := fatalOf(t, func(tb testing.TB) { MySQL(tb) })
	if !strings.Contains(msg, "unreachable") || !strings.Contains(msg, addr) {
		t.Fatalf("message %q does not say the server at %s is unreachable", msg, addr)
	}
	if strings.Contains(msg, "s3cret") {
		t.Fatalf("message %q shows the password", msg)
	}
}
