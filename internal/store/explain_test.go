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

func TestSelectUsesIndex(t *testing.T) {
	dsn, db := testenv.MySQL(t)
	st, err := Open(context.Background(), dsn, "files")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
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
