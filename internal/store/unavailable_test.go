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

	"github.com/go-sql-driver/mysql"
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
