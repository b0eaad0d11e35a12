package store

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/dlkit/dl/internal/testenv"
)

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// explainStore opens a store on a fresh database with dl's table.
func explainStore(t *testing.T) (*Store, *sql.DB) {
	t.Helper()
	dsn, db := testenv.MySQL(t)
	st, err := Open(context.Background(), dsn, "files")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st, db
}

func TestSelectUsesIndex(t *testing.T) {
	st, db := explainStore(t)
	// Most rows of a big table are done; the pending few must be found by index.
	mustExec(t, db, "INSERT INTO files (id, url, status) SELECT seq, CONCAT('http://h/', seq), IF(seq % 100 = 0, 0, 1) FROM seq_1_to_20000")
	mustExec(t, db, "ANALYZE TABLE files")
	rows, err := db.Query("EXPLAIN "+st.q(sqlSelectDue), 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, c := range cols {
			if c == "key" && !strings.HasPrefix(vals[i].String, "idx_") {
				t.Fatalf("select of due rows uses key %q, want an idx_ index", vals[i].String)
			}
		}
	}
}

// TestTakeUsesThePrimaryKey: the take, the renewals and the claim name their
// rows by id, and must reach them through the primary key, not a scan, however
// the (id, token) pairs that filter them are written.
func TestTakeUsesThePrimaryKey(t *testing.T) {
	st, db := explainStore(t)
	mustExec(t, db, "INSERT INTO files (id, url, status, claim_token) SELECT seq, CONCAT('http://h/', seq), 2, 't' FROM seq_1_to_20000")
	mustExec(t, db, "ANALYZE TABLE files")
	for _, tc := range []struct {
		name string
		stmt string
		args []any
	}{
		{"take", st.qPaired(sqlTake, 2), []any{1000, "w", "5", "7", "5", "t", "7", "t", "w"}},
		{"renew", st.qPaired(sqlRenew, 2), []any{1000, "5", "7", "5", "t", "7", "t"}},
		{"renew queued", st.qPaired(sqlRenewQueued, 2), []any{1000, "5", "7", "5", "t", "7", "t"}},
	} {
		var id, selType, table, typ, possible, key, keyLen, ref, rows, extra sql.NullString
		err := db.QueryRow("EXPLAIN "+tc.stmt, tc.args...).Scan(&id, &selType, &table, &typ, &possible, &key, &keyLen, &ref, &rows, &extra)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if key.String != "PRIMARY" || typ.String != "range" {
			t.Errorf("%s: access %q by key %q (%s rows); want a range of PRIMARY", tc.name, typ.String, key.String, rows.String)
		}
	}
}

// TestStatementsByIDNameThePrimaryKey: on the seed's table (primary key
// id) the statements on lists of ids carry the hint that spares MariaDB
// weighing its other indexes (see byID); on a table keyed otherwise they
// do not, and still run (TestTableKeyedOtherwise).
func TestStatementsByIDNameThePrimaryKey(t *testing.T) {
	st, _ := explainStore(t)
	for name, q := range map[string]string{
		"claim":     st.fit(sqlClaim),
		"claimed":   st.q(sqlClaimed, 1),
		"take":      st.qPaired(sqlTake, 1),
		"held":      st.q(sqlHeld, 1),
		"mark lock": st.q(sqlMarkLock, 1),
	} {
		if !strings.Contains(q, hintPrimary) {
			t.Errorf("%s on the seed's table names no primary key: %s", name, q)
		}
	}
	if q := st.q(sqlSelectDue); strings.Contains(q, hintPrimary) {
		t.Errorf("the select of due rows, which needs the status index, names the primary key: %s", q)
	}
}
