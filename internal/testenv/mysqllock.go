package testenv

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"
)

// LockTable locks table for writing on a connection of its own in db's
// database, as a maintenance job's LOCK TABLES does: every other client's
// statement on the table waits until the returned unlock runs (at cleanup
// if the test has not run it).
func LockTable(t testing.TB, db *sql.DB, table string) (unlock func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatalf("testenv: connection to lock %s: %v", table, err)
	}
	if _, err := conn.ExecContext(ctx, "LOCK TABLES `"+table+"` WRITE"); err != nil {
		conn.Close()
		t.Fatalf("testenv: lock %s: %v", table, err)
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := conn.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
				t.Errorf("testenv: unlock %s: %v", table, err)
			}
			conn.Close()
		})
	}
	t.Cleanup(unlock)
	return unlock
}

// KillWaiting waits (up to a minute) for a statement of another connection
// to db's database to wait for a table lock (see LockTable), and ends it
// by KILL QUERY, as a DBA or a tool that kills long statements does. It
// returns the statement's text.
func KillWaiting(t testing.TB, db *sql.DB) string {
	t.Helper()
	var id int64
	var info string
	Eventually(t, time.Minute, 10*time.Millisecond, func() bool {
		err := db.QueryRow(`SELECT id, info FROM information_schema.processlist
			WHERE db = DATABASE() AND id <> CONNECTION_ID() AND state LIKE 'Waiting for table%' LIMIT 1`).Scan(&id, &info)
		return err == nil
	}, "a statement waiting for a table lock")
	if _, err := db.Exec("KILL QUERY ?", id); err != nil {
		t.Fatalf("testenv: kill query %d (%s): %v", id, info, err)
	}
	return info
}

// InterruptWhileLocked runs fn while table is locked (LockTable), so that
// fn's statement on it waits; with kill, it ends that statement by KILL
// QUERY (KillWaiting), otherwise a limit of the statement's session is to
// end it. Once logs hold want (fn saying it was interrupted), it unlocks
// the table and returns what fn returns. fn ending while the table is
// locked fails the test, as does fn not ending within a minute after.
func InterruptWhileLocked(t testing.TB, db *sql.DB, table string, kill bool, logs *SyncBuffer, want string, fn func() error) error {
	t.Helper()
	unlock := LockTable(t, db, table)
	done := make(chan error, 1)
	go func() { done <- fn() }()
	if kill {
		t.Logf("killed %s", KillWaiting(t, db))
	}
	var err error
	ended := false
	Eventually(t, time.Minute, 10*time.Millisecond, func() bool {
		select {
		case err = <-done:
			ended = true
			return true
		default:
			return strings.Contains(logs.String(), want)
		}
	}, "a log line %q", want)
	if ended {
		t.Fatalf("testenv: ended while %s was locked, without logging %q: %v", table, want, err)
	}
	unlock()
	select {
	case err = <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("testenv: still running a minute after %s was unlocked", table)
		return nil
	}
}
