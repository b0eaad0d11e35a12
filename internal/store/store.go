// Package store is all of dl's MySQL I/O: the schema and every statement on
// the table of files. MySQL is the source of truth; a row's status says where
// its file is:
//
//	0 pending ──claim──▶ 2 processing ──mark──▶ 1 done
//	   ▲                      │  └─────mark──▶ -1 failed
//	   └── retry (backoff) ───┘ lease expired: claimable again
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-sql-driver/mysql"

	"github.com/dlkit/dl/internal/outage"
)

// Status is the seed's status column.
type Status int

// The seed's four states.
const (
	Pending    Status = 0
	Processing Status = 2
	Done       Status = 1
	Failed     Status = -1
)

// Store is one table of files in one MySQL database.
type Store struct {
	db     *sql.DB
	table  string // as given
	quoted string // backquoted for SQL
	// required lists, as ", `a`, `b`", the table's columns besides id and
	// url that an INSERT must name (NOT NULL without a default: an
	// operator's own); Ensure finds them, marking names them.
	required atomic.Pointer[string]
	// markByUpdate: the table has CHECK constraints or BEFORE INSERT
	// triggers, which marking's INSERT ... ON DUPLICATE KEY UPDATE would
	// set off (see sqlMarkUpsert); Ensure finds them.
	markByUpdate atomic.Bool
	// errorRoom is how many characters error_message holds (65535 for the
	// seed's TEXT); Ensure finds it.
	errorRoom atomic.Int64
	// idPrimary: the table's primary key is id alone, as the seed makes
	// it, so statements on lists of ids may name it (see byID); Ensure
	// finds it.
	idPrimary atomic.Bool

	// unsure is what marks whose commit got no answer wrote, by row id:
	// see Store.mark.
	unsureMu sync.Mutex
	unsure   map[string]unsureMark
}

// maxConns bounds the pool's connections, open and idle.
const maxConns = 16

var identRE = regexp.MustCompile(`^[A-Za-z0-9_$]{1,64}$`)

// Open connects to the database named by dsn and checks that it answers. The
// DSN is never put in an error with its password.
func Open(ctx context.Context, dsn, table string) (*Store, error) {
	if err := CheckTable(table); err != nil {
		return nil, err
	}
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	// Bound every dial: an unreachable server must give an error, not a hang.
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	cfg.InterpolateParams = true // one round trip per statement, no prepare
	cfg.ClientFoundRows = true   // RowsAffected counts matched rows: fencing relies on it
	cfg.ParseTime = true
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	// Strict, whatever the server's default: a value a column cannot hold
	// must be an error, which marking isolates to its row (see Mark), not
	// a warning while the value is cut or its characters become "?" (a
	// done row pointing at a file that does not exist). A sql_mode the
	// DSN gives is the operator's, and kept as given.
	if _, ok := cfg.Params["sql_mode"]; !ok {
		cfg.Params["sql_mode"] = "CONCAT_WS(',', NULLIF(@@sql_mode, ''), 'STRICT_TRANS_TABLES')"
	}
	cfg.Logger = driverLogger{}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql %s: %w", Redact(dsn), err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxLifetime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("mysql at %s: %w", where(cfg), err)
	}
	st := &Store{db: db, table: table, quoted: "`" + table + "`"}
	st.errorRoom.Store(65535)
	return st, nil
}

// CheckTable refuses a table name that Open would refuse, without
// connecting.
func CheckTable(table string) error {
	if !identRE.MatchString(table) {
		return fmt.Errorf("table name %q: use letters, digits, _ or $ (at most 64)", table)
	}
	return nil
}

// CheckDSN refuses a DSN that Open would refuse before dialling: one that
// does not parse or names no database.
func CheckDSN(dsn string) error {
	_, err := parseDSN(dsn)
	return err
}

func parseDSN(dsn string) (*mysql.Config, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql DSN %q: %w", Redact(dsn), err)
	}
	if cfg.DBName == "" {
		return nil, fmt.Errorf("mysql DSN %q names no database (add /dbname)", Redact(dsn))
	}
	return cfg, nil
}

// Close releases the connections.
func (s *Store) Close() error { return s.db.Close() }

// DB exposes the pool for tests and dl-stat's read-only queries.
func (s *Store) DB() *sql.DB { return s.db }

// Table is the table's name.
func (s *Store) Table() string { return s.table }

// Redact returns dsn with any password replaced, for messages.
func Redact(dsn string) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		// Unparseable: cut anything that looks like user:password@.
		if i := strings.LastIndex(dsn, "@"); i >= 0 {
			return "***@" + dsn[i+1:]
		}
		return dsn
	}
	if cfg.Passwd != "" {
		cfg.Passwd = "xxxxx"
	}
	return cfg.FormatDSN()
}

func where(cfg *mysql.Config) string {
	return fmt.Sprintf("%s(%s)/%s", cfg.Net, cfg.Addr, cfg.DBName)
}

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	if n == 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

func micros(d time.Duration) int64 { return d.Microseconds() }

// IsUnavailable tells whether err means MySQL could not be reached or dropped
// the connection (worth waiting for), as opposed to a bad statement, a
// refused login or a mistake of ours, which waiting would never cure and
// must be reported at once.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1040, 1053, 2002, 2003, 2006, 2013: // too many connections, shutdown, gone
			return true
		}
		// A server that refuses writes is one in a failover (the old
		// primary set read-only, connections not yet moved to the new
		// one): waited for like a restart, with the server's reason.
		return isReadOnly(err)
	}
	return outage.Network(err) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone)
}

// isReadOnly tells whether err is the server refusing a write because it
// (or the connection's session) is read-only.
func isReadOnly(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case 1836, 1792: // read-only mode, a read-only transaction
		return true
	case 1290:
		// "running with the --%s option so it cannot execute this
		// statement": --read-only or --super-read-only in a failover, but
		// also options no wait cures (MariaDB's --max-session-mem-used for
		// a statement too big, --secure-file-priv), which would be waited
		// for forever. The option's name is not translated.
		return strings.Contains(me.Message, "read-only") || strings.Contains(me.Message, "read_only")
	}
	return false
}

// retryTransient runs fn, the statements of one job, again while they end
// in a conflict or an interruption, until they end otherwise or ctx is
// done. Neither is a fault of the job or of the server, and trying again
// is the cure for both: claims, takes and marks of many processes touch
// overlapping rows, and InnoDB ends one of two that deadlock, or a wait
// for a lock that lasts too long; a DBA's KILL QUERY, a monitoring tool
// killing long statements or a statement time limit ends a statement of
// ours the same way, and its changes are undone with it. Either way no
// outage is reported, and the tool goes on: ended, it would lose nothing
// (what it holds comes back by its lease) but under systemd it would be
// restarted (and failed after five restarts in ten minutes), and a
// pipeline run by hand would stop. So there is no bound on the tries:
// a conflict that never clears, or a limit the statement always exceeds,
// is an operator's to see in the log, as an outage is.
//
// Conflicts are routine among many workers and are retried quietly at
// first; an interruption is someone else's doing, and each is logged with
// the job's name.
//
// A write refused as read-only closes the pool's idle connections: in a
// failover they lead to the old primary, which stays read-only, while a
// new connection reaches the new one. Kept, they would be used again by
// every retry until their lifetime ran out.
func (s *Store) retryTransient(ctx context.Context, job string, fn func() error) error {
	waits := retryWaits()
	for i := 0; ; i++ {
		err := fn()
		if isReadOnly(err) {
			s.dropIdle()
		}
		interrupted := isInterrupted(err)
		if err == nil || !interrupted && !isConflict(err) {
			return err
		}
		wait := waits.NextBackOff()
		switch {
		case interrupted:
			slog.Warn("mysql statement interrupted; retrying", "job", job, "err", err, "in", wait.Round(time.Millisecond))
		case (i+1)%quietConflicts == 0:
			slog.Warn("mysql statement keeps conflicting with other transactions; retrying", "job", job, "err", err,
				"tries", i+1, "in", wait.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			// The stop's error first: a caller tells a stop asked for
			// (dl-fetch's second signal or --stop-timeout, which end a
			// take's retries) from a failure by it, and the tries are
			// unbounded, so a stop often comes in a wait between them.
			return fmt.Errorf("%w (while retrying: %w)", ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}

// dropIdle closes the pool's idle connections: after a write refused as
// read-only, they may lead to a failover's old primary.
func (s *Store) dropIdle() {
	s.db.SetMaxIdleConns(0) // closes the idle ones
	s.db.SetMaxIdleConns(maxConns)
}

// quietConflicts is how many conflicts in a row are retried before one is
// logged (and again at every multiple): fewer are routine.
const quietConflicts = 10

// retryWaits are the pauses between the tries of one job: doubling from
// about 5 ms to about 1.3 s, so that a conflict that lasts costs the server
// little and a job goes on soon after it clears, with jitter so that the
// processes that deadlocked together do not meet again; never ending.
func retryWaits() backoff.BackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(5*time.Millisecond),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxInterval(1280*time.Millisecond),
		backoff.WithMaxElapsedTime(0))
}

// isConflict tells whether err is InnoDB ending a statement for another
// transaction's sake: a deadlock's victim, or a lock wait that timed out.
func isConflict(err error) bool {
	return isMySQLError(err, 1213) || isMySQLError(err, 1205)
}

// isInterrupted tells whether err is the server ending a statement it was
// running on purpose: KILL QUERY (1317), MariaDB's max_statement_time
// (1969) or MySQL's max_execution_time (3024). The connection stays open
// and the statement's changes are undone. A connection killed outright
// (KILL CONNECTION) is no such error but a lost connection, waited out
// as an outage (IsUnavailable).
func isInterrupted(err error) bool {
	return isMySQLError(err, 1317) || isMySQLError(err, 1969) || isMySQLError(err, 3024)
}

// driverLogger sends the driver's own lines ("closing bad idle connection")
// to slog at debug level: callers report what matters, once.
type driverLogger struct{}

func (driverLogger) Print(v ...any) { slog.Debug(fmt.Sprint(v...), "component", "mysql") }
