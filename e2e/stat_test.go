package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
	if _, err := db.Exec(`CREATE TABLE files (id VARCHAR(255) PRIMARY KEY, url TEXT NOT NULL, status TINYINT NOT NULL DEFAULT 0,
		file_path TEXT, download_time FLOAT, error_message TEXT, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
		updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP)`); err != nil {
		t.Fatal(err)
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
