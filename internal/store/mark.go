package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"

	"github.com/dlkit/dl/internal/record"
)

// Marking takes a fixed number of statements per batch, whatever its size:
// the batch's rows are locked and read, the results that still apply are
// chosen in Go, and each kind of outcome is written by one statement. That
// statement is an INSERT of the rows' new values whose ON DUPLICATE KEY
// UPDATE does the writing: every row exists (it is locked), so nothing is
// ever inserted, and MySQL matches each new row to its row by primary key,
// where an UPDATE with per-row CASE id WHEN ... expressions compares every
// row with every id of the batch (30% more of MariaDB's CPU per row at 500
// rows, measured). The url column is named only because the INSERT must
// give it a value; the update leaves it alone. VALUES(col) is deprecated in
// MySQL 8.0.20+ in favour of a row alias, which MariaDB lacks; both accept it.
//
// An INSERT is checked as one even when it only updates: a table's CHECK
// constraints judge the new row as given (an empty url, the columns it
// leaves out at their defaults), and its BEFORE INSERT triggers run for
// every row (an operator's audit trigger records an insert per mark, a
// validating one refuses it). Marking such a table writes each row by an
// UPDATE of its own instead (Store.Ensure finds them), setting the same
// values.
const (
	sqlMarkLock = `SELECT id, status, COALESCE(claim_token, ''), COALESCE(lease_until < NOW(3), 1), deliveries FROM ` + byID + ` WHERE id IN (%[2]s) FOR UPDATE`
	// %[1]s: the table; %[2]s: the columns written per row; %[3]s: the
	// rows' values. One of the set* clauses below follows it, its %[1]s
	// col = VALUES(col) for each of %[2]s.
	sqlMarkUpsert = `INSERT INTO %[1]s (id, url, %[2]s) VALUES %[3]s ON DUPLICATE KEY UPDATE `
	// The same clauses, %[1]s col = ? for each column, for one row.
	sqlMarkUpdate = `UPDATE %[1]s SET %[2]s WHERE id = ?`

	setMarkDone = `status = 1, %[1]s,
	error_message = NULL, claim_token = NULL, lease_until = NULL, next_attempt_at = NULL, finished_at = NOW(3)`
	setMarkRetry = `status = 0, %[1]s,
	claim_token = NULL, lease_until = NULL`
	// A failure of the worker's own disk: the row is given back (the
	// disk's failure charges no attempt, the delivery is not counted, so
	// no poison count builds up).
	// Its retry time is now: due at once, yet marked as having failed, so
	// dl-stat shows its error.
	setMarkReturned = `%[1]s,
	next_attempt_at = NOW(3), ` + setGivenBack
	// The same for a tokenless result (dl-select | dl-fetch - | dl-mark):
	// no take counted a delivery, so none is taken back.
	setMarkReleased = `%[1]s,
	next_attempt_at = NOW(3), ` + setReleased
	setMarkFailed = `status = -1, file_path = NULL, %[1]s,
	claim_token = NULL, lease_until = NULL, next_attempt_at = NULL, finished_at = NOW(3)`
)

// RetryPolicy decides what a failed result does to its row.
type RetryPolicy struct {
	MaxAttempts int           // failed attempts after which a row fails for good
	Base        time.Duration // backoff before the first row-level retry
	Max         time.Duration // longest backoff
}

// Backoff is the wait before the next attempt after attempt failures:
// exponential with full jitter in [d/2, d], so retries of many rows that
// failed together (an origin outage) spread out.
func (p RetryPolicy) Backoff(attempt int) time.Duration {
	d := float64(p.Base) * math.Pow(2, float64(max(attempt-1, 0)))
	if d > float64(p.Max) || math.IsInf(d, 0) {
		d = float64(p.Max)
	}
	return time.Duration(d/2 + mrand.Float64()*d/2)
}

// Marked is what Mark did with one result.
type Marked int

// What a result did to its row.
const (
	MarkedDone      Marked = iota // row is done
	MarkedRetry                   // row is pending again: after a backoff, or at once after a Local failure
	MarkedFailed                  // row failed for good
	MarkedDuplicate               // the row is no longer held under this result's token: nothing written
	MarkedMissing                 // no row has the result's id (another table, a row deleted): nothing written
)

func (m Marked) String() string {
	return [...]string{"done", "retry", "failed", "duplicate", "missing"}[m]
}

// Mark writes results in one transaction and tells, per result, what it did.
// Rows are updated in id order, the order in which claims lock them, so that
// concurrent marks and claims rarely deadlock; when they do, the transaction
// is retried. After an error whose commit may have landed (its answer was
// lost), a retry of the same results tells the rows that commit wrote as
// marked, not as duplicates, and writes them no more.
//
// A result the table cannot hold as it is (see storable) is recorded as
// it can, and replaced in results by what was recorded, so that what the
// caller passes on (dl-mark's echo and result key) says what the row
// says: a done file whose path the table cannot hold is a failure.
func (s *Store) Mark(ctx context.Context, results []record.Result, p RetryPolicy) ([]Marked, error) {
	out, err := s.markBatch(ctx, results, p, false)
	if !isDataError(err) {
		return out, err
	}
	// A value of one result does not fit its column (a file name or an
	// error the table's charset cannot hold, a message too long): mark the
	// results one by one, so that this row alone is marked otherwise and
	// the batch, and dl-mark with it, does not fail at every delivery.
	//
	// Each row so marked is committed alone, and remembered as one of our
	// writes until the whole batch is: should MySQL go away before the
	// last row, the retry of the batch tells the rows already committed
	// as marked, not as late results of another worker (dropped, their
	// lines never echoed).
	out = make([]Marked, len(results))
	for i, r := range results {
		m, err := s.markBatch(ctx, []record.Result{r}, p, true)
		if isDataError(err) {
			r = storable(r, err, int(s.errorRoom.Load()))
			m, err = s.markBatch(ctx, []record.Result{r}, p, true)
		}
		if err != nil {
			return nil, err
		}
		out[i] = m[0]
		if m[0] != MarkedDuplicate && m[0] != MarkedMissing {
			results[i] = r
		}
	}
	s.clearUnsure(results)
	return out, nil
}

// storable is r as a result the table can hold, after err refused it: a
// failure keeps its outcome, with its error in ASCII and cut to what
// error_message holds (room characters; at most 4000); a done file whose
// path the table cannot hold fails, with the reason, since a row must not
// point at another file than its own.
func storable(r record.Result, err error, room int) record.Result {
	if r.Outcome == record.Failed {
		r.Error = strconv.QuoteToASCII(r.Error)
		r.Error = r.Error[1 : len(r.Error)-1]
	} else {
		// The server's message, in ASCII too: it is in the server's
		// language (lc_messages: 不正确的string值 in Chinese), which the
		// table's charset need not hold either.
		var me *mysql.MySQLError
		errors.As(err, &me)
		r = record.Result{ID: r.ID, URL: r.URL, Outcome: record.Failed, HTTP: r.HTTP, Duration: r.Duration,
			Attempt: r.Attempt, Token: r.Token, Error: "the table cannot hold the result: " + asciiOnly(me.Message)}
	}
	room = min(room, 4000)
	if r.Retryable {
		room -= len(fmt.Sprintf(gaveUp, math.MaxInt32)) // mark adds it
	}
	switch room = max(room, 0); {
	case len(r.Error) <= room:
	case room > 3:
		r.Error = r.Error[:room-3] + "..."
	default:
		r.Error = r.Error[:room]
	}
	return r
}

// asciiOnly is s with every character beyond ASCII written as Go writes
// it in a quoted string (\u4e0d), and the rest as it is.
func asciiOnly(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c < utf8.RuneSelf {
			b.WriteRune(c)
			continue
		}
		q := strconv.QuoteRuneToASCII(c)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// gaveUp follows the error of a transient failure that used up its attempts.
const gaveUp = " (gave up after %d attempts)"

// isDataError tells whether err is MySQL refusing a value for its column.
func isDataError(err error) bool {
	for _, n := range []uint16{1264, 1265, 1366, 1406} { // out of range, truncated, bad string, too long
		if isMySQLError(err, n) {
			return true
		}
	}
	return false
}

// markBatch marks results in one transaction. remember: its commit's
// writes are remembered as ours, as those of a commit without an answer
// are, until the caller forgets them (clearUnsure).
func (s *Store) markBatch(ctx context.Context, results []record.Result, p RetryPolicy, remember bool) ([]Marked, error) {
	order := make([]int, len(results))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return results[order[a]].ID < results[order[b]].ID })
	var out []Marked
	err := s.retryTransient(ctx, fmt.Sprintf("mark %d results", len(results)), func() (err error) {
		out, err = s.mark(ctx, results, order, p, remember)
		return err
	})
	return out, err
}

func (s *Store) mark(ctx context.Context, results []record.Result, order []int, p RetryPolicy, remember bool) ([]Marked, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("mark: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	rows, err := s.lockRows(ctx, tx, results, order)
	if err != nil {
		return nil, err
	}
	out := make([]Marked, len(results))
	var done, retry, returned, released, failed columns
	for _, i := range order {
		r := results[i]
		row, found := rows[r.ID]
		if !found {
			out[i] = MarkedMissing
			continue
		}
		// A result applies only while its row is held under the result's
		// token; a tokenless one (dl-select | dl-fetch - | dl-mark: no
		// claim) only to a row nobody holds. Once applied, the row is not
		// held any more: a second result for it in the batch is late too.
		if row.marked || !row.held() ||
			!(row.token == r.Token && r.Token != "" || r.Token == "" && (row.token == "" || row.expired)) {
			out[i] = MarkedDuplicate
			if m, ok := s.recorded(r, row); ok {
				out[i] = m
				rows[r.ID] = lockedRow{marked: true, deliveries: row.deliveries}
			}
			continue
		}
		rows[r.ID] = lockedRow{marked: true, deliveries: row.deliveries}
		switch {
		case r.Outcome == record.Done:
			out[i] = MarkedDone
			done.add(r.ID, "file_path", r.Path, "download_time", r.Duration, "bytes", r.Bytes, "sha256", r.SHA256,
				"http_status", nullInt(r.HTTP), "attempts", r.Attempt)
		case r.Local:
			out[i] = MarkedRetry
			back := &returned
			if r.Token == "" {
				back = &released
			} else {
				rows[r.ID] = lockedRow{marked: true, deliveries: max(row.deliveries-1, 0)} // setGivenBack
			}
			back.add(r.ID, "download_time", r.Duration, "http_status", nullInt(r.HTTP), "attempts", r.Attempt, "error_message", r.Error)
		case r.Retryable && r.Attempt < p.MaxAttempts:
			out[i] = MarkedRetry
			retry.add(r.ID, "download_time", r.Duration, "http_status", nullInt(r.HTTP), "attempts", r.Attempt,
				"error_message", r.Error, "next_attempt_at", afterMicros(micros(p.Backoff(r.Attempt))))
		default:
			out[i] = MarkedFailed
			msg := r.Error
			if r.Retryable {
				msg += fmt.Sprintf(gaveUp, r.Attempt)
			}
			failed.add(r.ID, "download_time", r.Duration, "http_status", nullInt(r.HTTP), "attempts", r.Attempt, "error_message", msg)
		}
	}
	var required string
	if r := s.required.Load(); r != nil {
		required = *r
	}
	byUpdate := s.markByUpdate.Load()
	for _, u := range []struct {
		set  string
		cols *columns
	}{{setMarkDone, &done}, {setMarkRetry, &retry}, {setMarkReturned, &returned}, {setMarkReleased, &released}, {setMarkFailed, &failed}} {
		if len(u.cols.ids) == 0 {
			continue
		}
		if byUpdate {
			query := fmt.Sprintf(sqlMarkUpdate, s.quoted, fmt.Sprintf(u.set, u.cols.assignments()))
			for i, id := range u.cols.ids {
				if _, err := tx.ExecContext(ctx, query, u.cols.updateArgs(i, id)...); err != nil {
					return nil, fmt.Errorf("mark row %q: %w", id, err)
				}
			}
			continue
		}
		names, rows, set, args := u.cols.upsert(required)
		query := fmt.Sprintf(sqlMarkUpsert, s.quoted, names, rows) + fmt.Sprintf(u.set, set)
		if _, err := tx.ExecContext(ctx, query, args...); err != nil {
			return nil, fmt.Errorf("mark %d rows: %w", len(u.cols.ids), err)
		}
	}
	if err := tx.Commit(); err != nil {
		var me *mysql.MySQLError
		if !errors.As(err, &me) || isInterrupted(err) {
			// No answer (the connection dropped), or a COMMIT killed
			// while it waited (for the log's flush, a replica's
			// acknowledgement): the commit may have landed. Then the
			// retry finds these rows no longer held under their tokens,
			// and must not take our own writes for a late result (and
			// drop the lines as duplicates).
			s.setUnsure(results, out, rows)
		}
		return nil, fmt.Errorf("mark: commit %d rows: %w", len(results), err)
	}
	if remember {
		s.setUnsure(results, out, rows)
	} else {
		s.clearUnsure(results)
	}
	return out, nil
}

// unsureMark is what a mark whose commit got no answer did with a row: the
// result's token, its marking, and the row's deliveries after it.
type unsureMark struct {
	token      string
	marked     Marked
	deliveries int64
}

// setUnsure remembers how a mark whose commit got no answer marked its
// results.
func (s *Store) setUnsure(results []record.Result, out []Marked, rows map[string]lockedRow) {
	s.unsureMu.Lock()
	defer s.unsureMu.Unlock()
	if s.unsure == nil {
		s.unsure = map[string]unsureMark{}
	}
	for i, r := range results {
		if out[i] == MarkedDone || out[i] == MarkedRetry || out[i] == MarkedFailed {
			s.unsure[r.ID] = unsureMark{token: r.Token, marked: out[i], deliveries: rows[r.ID].deliveries}
		}
	}
}

// clearUnsure forgets the rows of a committed mark: it has settled whether
// an unsure commit before it landed.
func (s *Store) clearUnsure(results []record.Result) {
	s.unsureMu.Lock()
	defer s.unsureMu.Unlock()
	if len(s.unsure) == 0 {
		return
	}
	for _, r := range results {
		delete(s.unsure, r.ID)
	}
}

// recorded tells whether r, which no longer applies to row, was written by
// an earlier mark of ours whose commit got no answer, and how: the row is
// as that mark left it, nobody holding it, in the status its marking
// writes, with the deliveries it left. Had that commit not landed, the row
// would still be held under r's token, unless its lease ran out during the
// outage and another worker has since finished it: that worker took the
// row, which counted a delivery our mark never saw, so r is late (echoed
// as recorded, it would replace the winner's result key and count the row
// twice).
func (s *Store) recorded(r record.Result, row lockedRow) (Marked, bool) {
	s.unsureMu.Lock()
	m, ok := s.unsure[r.ID]
	s.unsureMu.Unlock()
	if !ok || row.marked || m.token != r.Token || row.token != "" || row.deliveries != m.deliveries {
		return 0, false
	}
	switch {
	case m.marked == MarkedDone && row.status == Done,
		m.marked == MarkedRetry && row.status == Pending,
		m.marked == MarkedFailed && row.status == Failed:
		return m.marked, true
	}
	return 0, false
}

// lockedRow is a row's status and claim as marking finds it.
type lockedRow struct {
	status  Status
	token   string
	expired bool // no lease, or it ran out
	marked  bool // by an earlier result of the batch: a second one is late
	// deliveries as found; once marked, as the marking leaves them
	deliveries int64
}

// held tells whether a result may still apply to the row: one that is not
// finished.
func (r lockedRow) held() bool { return r.status == Pending || r.status == Processing }

// lockRows locks the rows of results (in id order, as claims lock them) and
// returns those it found.
func (s *Store) lockRows(ctx context.Context, tx *sql.Tx, results []record.Result, order []int) (map[string]lockedRow, error) {
	ids := make([]any, len(order))
	for k, i := range order {
		ids[k] = results[i].ID
	}
	rows, err := tx.QueryContext(ctx, s.q(sqlMarkLock, len(ids)), ids...)
	if err != nil {
		return nil, fmt.Errorf("mark: lock %d rows: %w", len(ids), err)
	}
	defer rows.Close()
	found := map[string]lockedRow{}
	for rows.Next() {
		var id string
		var r lockedRow
		if err := rows.Scan(&id, &r.status, &r.token, &r.expired, &r.deliveries); err != nil {
			return nil, fmt.Errorf("mark: read rows: %w", err)
		}
		found[id] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mark: read rows: %w", err)
	}
	return found, nil
}

// columns gathers the per-row values of one marking statement: the same
// columns for every row of the batch, in the order first added.
type columns struct {
	ids   []any
	names []string
	rows  [][]any // per id, its values in the order of names
}

// afterMicros is a value that columns writes as NOW(3) plus that many
// microseconds, so the database's clock decides, as everywhere else.
type afterMicros int64

func (c *columns) add(id string, kv ...any) {
	if len(c.ids) == 0 {
		for k := 0; k < len(kv); k += 2 {
			c.names = append(c.names, kv[k].(string))
		}
	}
	vals := make([]any, 0, len(kv)/2)
	for k := 1; k < len(kv); k += 2 {
		vals = append(vals, kv[k])
	}
	c.ids = append(c.ids, id)
	c.rows = append(c.rows, vals)
}

// upsert returns the column list, the VALUES rows, the col = VALUES(col)
// assignments and the arguments of the batch's statement. The required
// columns (", `a`, `b`", see Store.required) are named too, each given its
// own name as its value: an expression MySQL accepts for a column without
// a default (it yields the type's implicit default), and one never
// written, since every row exists and the update leaves them alone.
func (c *columns) upsert(required string) (names, rows, set string, args []any) {
	var tuple strings.Builder
	tuple.WriteString("(?, ''")
	for _, v := range c.rows[0] {
		if _, ok := v.(afterMicros); ok {
			tuple.WriteString(", NOW(3) + INTERVAL ? MICROSECOND")
		} else {
			tuple.WriteString(", ?")
		}
	}
	tuple.WriteString(required + ")")
	t := tuple.String()
	var rb strings.Builder
	rb.Grow(len(c.ids) * (len(t) + 1))
	args = make([]any, 0, len(c.ids)*(len(c.names)+1))
	for i, id := range c.ids {
		if i > 0 {
			rb.WriteByte(',')
		}
		rb.WriteString(t)
		args = append(args, id)
		for _, v := range c.rows[i] {
			if d, ok := v.(afterMicros); ok {
				v = int64(d)
			}
			args = append(args, v)
		}
	}
	sets := make([]string, len(c.names))
	for i, n := range c.names {
		sets[i] = n + " = VALUES(" + n + ")"
	}
	return strings.Join(c.names, ", ") + required, rb.String(), strings.Join(sets, ", "), args
}

// assignments returns "col = ?, ..." for the columns, for an UPDATE of
// one row; updateArgs gives its arguments for the i-th row.
func (c *columns) assignments() string {
	sets := make([]string, len(c.names))
	for k, n := range c.names {
		sets[k] = n + " = ?"
		if _, ok := c.rows[0][k].(afterMicros); ok {
			sets[k] = n + " = NOW(3) + INTERVAL ? MICROSECOND"
		}
	}
	return strings.Join(sets, ", ")
}

// updateArgs returns the arguments of assignments' UPDATE for the i-th row,
// whose id is id.
func (c *columns) updateArgs(i int, id any) []any {
	args := make([]any, 0, len(c.rows[i])+1)
	for _, v := range c.rows[i] {
		if d, ok := v.(afterMicros); ok {
			v = int64(d)
		}
		args = append(args, v)
	}
	return append(args, id)
}

func nullInt(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

// NewToken returns a fresh claim token: 128 random bits in hex.
func NewToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b[:])
}
