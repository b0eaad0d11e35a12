package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sys/unix"

	"github.com/dlkit/dl/internal/store"
)

// env is what every workload shares: the origin, the benchmark's own
// database and Redis key prefix, and the binaries.
type env struct {
	bin       string // directory with dl-* and dl-origin
	seed      string // seed_downloader.py, "" to skip the original design
	python    string
	work      string // scratch directory; each run gets a fresh one below it
	origin    string // base URL
	originCmd *exec.Cmd

	mysqlCfg *mysql.Config // admin (no database)
	dbName   string
	admin    *sql.DB // no database selected
	db       *sql.DB // the benchmark's database

	redisURL  string
	rdb       *redis.Client
	prefix    string // every dl key of the benchmark starts with it
	seedDB    int    // Redis database the original design uses (its key names are fixed)
	seedRedis *redis.Client

	runs int // counter for fresh names

	settleWarned bool
}

var serving = regexp.MustCompile(`url=(http://\S+)`)

// startOrigin runs dl-origin on a free loopback port and waits for its
// "serving" line.
func (e *env) startOrigin() error {
	cmd := exec.Command(e.bin+"/dl-origin", "--listen", "127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("origin stderr: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dl-origin: %w", err)
	}
	e.originCmd = cmd
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if m := serving.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case u := <-found:
		e.origin = u
		return nil
	case <-time.After(20 * time.Second):
		return errors.New("dl-origin did not say where it serves within 20s")
	}
}

func (e *env) openServices(ctx context.Context, adminDSN, redisURL string, seedDB int) error {
	cfg, err := mysql.ParseDSN(adminDSN)
	if err != nil {
		return fmt.Errorf("--mysql: %w", err)
	}
	cfg.DBName = ""
	cfg.InterpolateParams = true
	cfg.ParseTime = true
	cfg.MaxAllowedPacket = 64 << 20
	e.mysqlCfg = cfg
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("mysql: %w", err)
	}
	e.admin = sql.OpenDB(conn)
	e.admin.SetMaxOpenConns(4)
	if err := e.admin.PingContext(ctx); err != nil {
		return fmt.Errorf("mysql at %s: %w (is MariaDB running? scripts/services starts it)", cfg.Addr, err)
	}
	e.dbName = fmt.Sprintf("dlbench_%d", os.Getpid())
	if _, err := e.admin.ExecContext(ctx, "CREATE DATABASE `"+e.dbName+"`"); err != nil {
		return fmt.Errorf("create database %s: %w", e.dbName, err)
	}
	dcfg := cfg.Clone()
	dcfg.DBName = e.dbName
	conn, err = mysql.NewConnector(dcfg)
	if err != nil {
		return fmt.Errorf("mysql: %w", err)
	}
	e.db = sql.OpenDB(conn)
	e.db.SetMaxOpenConns(4)

	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("--redis: %w", err)
	}
	e.redisURL = redisURL
	e.rdb = redis.NewClient(opt)
	if err := e.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w (is Redis running? scripts/services starts it)", opt.Addr, err)
	}
	e.prefix = fmt.Sprintf("dlbench:%d:", os.Getpid())

	sopt := *opt
	sopt.DB = seedDB
	e.seedDB = seedDB
	e.seedRedis = redis.NewClient(&sopt)
	return nil
}

// close drops the database and deletes every key the benchmark made.
func (e *env) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if e.originCmd != nil && e.originCmd.Process != nil {
		_ = e.originCmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = e.originCmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-e.originCmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	if e.db != nil {
		e.db.Close()
	}
	if e.admin != nil && e.dbName != "" {
		if _, err := e.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+e.dbName+"`"); err != nil {
			logf("cleanup: drop database %s: %v", e.dbName, err)
		}
		e.admin.Close()
	}
	if e.rdb != nil {
		if err := deleteKeys(ctx, e.rdb, e.prefix+"*"); err != nil {
			logf("cleanup: redis keys %s*: %v", e.prefix, err)
		}
		e.rdb.Close()
	}
	if e.seedRedis != nil {
		if err := e.cleanSeedKeys(ctx); err != nil {
			logf("cleanup: redis db %d: %v", e.seedDB, err)
		}
		e.seedRedis.Close()
	}
}

// dsn is the tools' DSN for the benchmark's database.
func (e *env) dsn() string {
	c := e.mysqlCfg.Clone()
	c.DBName = e.dbName
	c.InterpolateParams = false
	c.ParseTime = false
	c.MaxAllowedPacket = 0
	return c.FormatDSN()
}

// dsnVia is the DSN through a proxy at addr.
func (e *env) dsnVia(addr string) string {
	c := e.mysqlCfg.Clone()
	c.DBName = e.dbName
	c.Net, c.Addr = "tcp", addr
	c.InterpolateParams = false
	c.ParseTime = false
	c.MaxAllowedPacket = 0
	return c.FormatDSN()
}

// next returns a fresh number for table, key and directory names.
func (e *env) next() int {
	e.runs++
	return e.runs
}

// dlTable creates a table of dl's schema (through the store package, the one
// definition of it) and fills it with rows.
func (e *env) dlTable(ctx context.Context, name string, rows []row) error {
	st, err := store.Open(ctx, e.dsn(), name)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Ensure(ctx); err != nil {
		return err
	}
	return e.insert(ctx, name, rows)
}

// seedSchema is the table exactly as the original design creates it (see
// seed_downloader.py, _create_table), for its distributor, which does not
// create the table itself.
const seedSchema = `CREATE TABLE files (
    id VARCHAR(255) PRIMARY KEY,
    url TEXT NOT NULL,
    status TINYINT NOT NULL DEFAULT 0,
    file_path TEXT,
    download_time FLOAT,
    error_message TEXT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    KEY idx_status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`

// seedTable makes a fresh "files" table (the original's name is fixed) with rows.
func (e *env) seedTable(ctx context.Context, rows []row) error {
	if _, err := e.db.ExecContext(ctx, "DROP TABLE IF EXISTS files"); err != nil {
		return fmt.Errorf("drop files: %w", err)
	}
	if _, err := e.db.ExecContext(ctx, seedSchema); err != nil {
		return fmt.Errorf("create files: %w", err)
	}
	return e.insert(ctx, "files", rows)
}

func (e *env) dropTable(ctx context.Context, name string) {
	if _, err := e.db.ExecContext(ctx, "DROP TABLE IF EXISTS `"+name+"`"); err != nil {
		logf("drop table %s: %v", name, err)
	}
}

// insert adds rows in multi-row statements. Ids and URLs are made by the
// benchmark (letters, digits and URL punctuation), so they are quoted here
// rather than sent as 2,000 parameters.
func (e *env) insert(ctx context.Context, table string, rows []row) error {
	const per = 2000
	var b strings.Builder
	for i := 0; i < len(rows); i += per {
		b.Reset()
		b.WriteString("INSERT INTO `" + table + "` (id, url) VALUES ")
		for j, r := range rows[i:min(i+per, len(rows))] {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "('%s','%s')", sqlQuote(r.id), sqlQuote(r.url))
		}
		if _, err := e.db.ExecContext(ctx, b.String()); err != nil {
			return fmt.Errorf("insert rows into %s: %w", table, err)
		}
	}
	return nil
}

func sqlQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}

// statusCounts returns the number of rows per status.
func (e *env) statusCounts(ctx context.Context, table string) (map[int]int, error) {
	rows, err := e.db.QueryContext(ctx, "SELECT status, COUNT(*) FROM `"+table+"` GROUP BY status")
	if err != nil {
		return nil, fmt.Errorf("count rows of %s: %w", table, err)
	}
	defer rows.Close()
	m := map[int]int{}
	for rows.Next() {
		var s, n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		m[s] = n
	}
	return m, rows.Err()
}

// seedKeys are the original design's fixed key names.
const (
	seedQueue = "download_queue"
	seedFlag  = "download_exit_flag"
)

// checkSeedDB refuses a Redis database where the original's keys are in use
// by someone else.
func (e *env) checkSeedDB(ctx context.Context) error {
	n, err := e.seedRedis.Exists(ctx, seedQueue, seedFlag).Result()
	if err != nil {
		return fmt.Errorf("redis db %d: %w", e.seedDB, err)
	}
	if n > 0 {
		return fmt.Errorf("redis db %d already has %s or %s: another user of the original design's keys? pick another with --seed-redis-db", e.seedDB, seedQueue, seedFlag)
	}
	return nil
}

func (e *env) cleanSeedKeys(ctx context.Context) error {
	if err := e.seedRedis.Del(ctx, seedQueue, seedFlag).Err(); err != nil {
		return err
	}
	return deleteKeys(ctx, e.seedRedis, "download_result:*")
}

// deleteKeys removes keys matching pattern with SCAN and UNLINK, so a shared
// Redis is never blocked.
func deleteKeys(ctx context.Context, rdb *redis.Client, pattern string) error {
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) >= 1000 {
			if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return rdb.Unlink(ctx, batch...).Err()
	}
	return nil
}

// freshDir makes a new directory for one run, with logs/ and d/ (where the
// downloads go) in it: this machine's root filesystem creates files slowly
// for a while after many deletions, so runs never reuse a directory.
func (e *env) freshDir(label string) (string, error) {
	d := fmt.Sprintf("%s/%03d-%s", e.work, e.next(), label)
	for _, sub := range []string{"/logs", "/d"} {
		if err := os.MkdirAll(d+sub, 0o755); err != nil {
			return "", fmt.Errorf("create run directory: %w", err)
		}
	}
	return d, nil
}

// settleMemory writes back what is dirty and drops the clean page cache
// before a large-file run, so that each tool writes its gigabyte into
// memory the guest has used before. On the Firecracker guests this was
// measured on, which report free memory to their host, the first write to
// a page the guest has not used yet, or has given back, is several times
// slower: dd of one GiB into tmpfs took 0.43 s into pages just freed and
// 2.3-4.7 s into new ones. The small-file workloads before this one grow
// the page cache into such memory, and in full runs the large-file rounds
// then took two to three times their CPU, mostly dl-fetch's (whichever
// tool drew the new pages). It needs root; without it, it says so once
// and the runs go on as they are.
func (e *env) settleMemory() {
	unix.Sync()
	err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("1\n"), 0)
	if err != nil && !e.settleWarned {
		e.settleWarned = true
		logf("large-file runs start without dropping the page cache (%v): their figures may vary more", err)
	}
}
