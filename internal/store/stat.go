package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// dl-stat's read-only statements. They run against a busy table every few
// seconds, so each reads only what one look at the fleet needs: the counts by
// status from idx_status, the live leases from idx_dl_lease, the retry
// backlog from idx_dl_due.
const (
	// Rows by status, read from idx_status alone. The two figures within a
	// status are counts of their own, each over its index's range: summed
	// in this statement they made it read every row of the table (3.6 s
	// for a million rows, against 0.4 s for the three).
	sqlStatCounts = `SELECT status, COUNT(*) FROM %[1]s GROUP BY status`
	// Pending rows still waiting out a retry backoff (idx_dl_due).
	sqlStatRetryWaiting = `SELECT COUNT(*) FROM %[1]s WHERE status = 0 AND next_attempt_at > NOW(3)`
	// Processing rows whose lease ran out (idx_dl_lease): they go back to
	// the queue at the distributor's next round.
	sqlStatExpired = `SELECT COUNT(*) FROM %[1]s WHERE ` + condExpired
	// A row a worker holds has its name; a claimed row still waiting in the
	// queue has none.
	sqlStatWorkers = `SELECT COALESCE(worker, ''), COUNT(*) FROM %[1]s
	WHERE status = 2 AND lease_until >= NOW(3) GROUP BY worker ORDER BY worker`
	sqlStatRecent = `SELECT status, COUNT(*), COALESCE(SUM(bytes), 0) FROM %[1]s
	WHERE finished_at >= NOW(3) - INTERVAL ? MICROSECOND AND status IN (1, -1) GROUP BY status`
	sqlStatOldest = `SELECT TIMESTAMPDIFF(MICROSECOND, MIN(created_at), NOW(3)) FROM %[1]s WHERE status = 0`
	// Messages differ by URL and by file; grouping them with URLs and
	// absolute paths cut out shows the causes (a dead host, a 404 storm, a
	// full disk) instead of a list of URLs or files. Failed rows and rows
	// that failed before and wait to be tried again. The patterns are
	// statErrorCuts, passed as arguments so that their backslashes reach
	// the regular expression whatever the server's sql_mode.
	sqlStatErrors = `SELECT REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(error_message,
	?, '"<url>"'), ?, '<url>'), ?, '"<path>"'), ?, '<path>') AS msg, COUNT(*) AS n FROM %[1]s
	WHERE (status = -1 OR (status = 0 AND next_attempt_at IS NOT NULL)) AND error_message IS NOT NULL
	GROUP BY msg ORDER BY n DESC, msg LIMIT ?`
)

// statErrorCuts are sqlStatErrors' patterns, in its order. A quoted URL or
// path (Go's %q: escaped quotes inside, maybe spaces, maybe shortened with
// "…") is cut out up to its closing quote, which stays; a bare one ends
// before a space, a quote or a trailing colon ("GET <url>: status 404").
var statErrorCuts = []any{
	`"[a-z]+://(?:[^"\\]|\\.)*"`,
	`[a-z]+://[^ "]*[^ :"]`,
	`(?<![^ ])"/(?:[^"\\]|\\.)*"`,
	`(?<![^ ])/[^ :"]*`,
}

// Counts are the rows by status.
type Counts struct {
	Pending      int64 // status 0, retry-waiting ones included
	RetryWaiting int64 // pending rows whose retry backoff has not passed
	Processing   int64 // status 2, expired ones included
	Expired      int64 // processing rows whose lease ran out (or, with none, that are older than the queue lease)
	Done         int64
	Failed       int64
	Other        int64 // a status dl does not know (set by hand)
}

// Total is the number of rows.
func (c Counts) Total() int64 {
	return c.Pending + c.Processing + c.Done + c.Failed + c.Other
}

// WorkerLoad is the number of rows one worker holds under a live lease.
type WorkerLoad struct {
	Worker string // host:pid-suffix; empty for rows claimed and waiting in the queue
	Rows   int64
}

// Recent is what finished within a window.
type Recent struct {
	Window time.Duration
	Done   int64
	Failed int64
	Bytes  int64 // of the done files
}

// ErrorCount is one error message (URLs cut out) and how many rows carry it.
type ErrorCount struct {
	Message string
	Rows    int64
}

// Stat is one look at the table.
type Stat struct {
	Counts  Counts
	Workers []WorkerLoad
	Recent  Recent
	// OldestPending is the age of the oldest pending row; -1 when none is.
	OldestPending time.Duration
	Errors        []ErrorCount
}

// Stat reads the table's state: counts by status, rows held per worker,
// what finished within window, the oldest pending row's age and the topErrors
// most common error messages.
//
// A processing row is counted as expired as dl-select --expired would hand it
// out again: its lease ran out, or it has none (the original distributor's)
// and is older than queueLease.
//
// Stat only reads: a table it cannot read (missing, or the original
// script's not upgraded yet) is an error that says what creates or
// upgrades it.
func (s *Store) Stat(ctx context.Context, window, queueLease time.Duration, topErrors int) (Stat, error) {
	st, err := s.stat(ctx, window, queueLease, topErrors)
	switch {
	case isMySQLError(err, 1146): // no such table
		err = fmt.Errorf("%w (check --table, DL_TABLE; dl-select creates the table)", err)
	case isMySQLError(err, 1054): // unknown column
		err = fmt.Errorf("%w (the table lacks dl's columns: dl-select adds them)", err)
	}
	return st, err
}

func (s *Store) stat(ctx context.Context, window, queueLease time.Duration, topErrors int) (Stat, error) {
	var st Stat
	err := s.statRows(ctx, s.q(sqlStatCounts), nil, func(rows *sql.Rows) error {
		var status, n int64
		if err := rows.Scan(&status, &n); err != nil {
			return err
		}
		switch Status(status) {
		case Pending:
			st.Counts.Pending = n
		case Processing:
			st.Counts.Processing = n
		case Done:
			st.Counts.Done = n
		case Failed:
			st.Counts.Failed = n
		default:
			st.Counts.Other += n
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("count rows by status: %w", err)
	}
	// Rows change status between the statements: a part is never shown
	// larger than its whole.
	var retry, expired int64
	if err := s.db.QueryRowContext(ctx, s.q(sqlStatRetryWaiting)).Scan(&retry); err != nil {
		return st, fmt.Errorf("count rows waiting to be retried: %w", err)
	}
	st.Counts.RetryWaiting = min(retry, st.Counts.Pending)
	if err := s.db.QueryRowContext(ctx, s.q(sqlStatExpired), micros(queueLease)).Scan(&expired); err != nil {
		return st, fmt.Errorf("count rows whose lease ran out: %w", err)
	}
	st.Counts.Expired = min(expired, st.Counts.Processing)
	err = s.statRows(ctx, s.q(sqlStatWorkers), nil, func(rows *sql.Rows) error {
		var w WorkerLoad
		if err := rows.Scan(&w.Worker, &w.Rows); err != nil {
			return err
		}
		st.Workers = append(st.Workers, w)
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("count rows held per worker: %w", err)
	}
	st.Recent.Window = window
	err = s.statRows(ctx, s.q(sqlStatRecent), []any{micros(window)}, func(rows *sql.Rows) error {
		var status, n, bytes int64
		if err := rows.Scan(&status, &n, &bytes); err != nil {
			return err
		}
		if Status(status) == Done {
			st.Recent.Done, st.Recent.Bytes = n, bytes
		} else {
			st.Recent.Failed = n
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("count rows finished in the last %s: %w", window, err)
	}
	var age sql.NullInt64
	if err := s.db.QueryRowContext(ctx, s.q(sqlStatOldest)).Scan(&age); err != nil {
		return st, fmt.Errorf("age of the oldest pending row: %w", err)
	}
	st.OldestPending = -1
	if age.Valid {
		st.OldestPending = time.Duration(max(age.Int64, 0)) * time.Microsecond
	}
	if topErrors > 0 {
		err = s.statRows(ctx, s.q(sqlStatErrors), append(append([]any{}, statErrorCuts...), topErrors), func(rows *sql.Rows) error {
			var e ErrorCount
			if err := rows.Scan(&e.Message, &e.Rows); err != nil {
				return err
			}
			st.Errors = append(st.Errors, e)
			return nil
		})
		if err != nil {
			return st, fmt.Errorf("most common errors: %w", err)
		}
	}
	return st, nil
}

// statRows runs query and calls fn for every row.
func (s *Store) statRows(ctx context.Context, query string, args []any, fn func(*sql.Rows) error) error {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
