package config

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/urfave/cli/v2"

	"github.com/dlkit/dl/internal/testenv"
	"github.com/dlkit/dl/internal/tool"
)

// awayServices returns a Redis of the test's own, stopped, with the control
// that starts it, and the DSN of a MySQL that never comes: a port nothing
// listens on.
func awayServices(t *testing.T) (redisURL string, startRedis func(), noMySQL string) {
	t.Helper()
	redisURL, stop, startRedis := testenv.StartRedisServer(t)
	stop()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return redisURL, startRedis, "root@tcp(" + l.Addr().String() + ")/dl_wait"
}

// TestOpenWaitsForServices: with --wait-for-services a tool started before
// its Redis or MySQL accepts connections waits for them (a host booting
// before its database), up to the bound; without it, it fails at once.
func TestOpenWaitsForServices(t *testing.T) {
	redisURL, start, noMySQL := awayServices(t)
	run := func(open func(*cli.Context) error, args ...string) (time.Duration, error) {
		t.Helper()
		app := &cli.App{Name: "dl-x", Flags: append([]cli.Flag{MySQLFlag(), TableFlag(), WaitFlag()}, RedisFlags()...), ExitErrHandler: noExit, Action: open}
		began := time.Now()
		err := app.Run(append([]string{"dl-x", "--redis", redisURL, "--mysql", noMySQL}, args...))
		return time.Since(began), err
	}
	if took, err := run(openQueue); err == nil || !strings.Contains(err.Error(), "connection refused") || took > 5*time.Second {
		t.Fatalf("without a wait: %v after %v, want connection refused at once", err, took)
	}
	if took, err := run(openStore, "--wait-for-services", "1s"); err == nil || !strings.Contains(err.Error(), "(waited 1s for it)") || took < time.Second {
		t.Fatalf("a MySQL that never comes: %v after %v, want the refusal after waiting 1s", err, took)
	}
	// Redis comes up while the tool waits: the open succeeds.
	const late = 700 * time.Millisecond
	timer := time.AfterFunc(late, start)
	defer timer.Stop()
	if took, err := run(openQueue, "--wait-for-services", "2m"); err != nil || took < late {
		t.Fatalf("a Redis that comes up after %v: %v after %v, want it opened once it was up", late, err, took)
	}
}

// TestOpenStoppedWhileWaiting: a tool stopped (its first signal) while it
// waits for a service ends with a *tool.StoppedError naming the service,
// which tool.Run turns into exit 0: a unit stopped at boot before its
// database came up is stopped, not failed. A wait that runs out stays an
// error, and so does a refused login, even when a stop came with it.
// Not parallel: cli's apps share their help flag, which each run sets.
func TestOpenStoppedWhileWaiting(t *testing.T) {
	redisURL, _, noMySQL := awayServices(t)
	realDSN, _ := testenv.MySQL(t)
	cfg, err := mysql.ParseDSN(realDSN)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Passwd = "dl_no_such_user", "wrong"
	refused := cfg.FormatDSN()

	const never, atOnce = -1, 0
	for _, tc := range []struct {
		name      string
		mysql     string
		wait      string
		stopAfter time.Duration // never, atOnce (before the first attempt) or a delay
		open      func(*cli.Context) error
		stopped   string // the service a StoppedError names; "" for none
		wantErr   string // in the error otherwise
	}{
		{"redis away, stopped during the wait", noMySQL, "2m", 300 * time.Millisecond, openQueue, "redis", ""},
		{"mysql away, stopped during the wait", noMySQL, "2m", 300 * time.Millisecond, openStore, "mysql", ""},
		{"mysql away, stopped at once", noMySQL, "2m", atOnce, openStore, "mysql", ""},
		{"mysql away, the wait runs out", noMySQL, "1s", never, openStore, "", "(waited 1s for it)"},
		{"login refused, with a stop", refused, "2m", atOnce, openStore, "", "Access denied"},
		{"login refused", refused, "2m", never, openStore, "", "Access denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The contexts as tool.Run makes them: the opening runs under
			// the hard one, which a first signal leaves alone.
			hard := context.Background()
			soft, stop := context.WithCancel(tool.WithHard(hard, hard))
			defer stop()
			switch {
			case tc.stopAfter == atOnce:
				stop()
			case tc.stopAfter > 0:
				defer time.AfterFunc(tc.stopAfter, stop).Stop()
			}
			var openErr error
			app := &cli.App{Name: "dl-x", Flags: append([]cli.Flag{MySQLFlag(), TableFlag(), WaitFlag()}, RedisFlags()...), ExitErrHandler: noExit,
				Action: func(c *cli.Context) error {
					openErr = tc.open(c)
					return nil
				}}
			began := time.Now()
			if err := app.RunContext(soft, []string{"dl-x", "--redis", redisURL, "--mysql", tc.mysql, "--wait-for-services", tc.wait}); err != nil {
				t.Fatal(err)
			}
			took := time.Since(began)
			var se *tool.StoppedError
			switch {
			case took > 30*time.Second:
				t.Fatalf("took %v: %v", took, openErr)
			case tc.stopped != "":
				if !errors.As(openErr, &se) || se.Service != tc.stopped {
					t.Fatalf("got %v (%T), want a stop while waiting for %s", openErr, openErr, tc.stopped)
				}
			case errors.As(openErr, &se) || openErr == nil || !strings.Contains(openErr.Error(), tc.wantErr):
				t.Fatalf("got %v (%T), want an error with %q, no stop", openErr, openErr, tc.wantErr)
			}
		})
	}
}

// openQueue and openStore open the service and close it again.
func openQueue(c *cli.Context) error {
	q, err := OpenQueue(c)
	if err == nil {
		q.Close()
	}
	return err
}

func openStore(c *cli.Context) error {
	st, err := OpenStore(c)
	if err == nil {
		st.Close()
	}
	return err
}

// TestOpenStoppedWhileUpgradeWaits: a tool whose start upgrades a seed
// table waits for another process's upgrade (the schema lock) and for the
// transactions that hold the table (a backup's, for an hour): stopped
// (its first signal) meanwhile, it stops at once, as it does while it
// waits for the server, instead of waiting on until its unit's
// TimeoutStopSec runs out and systemd kills it.
// Not parallel: cli's apps share their help flag, which each run sets.
func TestOpenStoppedWhileUpgradeWaits(t *testing.T) {
	for _, holder := range []string{"a transaction", "the schema lock"} {
		t.Run("held by "+holder, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			dsn, db := testenv.MySQL(t)
			for _, stmt := range []string{
				// The original script's table.
				`CREATE TABLE files (id VARCHAR(255) PRIMARY KEY, url TEXT NOT NULL, status TINYINT NOT NULL DEFAULT 0,
				file_path TEXT, download_time FLOAT, error_message TEXT, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
				updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
				"INSERT INTO files (id, url) VALUES ('1', 'http://h/1')",
			} {
				if _, err := db.ExecContext(ctx, stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			hold, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			release := func() { hold.Raw(func(any) error { return driver.ErrBadConn }) } //nolint:errcheck // closes it: its transaction and locks go
			defer release()
			waiting := "state LIKE '%metadata lock%' AND info LIKE 'ALTER%'"
			if holder == "a transaction" {
				var n int
				if _, err := hold.ExecContext(ctx, "START TRANSACTION"); err != nil {
					t.Fatal(err)
				}
				if err := hold.QueryRowContext(ctx, "SELECT COUNT(*) FROM files").Scan(&n); err != nil {
					t.Fatal(err)
				}
			} else {
				var got int
				if err := hold.QueryRowContext(ctx, "SELECT GET_LOCK(CONCAT('dl_schema_', SHA1(CONCAT(DATABASE(), '.', 'files'))), 0)").Scan(&got); err != nil || got != 1 {
					t.Fatalf("take the schema lock: %d, %v", got, err)
				}
				waiting = "info LIKE 'SELECT GET_LOCK%'"
			}

			// The contexts as tool.Run makes them (see TestOpenStoppedWhileWaiting).
			soft, stop := context.WithCancel(tool.WithHard(ctx, ctx))
			defer stop()
			app := &cli.App{Name: "dl-x", Flags: append([]cli.Flag{MySQLFlag(), TableFlag(), WaitFlag()}, RedisFlags()...), ExitErrHandler: noExit,
				Action: openStore}
			ended := make(chan error, 1)
			go func() { ended <- app.RunContext(soft, []string{"dl-x", "--mysql", dsn}) }()
			testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, func() bool {
				var n int
				err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE() AND "+waiting).Scan(&n)
				return err == nil && n > 0
			}, "the start never waited for %s", holder)
			stop()
			select {
			case err := <-ended:
				var se *tool.StoppedError
				if !errors.As(err, &se) || se.Service != "mysql" {
					t.Fatalf("got %v (%T), want a stop while waiting for mysql", err, err)
				}
			case <-time.After(30 * time.Second):
				release()
				<-ended // the upgrade goes on once the holder is gone
				t.Fatalf("still waiting for %s 30s after the stop", holder)
			}
		})
	}
}

// TestOpenWaitsOutAReadOnlyUpgrade: a table that needs dl's columns, on a
// server that refuses writes (a failover in progress), is waited out at
// start as a server that is away is, up to --wait-for-services, rather than
// failing the tool at once (and restarting it until systemd gives up).
func TestOpenWaitsOutAReadOnlyUpgrade(t *testing.T) {
	dsn, db := testenv.MySQL(t)
	if _, err := db.Exec("CREATE TABLE files (id VARCHAR(255) PRIMARY KEY, url TEXT NOT NULL, status TINYINT NOT NULL DEFAULT 0)"); err != nil {
		t.Fatal(err)
	}
	ro := testenv.WithSession(t, dsn, "tx_read_only", "1") // MariaDB's name for the session's read-only flag
	app := &cli.App{Name: "dl-x", Flags: []cli.Flag{MySQLFlag(), TableFlag(), WaitFlag()}, ExitErrHandler: noExit, Action: openStore}
	began := time.Now()
	err := app.Run([]string{"dl-x", "--mysql", ro, "--wait-for-services", "1s"})
	if took := time.Since(began); err == nil || !strings.Contains(err.Error(), "(waited 1s for it)") || took < time.Second {
		t.Fatalf("upgrade refused as read-only: %v after %v, want it waited out for 1s", err, took)
	}
}
