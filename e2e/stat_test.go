package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dlkit/dl/internal/testenv"
)

// TestStatWatchStartsWithRedisDown: dl-stat --watch, run as a service
// that feeds node_exporter, must write its file while Redis is down, with
// dl_redis_up 0 and the table's rows, and follow Redis when it comes up:
// that is what the README's dl_redis_up == 0 alert relies on. It used to
// exit at once, writing nothing, when Redis was down as it started (a
// host booting, a Redis restarting), so the alert could never fire.
func TestStatWatchStartsWithRedisDown(t *testing.T) {
	t.Parallel()
	bin := testenv.Binaries(t)
	dsn, db := testenv.MySQL(t)
	redisURL, stopRedis, startRedis := testenv.StartRedisServer(t)
	stopRedis()
	if out, stderr, err := testenv.Run(t, bg, filepath.Join(bin, "dl-select"), []string{"DL_MYSQL_DSN=" + dsn}, nil, "--limit", "1"); err != nil {
		t.Fatalf("dl-select creating the table: %v\n%s%s", err, out, stderr)
	}
	if _, err := db.Exec(`INSERT INTO files (id, url, status) VALUES ('1', 'http://h/1', 1), ('2', 'http://h/2', 0)`); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "dl.prom")
	read := func() string {
		b, _ := os.ReadFile(out)
		return string(b)
	}
	ctx, cancel := context.WithTimeout(bg, 2*time.Minute)
	defer cancel()
	p := testenv.Start(t, ctx, nil, testenv.Proc{Bin: filepath.Join(bin, "dl-stat"),
		Args: []string{"--prometheus", "--watch", "100ms", "--output", out},
		Env:  []string{"DL_MYSQL_DSN=" + dsn, "DL_REDIS_URL=" + redisURL, "DL_KEY_PREFIX=dl_stat_test_"}})
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, func() bool {
		s := read()
		return strings.Contains(s, `dl_redis_up{table="files"} 0`) && strings.Contains(s, `dl_rows{status="done",table="files"} 1`)
	}, "with Redis down, dl-stat wrote\n%s\nstderr:\n%s", later(read), later(func() string { return p.Stderr(0) }))
	if s := read(); strings.Contains(s, "dl_queue_length") {
		t.Errorf("a queue length while Redis is down:\n%s", s)
	}

	startRedis()
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, func() bool {
		return strings.Contains(read(), `dl_redis_up{table="files"} 1`)
	}, "with Redis back, dl-stat wrote\n%s\nstderr:\n%s", later(read), later(func() string { return p.Stderr(0) }))
	if s := read(); !strings.Contains(s, `dl_queue_length{queue="download_queue"} 0`) {
		t.Errorf("no queue length once Redis is back:\n%s", s)
	}
	p.Signal(syscall.SIGTERM)
	if r := p.Wait(); !r.OK() {
		t.Errorf("dl-stat stopped by SIGTERM:\n%s", r)
	}
}

// later is a message argument read when the message is made.
type later func() string

func (f later) String() string { return f() }

// TestStatOnceWithRedisDown: a single look while Redis is down is a
// failure (exit 1, one line naming Redis), as it has always been.
func TestStatOnceWithRedisDown(t *testing.T) {
	t.Parallel()
	bin := testenv.Binaries(t)
	dsn, _ := testenv.MySQL(t)
	redisURL, stopRedis, _ := testenv.StartRedisServer(t)
	stopRedis()
	out, stderr, err := testenv.Run(t, bg, filepath.Join(bin, "dl-stat"), []string{"DL_MYSQL_DSN=" + dsn, "DL_REDIS_URL=" + redisURL}, nil)
	if err == nil || !strings.HasPrefix(stderr, "dl-stat: redis at "+redisURL) || strings.Count(stderr, "\n") != 1 || out != "" {
		t.Errorf("exit %v, stderr %q, stdout %q: want a failure, in one line naming Redis, and nothing on stdout", err, stderr, out)
	}
}

// TestStatOnlyReads: dl-stat reads the table and writes nothing there. It
// used to create or upgrade the table as the other tools do, so a DL_TABLE
// with a typo made an empty table in the operator's database and showed
// zeros as if all were well, and a monitoring user allowed only SELECT
// could not run it at all (CREATE command denied).
func TestStatOnlyReads(t *testing.T) {
	t.Parallel()
	bin := testenv.Binaries(t)
	dsn, db := testenv.MySQL(t)
	// A table as the other tools leave it, with rows.
	out, stderr, err := testenv.Run(t, bg, filepath.Join(bin, "dl-select"), []string{"DL_MYSQL_DSN=" + dsn}, nil, "--limit", "1")
	if err != nil {
		t.Fatalf("dl-select: %v\n%s%s", err, out, stderr)
	}
	if _, err := db.Exec(`INSERT INTO files (id, url, status) VALUES ('1', 'http://h/1', 1), ('2', 'http://h/2', 0)`); err != nil {
		t.Fatal(err)
	}
	redisURL, prefix, _ := testenv.Redis(t)
	vars := func(dsn string, more ...string) []string {
		return append([]string{"DL_MYSQL_DSN=" + dsn, "DL_REDIS_URL=" + redisURL, "DL_KEY_PREFIX=" + prefix, "DL_QUEUE=" + prefix + "q"}, more...)
	}

	t.Run("a table that does not exist", func(t *testing.T) {
		out, stderr, err := testenv.Run(t, bg, filepath.Join(bin, "dl-stat"), vars(dsn, "DL_TABLE=flies"), nil)
		if err == nil || out != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "flies") || !strings.Contains(stderr, "DL_TABLE") {
			t.Errorf("exit %v, stdout %q, stderr %q: want a failure in one line naming the table and DL_TABLE", err, out, stderr)
		}
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'flies'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("dl-stat created the table flies (%d, %v)", n, err)
		}
	})

	t.Run("a user allowed only SELECT", func(t *testing.T) {
		b := make([]byte, 4)
		rand.Read(b)
		user := "dlro_" + hex.EncodeToString(b)
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
			for _, stmt := range []string{
				"CREATE USER '" + user + "'@'" + host + "' IDENTIFIED BY 'ro'",
				"GRANT SELECT ON `" + cfg.DBName + "`.* TO '" + user + "'@'" + host + "'",
			} {
				if _, err := db.Exec(stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			t.Cleanup(func() {
				if _, err := db.Exec("DROP USER IF EXISTS '" + user + "'@'" + host + "'"); err != nil {
					t.Errorf("drop user %s@%s: %v", user, host, err)
				}
			})
		}
		cfg.User, cfg.Passwd = user, "ro"
		out, stderr, err := testenv.Run(t, bg, filepath.Join(bin, "dl-stat"), vars(cfg.FormatDSN()), nil, "--json")
		if err != nil || !strings.Contains(out, `"done":1`) || !strings.Contains(out, `"pending":1`) {
			t.Errorf("dl-stat as a user allowed only SELECT: exit %v, stdout %q, stderr %q", err, out, stderr)
		}
	})
}
