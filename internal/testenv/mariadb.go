package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// StartMariaDB runs a MariaDB of the test's own: a fresh data directory, a
// free loopback port, root without a password, and one database, "dltest".
// It returns a DSN for that database (parseTime, interpolateParams) and
// controls: stop kills the server (SIGKILL, so a restart runs crash
// recovery, like a real outage), start brings it back on the same port with
// its data. It is killed and its files removed at cleanup. Expect about five
// seconds, most of it mariadb-install-db. The machine's own MariaDB is never
// touched.
func StartMariaDB(t testing.TB) (dsn string, stop, start func()) {
	t.Helper()
	install := lookPath(t, "mariadb-install-db")
	mariadbd := lookPath(t, "mariadbd")
	// Not t.TempDir: the socket path must fit in 107 bytes, and test names
	// make those paths long.
	dir, err := os.MkdirTemp("", "dltest-mariadb-")
	if err != nil {
		t.Fatalf("testenv: create MariaDB dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data, tmp := filepath.Join(dir, "data"), filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatalf("testenv: create MariaDB tmpdir: %v", err)
	}
	// Small InnoDB files: the defaults cost 100 MB and seconds per test.
	// A temporary directory of its own: a MariaDB that starts (and
	// mariadb-install-db's) removes every "#sql" file in its tmpdir, which
	// in /tmp would be the machine's MariaDB's tables in use.
	common := []string{"--innodb-buffer-pool-size=16M", "--innodb-log-file-size=4M", "--skip-name-resolve", "--tmpdir=" + tmp}
	if os.Geteuid() == 0 {
		common = append(common, "--user=root") // mariadbd refuses to run as root otherwise
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"}, common...)
	if out, err := exec.CommandContext(ctx, install, args...).CombinedOutput(); err != nil {
		t.Fatalf("testenv: mariadb-install-db: %v\n%s", err, tail(string(out), 16<<10))
	}

	var cfg *mysql.Config
	s := startOnFreePort(t, func(port int) *server {
		cfg = mysql.NewConfig()
		cfg.User, cfg.Net, cfg.Addr = "root", "tcp", "127.0.0.1:"+strconv.Itoa(port)
		cfg.Timeout = 2 * time.Second
		errLog := filepath.Join(dir, "error.log")
		return &server{
			name: "mariadbd",
			argv: append([]string{mariadbd, "--no-defaults", "--datadir=" + data,
				"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1",
				"--socket=" + filepath.Join(dir, "mysqld.sock"), "--pid-file=" + filepath.Join(dir, "mariadbd.pid"),
				"--log-error=" + errLog}, common...),
			out:   filepath.Join(dir, "mariadbd.out"),
			logs:  []string{errLog},
			ready: func(ctx context.Context) error { return pingMySQL(ctx, cfg) },
		}
	})

	db, err := openPing(cfg)
	if err == nil {
		_, err = db.ExecContext(ctx, "CREATE DATABASE dltest")
		db.Close()
	}
	if err != nil {
		t.Fatalf("testenv: create database on the private MariaDB: %v", err)
	}
	cfg.DBName, cfg.ParseTime, cfg.InterpolateParams = "dltest", true, true
	stop, start = controls(t, s)
	return cfg.FormatDSN(), stop, start
}

func pingMySQL(ctx context.Context, cfg *mysql.Config) error {
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("configure connector: %w", err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}
