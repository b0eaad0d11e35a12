package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// seedTable is the original design's table, unchanged, so that a table made by
// the seed and one made by us start from the same definition.
const seedTable = `CREATE TABLE IF NOT EXISTS %s (
    id VARCHAR(255) PRIMARY KEY,
    url TEXT NOT NULL,
    status TINYINT NOT NULL DEFAULT 0,
    file_path TEXT,
    download_time FLOAT,
    error_message TEXT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`

// column is one column dl adds to the seed's table: nullable or defaulted, so
// adding it never touches existing values and the seed's code keeps working.
type column struct{ name, def string }

// addedColumns are added in place, in this order, to a seed table.
var addedColumns = []column{
	{"attempts", "INT NOT NULL DEFAULT 0"},   // failed download attempts (retry budget)
	{"deliveries", "INT NOT NULL DEFAULT 0"}, // times the row was handed to a worker
	{"claim_token", "VARCHAR(32) NULL"},      // fences a worker whose claim was given away
	{"lease_until", "DATETIME(3) NULL"},      // a processing row is reclaimable after this
	{"next_attempt_at", "DATETIME(3) NULL"},  // a pending row waits for its retry backoff
	{"worker", "VARCHAR(255) NULL"},          // who holds (or last held) the row
	{"bytes", "BIGINT NULL"},                 // size of the done file
	{"sha256", "CHAR(64) NULL"},              // checksum of the done file
	{"http_status", "SMALLINT NULL"},         // last HTTP status seen
	{"finished_at", "DATETIME(3) NULL"},      // when the row reached done or failed
	// What a task line asked for beyond its URL, kept for every later
	// delivery: the checksum the file must have and the name to save it
	// under. The name is TEXT, as file_path is, so that any name a task
	// line carries is kept whole and every delivery makes the same path;
	// and utf8mb4 whatever the table's charset, since a name is any text.
	{"expected_sha256", "CHAR(64) NULL"},
	{"target_name", "TEXT CHARACTER SET utf8mb4 NULL"},
}

// index is one secondary index dl needs; created if missing.
type index struct{ name, cols string }

var addedIndexes = []index{
	{"idx_status", "(status)"}, // the seed's own
	{"idx_dl_due", "(status, next_attempt_at)"},
	{"idx_dl_lease", "(status, lease_until)"},
	{"idx_dl_finished", "(finished_at)"}, // dl-stat's throughput over the last minute
}

// schemaLockPoll is how long one wait for the schema lock lasts before
// Ensure says that it waits, and waits again.
const schemaLockPoll = 5 * time.Second

// Ensure creates the table if it is absent and upgrades a seed table in place.
// It is idempotent and safe when many processes start at once: a named lock
// serialises them, and a column or index that another process added in the
// meantime is not an error.
func (s *Store) Ensure(ctx context.Context) error { return s.EnsureWaiting(ctx, ctx) }

// EnsureWaiting is Ensure whose waits, for another process's upgrade (the
// schema lock) and for the transactions that hold the table, end when wait
// does, with its error: a tool stopped (a first signal) while it waits,
// for as long as a backup's transaction lasts maybe, stops, instead of
// waiting out its unit's TimeoutStopSec to be killed. The statements
// themselves run under ctx; wait must be derived from it.
func (s *Store) EnsureWaiting(ctx, wait context.Context) (err error) {
	// Run last, once conn is back in the pool: a refusal as read-only
	// drops it with the other idle ones (see retryTransient), so that the
	// try made again (OpenStore waits a failover out) reaches the new
	// primary instead of the old one until the connection's lifetime runs
	// out.
	defer func() {
		if isReadOnly(err) {
			s.dropIdle()
		}
	}()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("ensure schema: %w", err)
	}
	defer conn.Close()
	// A lock's name is the server's, not the database's: it names both, in
	// at most 64 characters, so that pipelines in other databases of the
	// server do not wait for each other.
	var lock string
	if err := conn.QueryRowContext(ctx, "SELECT CONCAT('dl_schema_', SHA1(CONCAT(DATABASE(), '.', ?)))", s.table).Scan(&lock); err != nil {
		return fmt.Errorf("ensure schema: lock name: %w", err)
	}
	// The holder may be building the indexes of a big table, for minutes,
	// while the other tools of a fleet start: they wait for it (its lock
	// goes with its connection, should it die), rather than fail and be
	// restarted until systemd gives up on them.
	for waited := false; ; waited = true {
		var got sql.NullInt64
		// Under wait: a stop ends the wait at once (the connection, which
		// may hold the lock then, is closed, and the lock with it).
		if err := conn.QueryRowContext(wait, "SELECT GET_LOCK(?, ?)", lock, schemaLockPoll.Seconds()).Scan(&got); err != nil {
			if wait.Err() != nil {
				return fmt.Errorf("ensure schema: waiting for another process's upgrade: %w", wait.Err())
			}
			return fmt.Errorf("ensure schema: lock: %w", err)
		}
		if got.Valid && got.Int64 == 1 {
			break
		}
		if !waited {
			slog.Info("waiting for another process to finish upgrading the table's schema (building its indexes reads the whole table)", "table", s.table)
		}
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK(?)", lock) //nolint:errcheck // released with the connection anyway

	// Created only when missing: a server in a failover refuses even a
	// CREATE TABLE IF NOT EXISTS of a table that is there, and a tool that
	// starts then must find its table as it is (its first write waits the
	// read-only server out), not fail at start and be restarted until
	// systemd gives up on it.
	var tables int
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", s.table).Scan(&tables); err != nil {
		return fmt.Errorf("ensure schema: table: %w", err)
	}
	if tables == 0 {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(seedTable, s.quoted)); err != nil {
			return fmt.Errorf("create table %s: %w", s.table, err)
		}
	}
	have, err := s.existing(ctx, conn, "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?", s.table)
	if err != nil {
		return fmt.Errorf("ensure schema: columns: %w", err)
	}
	for _, c := range addedColumns {
		if have[c.name] {
			continue
		}
		err := s.alter(ctx, wait, conn, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", s.quoted, c.name, c.def))
		if err != nil && !isMySQLError(err, 1060) { // duplicate column: someone else added it
			return fmt.Errorf("add column %s.%s: %w", s.table, c.name, err)
		}
	}
	have, err = s.existing(ctx, conn, "SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ?", s.table)
	if err != nil {
		return fmt.Errorf("ensure schema: indexes: %w", err)
	}
	for _, ix := range addedIndexes {
		if have[ix.name] {
			continue
		}
		err := s.alter(ctx, wait, conn, fmt.Sprintf("CREATE INDEX %s ON %s %s", ix.name, s.quoted, ix.cols))
		if err != nil && !isMySQLError(err, 1061) { // duplicate key name
			return fmt.Errorf("create index %s on %s: %w", ix.name, s.table, err)
		}
	}
	// Marking writes through INSERT ... ON DUPLICATE KEY UPDATE, and in
	// strict mode an INSERT that leaves out a NOT NULL column without a
	// default fails even when it only updates: an operator's column of that
	// kind (which their own INSERTs fill) would fail every mark.
	have, err = s.existing(ctx, conn, `SELECT column_name FROM information_schema.columns
		WHERE table_schema = DATABASE() AND table_name = ? AND is_nullable = 'NO' AND column_default IS NULL
		AND column_name NOT IN ('id', 'url') AND extra NOT LIKE '%auto_increment%' AND extra NOT LIKE '%generated%'`, s.table)
	if err != nil {
		return fmt.Errorf("ensure schema: required columns: %w", err)
	}
	var required strings.Builder
	for _, name := range slices.Sorted(maps.Keys(have)) {
		required.WriteString(", `" + strings.ReplaceAll(name, "`", "``") + "`")
	}
	s.required.Store(ptr(required.String()))
	// A CHECK constraint or a BEFORE INSERT trigger judges marking's
	// INSERT as an insert, though it only updates: such a table is marked
	// by UPDATEs.
	have, err = s.existing(ctx, conn, `SELECT constraint_name FROM information_schema.table_constraints
		WHERE table_schema = DATABASE() AND table_name = ? AND constraint_type = 'CHECK'
		UNION ALL SELECT trigger_name FROM information_schema.triggers
		WHERE event_object_schema = DATABASE() AND event_object_table = ? AND event_manipulation = 'INSERT' AND action_timing = 'BEFORE'`, s.table, s.table)
	if err != nil {
		return fmt.Errorf("ensure schema: constraints and triggers: %w", err)
	}
	s.markByUpdate.Store(len(have) > 0)
	// An error too long for error_message is cut to fit (see storable):
	// an operator's table may hold less than the seed's TEXT.
	var room sql.NullInt64
	err = conn.QueryRowContext(ctx, `SELECT character_maximum_length FROM information_schema.columns
		WHERE table_schema = DATABASE() AND table_name = ? AND column_name = 'error_message'`, s.table).Scan(&room)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("ensure schema: error_message: %w", err)
	}
	if room.Valid && room.Int64 > 0 {
		s.errorRoom.Store(room.Int64)
	}
	var primary sql.NullString
	err = conn.QueryRowContext(ctx, `SELECT GROUP_CONCAT(column_name ORDER BY seq_in_index) FROM information_schema.statistics
		WHERE table_schema = DATABASE() AND table_name = ? AND index_name = 'PRIMARY'`, s.table).Scan(&primary)
	if err != nil {
		return fmt.Errorf("ensure schema: primary key: %w", err)
	}
	s.idPrimary.Store(strings.EqualFold(primary.String, "id"))
	return nil
}

// alterLockWait bounds how long one try of a schema change waits for the
// table's metadata lock, and alterPause how long it then lets the other
// clients' statements through before it tries again.
const (
	alterLockWait = 2 * time.Second
	alterPause    = time.Second
	// alterMaxLockWait bounds the longer waits of a try after a lost index
	// build (see nextLockWait).
	alterMaxLockWait = 5 * time.Minute
)

// alter runs a schema change on conn. A change must wait for every
// transaction that has read the table to end (a backup's, an analyst's:
// for hours, maybe), and every statement on the table that comes after it
// waits behind it, the original workers' and dl's included: so each try
// waits alterLockWait at most, and gives way for alterPause between tries,
// until the table is free, or wait is done. An online index build takes the
// lock again at its end, and a try that times out there throws the whole
// build away: the next try waits longer (nextLockWait), so that a table that
// always has some reader still gets its index.
func (s *Store) alter(ctx, wait context.Context, conn *sql.Conn, stmt string) error {
	defer conn.ExecContext(context.WithoutCancel(ctx), "SET SESSION lock_wait_timeout = DEFAULT") //nolint:errcheck // a pooled connection's later waits are others'
	lockWait := alterLockWait
	for waited := false; ; waited = true {
		if _, err := conn.ExecContext(ctx, "SET SESSION lock_wait_timeout = ?", int(math.Ceil(lockWait.Seconds()))); err != nil {
			return fmt.Errorf("bound the metadata lock wait: %w", err)
		}
		start := time.Now()
		_, err := conn.ExecContext(ctx, stmt)
		if !isMySQLError(err, 1205) { // lock wait timeout
			return err
		}
		lockWait = nextLockWait(lockWait, time.Since(start))
		if !waited {
			slog.Warn("waiting for the transactions that hold the table to end before upgrading its schema (other clients go on meanwhile)", "table", s.table)
		}
		select {
		case <-wait.Done():
			return fmt.Errorf("%w (while waiting for the table's transactions: %w)", wait.Err(), err)
		case <-time.After(alterPause):
		}
	}
}

// nextLockWait is the lock wait for the try after one that waited lockWait
// and timed out after took. A try that timed out soon after its wait had
// done no work; one that took longer had built an index and lost it at the
// end, and the next may hold the other clients up for a tenth of that work,
// up to alterMaxLockWait, rather than lose it again.
func nextLockWait(lockWait, took time.Duration) time.Duration {
	return min(max(lockWait, took/10), max(lockWait, alterMaxLockWait))
}

func ptr[T any](v T) *T { return &v }

// existing returns the names that q, run with args, reads.
func (s *Store) existing(ctx context.Context, conn *sql.Conn, q string, args ...any) (map[string]bool, error) {
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		have[n] = true
	}
	return have, rows.Err()
}

func isMySQLError(err error, number uint16) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == number
}
