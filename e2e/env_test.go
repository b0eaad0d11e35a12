// Package e2e runs the built dl tools in real pipelines against the real
// MariaDB and Redis and an HTTP origin on loopback.
package e2e

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/dlkit/dl/internal/origin"
	"github.com/dlkit/dl/internal/testenv"
)

// env is one test's private pipeline: its own database, Redis keys,
// download directory and origin.
type env struct {
	t      *testing.T
	bin    string
	dsn    string
	db     *sql.DB
	rdb    *redis.Client
	prefix string
	origin *origin.Origin
	base   string // origin's base URL
	dir    string // download directory
	vars   []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t}
	var redisURL string
	e.dsn, e.db = testenv.MySQL(t)
	redisURL, e.prefix, e.rdb = testenv.Redis(t)
	return e.start(redisURL)
}

// outages are the controls of a private MariaDB and Redis that a test may
// take down (never the machine's own).
type outages struct {
	stopMySQL, startMySQL, stopRedis, startRedis func()
}

// newPrivateEnv is newEnv on a MariaDB and a Redis of the test's own.
func newPrivateEnv(t *testing.T) (*env, outages) {
	t.Helper()
	e := &env{t: t}
	var o outages
	var redisURL string
	e.dsn, o.stopMySQL, o.startMySQL = testenv.StartMariaDB(t)
	redisURL, o.stopRedis, o.startRedis = testenv.StartRedisServer(t)
	db, err := sql.Open("mysql", e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	e.rdb = redis.NewClient(opt)
	t.Cleanup(func() { e.rdb.Close() })
	return e.start(redisURL), o
}

func (e *env) start(redisURL string) *env {
	t := e.t
	t.Helper()
	e.bin = testenv.Binaries(t)
	e.origin, e.base = testenv.StartOrigin(t)
	e.dir = t.TempDir()
	e.vars = []string{
		"DL_MYSQL_DSN=" + e.dsn, "DL_REDIS_URL=" + redisURL,
		"DL_QUEUE=" + e.queue(), "DL_KEY_PREFIX=" + e.prefix + "download_",
		"DL_DIR=" + e.dir, "DL_LOG_LEVEL=debug",
	}
	// Create the table as the tools do, so tests can insert rows first.
	if _, stderr, err := testenv.Run(t, context.Background(), e.tool("dl-select"), e.vars, nil, "--limit", "1"); err != nil {
		t.Fatalf("dl-select to create the schema: %v\n%s", err, stderr)
	}
	return e
}

// with returns e's environment plus extra variables (later ones win).
func (e *env) with(extra ...string) []string {
	return append(append([]string{}, e.vars...), extra...)
}

func (e *env) queue() string           { return e.prefix + "download_queue" }
func (e *env) tool(name string) string { return filepath.Join(e.bin, name) }

// proc is a tool of this env with its environment.
func (e *env) proc(name string, args ...string) testenv.Proc {
	return testenv.Proc{Bin: e.tool(name), Args: args, Env: e.vars}
}

func (e *env) script(name string, extra []string, args ...string) testenv.Proc {
	root, _ := filepath.Abs(filepath.Join("..", "scripts"))
	return testenv.Proc{Bin: filepath.Join(root, name), Args: args, Env: append(append([]string{"DL_BIN=" + e.bin}, e.vars...), extra...)}
}

func (e *env) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// file is one row a test inserts and what must become of it.
type file struct {
	id, name string
	size     int64
	knobs    []string
	url      string
	wantOK   bool
}

// insert adds rows for files served by the origin.
func (e *env) insert(files []file) []file {
	e.t.Helper()
	for i := range files {
		f := &files[i]
		if f.url == "" {
			f.url = origin.URL(e.base, f.name, f.size, f.knobs...)
		}
		e.exec("INSERT INTO files (id, url) VALUES (?, ?)", f.id, f.url)
	}
	return files
}

// manyFiles returns n ordinary files, every tenth one sharing its base name
// with another (the original design's collision).
func manyFiles(n int, size int64) []file {
	var fs []file
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("dir%d/file%d.bin", i, i)
		if i%10 == 0 {
			name = fmt.Sprintf("dir%d/same.bin", i)
		}
		fs = append(fs, file{id: fmt.Sprint(i + 1), name: name, size: size + int64(i), wantOK: true})
	}
	return fs
}

// row is a row's final state.
type row struct {
	status int
	path   sql.NullString
	bytes  sql.NullInt64
	sha    sql.NullString
	errMsg sql.NullString
}

func (e *env) rows() map[string]row {
	e.t.Helper()
	rs, err := e.db.Query("SELECT id, status, file_path, bytes, sha256, error_message FROM files")
	if err != nil {
		e.t.Fatal(err)
	}
	defer rs.Close()
	m := map[string]row{}
	for rs.Next() {
		var id string
		var r row
		if err := rs.Scan(&id, &r.status, &r.path, &r.bytes, &r.sha, &r.errMsg); err != nil {
			e.t.Fatal(err)
		}
		m[id] = r
	}
	return m
}

// inFlight tells whether the row of the file name is taken and its
// download under way. A taken row alone is not that: dl-fetch takes the row
// before it asks the origin, and a stop in between gives the task back
// unstarted, so a test that stops a worker "mid-download" waits for both.
func (e *env) inFlight(name string) bool {
	return e.count("status = 2 AND worker IS NOT NULL") == 1 && e.origin.Requests(origin.Path(name)) > 0
}

// underWay is how many downloads the origin has been asked for and whose
// rows are not finished yet: transfers in flight, for a test in which no
// request is repeated.
func (e *env) underWay() int {
	var asked int64
	for p, n := range e.origin.Stats().PathRequests {
		if strings.HasPrefix(p, origin.FilesPrefix) {
			asked += n
		}
	}
	return int(asked) - e.count("status IN (1, -1)")
}

func (e *env) countStatus(status int) int {
	var n int
	if err := e.db.QueryRow("SELECT COUNT(*) FROM files WHERE status = ?", status).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// checkRows checks that every file ended as it must: done rows with a file
// of exactly the origin's bytes, failed rows with a reason; and that no two
// rows share a file.
func (e *env) checkRows(files []file) {
	e.t.Helper()
	rows := e.rows()
	paths := map[string]string{}
	for _, f := range files {
		r, ok := rows[f.id]
		if !ok {
			e.t.Fatalf("row %s is missing", f.id)
		}
		if !f.wantOK {
			if r.status != -1 || !r.errMsg.Valid || r.errMsg.String == "" {
				e.t.Errorf("row %s: status %d error %q, want -1 with a reason", f.id, r.status, r.errMsg.String)
			}
			continue
		}
		if r.status != 1 {
			e.t.Errorf("row %s: status %d (error %q), want 1", f.id, r.status, r.errMsg.String)
			continue
		}
		if other, dup := paths[r.path.String]; dup {
			e.t.Errorf("rows %s and %s share the file %s", f.id, other, r.path.String)
		}
		paths[r.path.String] = f.id
		want := origin.Sum(f.name, f.size)
		if got := sumFile(e.t, r.path.String); got != want {
			e.t.Errorf("row %s: file %s has sha256 %s, want %s", f.id, r.path.String, got, want)
		}
		if r.sha.String != want || r.bytes.Int64 != f.size {
			e.t.Errorf("row %s: recorded %d bytes sha256 %s, want %d %s", f.id, r.bytes.Int64, r.sha.String, f.size, want)
		}
	}
}

func sumFile(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Errorf("open downloaded file: %v", err)
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// lines splits output into non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// noPartials checks that no temporary file is left beside a done file (a
// failed download may keep its partial file for a later resume).
func (e *env) noPartials() {
	e.t.Helper()
	filepath.WalkDir(e.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".part") {
			if _, err := os.Stat(strings.TrimSuffix(p, ".part")); err == nil {
				e.t.Errorf("temporary file left beside its done file: %s", p)
			}
		}
		return nil
	})
}
