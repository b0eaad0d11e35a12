package store

import (
	"context"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/testenv"
)

func TestNextLockWait(t *testing.T) {
	for _, tc := range []struct {
		name           string
		lockWait, took time.Duration
		want           time.Duration
	}{
		{"timed out waiting to start: no work lost", 2 * time.Second, 2100 * time.Millisecond, 2 * time.Second},
		{"a build of 100 s lost at its end", 2 * time.Second, 100 * time.Second, 10 * time.Second},
		{"a shorter loss after a longer one keeps the longer wait", 10 * time.Second, 12 * time.Second, 10 * time.Second},
		{"a build of hours waits at most the bound", 2 * time.Second, 5 * time.Hour, alterMaxLockWait},
	} {
		if got := nextLockWait(tc.lockWait, tc.took); got != tc.want {
			t.Errorf("%s: nextLockWait(%v, %v) = %v, want %v", tc.name, tc.lockWait, tc.took, got, tc.want)
		}
	}
}

// TestEnsureAfterAReadOnlyRefusalReconnects: in a failover the old primary
// stays up, read-only, while new connections reach the new one. An upgrade
// it refused is tried again (OpenStore waits it out), and the try must not
// take the pool's connection to the old primary again: that one refuses it
// until its lifetime (minutes) runs out, longer than a tool may wait at
// start. The pool's one connection is made read-only here, as the old
// primary's are; a new one is not.
func TestEnsureAfterAReadOnlyRefusalReconnects(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		table string // made before the refusal, "" for none
	}{
		{"a table to create", ""},
		{"a seed table to upgrade", "CREATE TABLE files (id VARCHAR(255) PRIMARY KEY, url TEXT NOT NULL, status TINYINT NOT NULL DEFAULT 0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn, db := testenv.MySQL(t)
			if tc.table != "" {
				if _, err := db.Exec(tc.table); err != nil {
					t.Fatal(err)
				}
			}
			st, err := Open(ctx, dsn, "files")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			testenv.ReadOnlyPool(t, st.db)
			if err := st.Ensure(ctx); !IsUnavailable(err) {
				t.Fatalf("ensure on the read-only connection: %v; want a read-only refusal", err)
			}
			if err := st.Ensure(ctx); err != nil {
				t.Fatalf("ensure tried again: %v; want it made on a new connection, which the server lets write", err)
			}
		})
	}
}
