package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dlkit/dl/internal/testenv"
)

// TestIsUnavailable: an unreachable or vanished server is waited for;
// anything else (a bad statement, a refused login, a mistake of ours) is
// reported at once, since waiting would never cure it.
func TestIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&mysql.MySQLError{Number: 2013, Message: "Lost connection"}, true},
		{fmt.Errorf("claim rows: %w", &mysql.MySQLError{Number: 1053, Message: "Server shutdown"}), true},
		{fmt.Errorf("mark: %w", &mysql.MySQLError{Number: 1290, Message: "The MariaDB server is running with the --read-only option"}), true},
		{&mysql.MySQLError{Number: 1792, Message: "Cannot execute statement in a READ ONLY transaction"}, true},
		{&mysql.MySQLError{Number: 1290, Message: "The MySQL server is running with the --super-read-only option so it cannot execute this statement"}, true},
		{&mysql.MySQLError{Number: 1290, Message: "The MySQL server is running with the --secure-file-priv option so it cannot execute this statement"}, false},
		{&mysql.MySQLError{Number: 1045, Message: "Access denied"}, false},
		{&mysql.MySQLError{Number: 1146, Message: "Table doesn't exist"}, false},
		{&net.OpError{Op: "dial", Net: "unix", Err: syscall.ENOENT}, true},
		{fmt.Errorf("mark: %w", syscall.ECONNREFUSED), true},
		{mysql.ErrInvalidConn, true},
		{driver.ErrBadConn, true},
		{sql.ErrConnDone, true},
		{io.ErrUnexpectedEOF, true},
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{errors.New("sql: expected 3 arguments, got 2"), false},
		{fmt.Errorf(`sql: Scan error on column index 1, name "attempts": converting NULL to int is unsupported`), false},
	} {
		if got := IsUnavailable(tc.err); got != tc.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestIsUnavailableNotForOtherOptions: error 1290 is a server option
// refusing a statement. --read-only (a failover's old primary) is waited
// out; another option, such as MariaDB's --max-session-mem-used refusing a
// statement too big for it, refuses the same statement at every try, and a
// tool that waited for it would log "retrying until it returns" forever
// instead of failing with the reason.
func TestIsUnavailableNotForOtherOptions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, db := testenv.MySQL(t)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Raw(func(any) error { return driver.ErrBadConn }) //nolint:errcheck // discards the limited session
	if _, err := conn.ExecContext(ctx, "SET SESSION max_session_mem_used = 8192"); err != nil {
		t.Fatal(err)
	}
	var n int
	err = conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.columns").Scan(&n)
	if !isMySQLError(err, 1290) {
		t.Fatalf("got %v, want error 1290 (--max-session-mem-used): the test tests nothing", err)
	}
	if IsUnavailable(err) {
		t.Errorf("IsUnavailable(%v) = true: a refusal no wait cures would be waited for forever", err)
	}
}
