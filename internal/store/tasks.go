package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dlkit/dl/internal/record"
)

// Every statement on the table is built here, once. %[1]s is the table.
const (
	// byID names the table in a statement that finds its rows by a list
	// of ids (%[2]s). MariaDB weighs every index against the list, value
	// by value, before it settles on the primary key (or, for the poison
	// check, on idx_dl_lease while few rows are expired), and the weighing
	// costs more than the lookups; told, it plans at once (BenchmarkTake
	// 31-36 µs a row without the hint, 24-25 with it; BenchmarkClaim 33-46
	// and 28-36; the poison check of 1,000 ids 4.1-4.6 ms and 3.3-3.4).
	// A table whose primary key is not id alone gets no hint (see fit).
	byID        = `%[1]s` + hintPrimary
	hintPrimary = ` USE INDEX (PRIMARY)`

	// A pending row is due once its retry backoff has passed.
	condDue = `status = 0 AND (next_attempt_at IS NULL OR next_attempt_at <= NOW(3))`
	// A processing row is reclaimable when its lease ran out; a row the
	// original distributor set to 2 has no lease, so its age stands in for one.
	condExpired = `status = 2 AND (lease_until < NOW(3) OR (lease_until IS NULL AND updated_at < NOW(3) - INTERVAL ? MICROSECOND))`

	// A task is built from these columns, in this order, wherever a row
	// becomes one (selected, claimed).
	taskColumns      = `id, url, attempts, expected_sha256, target_name`
	sqlSelectDue     = `SELECT ` + taskColumns + ` FROM %[1]s WHERE ` + condDue + ` LIMIT ?`
	sqlSelectExpired = `SELECT ` + taskColumns + ` FROM %[1]s WHERE ` + condExpired + ` LIMIT ?`

	// A task that keeps killing its worker is failed at its next claim.
	sqlFailPoison = `UPDATE ` + byID + ` SET status = -1, claim_token = NULL, lease_until = NULL, finished_at = NOW(3),
	error_message = CONCAT('gave up: ', deliveries - attempts, ' deliveries ended without a result (does the task crash its worker?)')
	WHERE id IN (%[2]s) AND ` + condExpired + ` AND deliveries - attempts >= ?`
	// %[3]s is empty, or setExpected when some lines of the batch carry an
	// expected checksum or a name: the rows keep them in the claim itself,
	// so a claim never holds a row without what its line asked for.
	sqlClaim = `UPDATE ` + byID + ` SET status = 2, claim_token = ?, lease_until = NOW(3) + INTERVAL ? MICROSECOND, worker = NULL%[3]s
	WHERE id IN (%[2]s) AND ((` + condDue + `) OR (` + condExpired + `))`
	// %[1]s and %[2]s are "WHEN ? THEN ?" for each line that carries a
	// checksum or a name (NULL for the one it lacks): a line without one
	// leaves the row's as it is.
	setExpected = `, expected_sha256 = COALESCE(CASE id %[1]s END, expected_sha256), target_name = COALESCE(CASE id %[2]s END, target_name)`
	sqlClaimed  = `SELECT ` + taskColumns + ` FROM ` + byID + ` WHERE id IN (%[2]s) AND claim_token = ?`

	// A worker takes what it popped (counting a delivery) and renews while it works.
	// Each row must be held under its own task's token: a token matched
	// against another row of the batch would take a stale copy of that row.
	// "id IN" keeps the primary key's range; the pairs filter it.
	// Only the first take under a claim counts a delivery (a claim leaves
	// worker NULL): a take made again because its answer was lost must not
	// count one more. MySQL assigns left to right, so deliveries comes
	// before worker.
	// A claim is one worker's: a second copy of a task in the queue (a push
	// made again after its answer was lost), popped by another worker, finds
	// the row taken and is left out, not downloaded twice.
	sqlTake = `UPDATE ` + byID + ` SET deliveries = deliveries + (worker IS NULL), lease_until = NOW(3) + INTERVAL ? MICROSECOND, worker = ?
	WHERE id IN (%[2]s) AND status = 2 AND (id, claim_token) IN (%[3]s) AND (worker IS NULL OR worker = ?)`
	// A task from the original distributor carries no token: take it over,
	// unless a worker of ours holds the row. A token no worker took can be
	// one an original worker left behind when it finished the row.
	// A row already under the batch's token was taken by this very take,
	// made again after its answer was lost (its lease may have run out
	// during the outage): it counts no second delivery. deliveries comes
	// first, before claim_token is set (MySQL assigns left to right).
	sqlTakeSeed = `UPDATE ` + byID + ` SET deliveries = IF(claim_token <=> ?, deliveries, deliveries + 1), status = 2, claim_token = ?,
	lease_until = NOW(3) + INTERVAL ? MICROSECOND, worker = ?
	WHERE id IN (%[2]s) AND status IN (0, 2) AND (claim_token IS NULL OR worker IS NULL OR lease_until < NOW(3))`
	// A worker gives back what it took but never started (it is stopping).
	// One statement per token, so that only rows held under the very token
	// their task carries go back.
	sqlGiveBack = `UPDATE ` + byID + ` SET ` + setGivenBack + `
	WHERE id IN (%[2]s) AND status = 2 AND claim_token = ?`
	// A row given back is pending again as if it had never been delivered.
	setGivenBack = setReleased + `, deliveries = GREATEST(deliveries - 1, 0)`
	// A row released is pending again and held by nobody.
	setReleased = `status = 0, claim_token = NULL, lease_until = NULL, worker = NULL`

	sqlHeld  = `SELECT id, claim_token, COALESCE(worker, ''), attempts, expected_sha256, target_name FROM ` + byID + ` WHERE id IN (%[2]s) AND status = 2 AND claim_token IS NOT NULL`
	sqlRenew = `UPDATE ` + byID + ` SET lease_until = NOW(3) + INTERVAL ? MICROSECOND
	WHERE id IN (%[2]s) AND status = 2 AND (id, claim_token) IN (%[3]s)`
	// Only rows no worker has taken: a taken row keeps its worker's lease.
	sqlRenewQueued = `UPDATE ` + byID + ` SET lease_until = GREATEST(COALESCE(lease_until, NOW(3)), NOW(3) + INTERVAL ? MICROSECOND)
	WHERE id IN (%[2]s) AND status = 2 AND worker IS NULL AND (id, claim_token) IN (%[3]s)`
)

// fit drops byID's hint from stmt unless Ensure found the table's primary
// key to be id alone: an operator's table with id UNIQUE and no primary
// key refuses the hint (error 1176), and one keyed by another column
// would be scanned whole.
func (s *Store) fit(stmt string) string {
	if s.idPrimary.Load() {
		return stmt
	}
	return strings.ReplaceAll(stmt, hintPrimary, "")
}

func (s *Store) q(stmt string, lists ...int) string {
	stmt = s.fit(stmt)
	args := []any{s.quoted}
	for _, n := range lists {
		args = append(args, placeholders(n))
	}
	return fmt.Sprintf(stmt, args...)
}

// qPaired fills a statement on n tasks: %[2]s with their ids, %[3]s with
// their (id, token) pairs, as idsAndPairs lists them.
func (s *Store) qPaired(stmt string, n int) string {
	return fmt.Sprintf(s.fit(stmt), s.quoted, placeholders(n), strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", "))
}

// SelectOptions choose which rows SelectDue streams.
type SelectOptions struct {
	Limit   int           // 0: all
	Expired bool          // also processing rows whose lease ran out
	Stale   time.Duration // age after which a lease-less processing row counts as expired
}

// SelectDue streams due rows to fn, expired ones first, without holding them
// in memory; it stops at the first error fn returns. A row no worker could
// carry out (its url is none dl can fetch, its expected_sha256 no sha256) is
// not streamed but failed, with the reason.
func (s *Store) SelectDue(ctx context.Context, o SelectOptions, fn func(record.Task) error) error {
	limit := int64(o.Limit)
	if limit <= 0 {
		limit = 1<<63 - 1
	}
	var bad []badRow
	if o.Expired {
		n, err := s.streamRetry(ctx, "select expired rows", s.q(sqlSelectExpired), fn, &bad, micros(o.Stale), limit)
		if err != nil {
			return fmt.Errorf("select expired rows: %w", err)
		}
		limit -= n
	}
	if limit > 0 {
		if _, err := s.streamRetry(ctx, "select pending rows", s.q(sqlSelectDue), fn, &bad, limit); err != nil {
			return fmt.Errorf("select pending rows: %w", err)
		}
	}
	return s.failBadRows(ctx, bad, o.Stale)
}

// badRow is a selected row that no task line could carry, as it was read.
type badRow struct {
	id          string
	url, sha256 sql.NullString
	reason      string
}

// taskRow is a row read through taskColumns, as a task, with its url and
// expected_sha256 as the row has them (for a statement that must find the
// row unchanged).
type taskRow struct {
	task        record.Task
	url, sha256 sql.NullString
}

// scanTask reads a row through taskColumns. A NULL url (a table whose url
// column is nullable, unlike the seed's) reads as "", which no task line
// can carry: such a row is failed with the reason, and does not stop the
// read of every row after it.
func scanTask(rows *sql.Rows) (taskRow, error) {
	var r taskRow
	var name sql.NullString
	if err := rows.Scan(&r.task.ID, &r.url, &r.task.Attempt, &r.sha256, &name); err != nil {
		return r, err
	}
	r.task.URL, r.task.SHA256, r.task.Name = r.url.String, r.sha256.String, name.String
	return r, nil
}

// streamRetry is stream, run again when the server interrupts the query
// (see retryTransient) before it gave fn a row. Once rows have gone out,
// they cannot be taken back, nor the query resumed after them (its rows
// come in no set order), and running it again would give them out twice:
// then the selection ends there, with a warning, and the rows it did not
// reach stay due for the next one. A query ended for taking too long
// (max_statement_time, a tool killing long statements) most often is one
// streaming into a slow reader, which would take as long again.
func (s *Store) streamRetry(ctx context.Context, job, query string, fn func(record.Task) error, bad *[]badRow, args ...any) (int64, error) {
	var n int64
	var cut error
	before := len(*bad)
	err := s.retryTransient(ctx, job, func() (err error) {
		*bad = (*bad)[:before]
		gave := false
		n, err = s.stream(ctx, query, func(t record.Task) error {
			gave = true
			return fn(t)
		}, bad, args...)
		if gave && isInterrupted(err) {
			cut = err
			return nil
		}
		return err
	})
	if err == nil && cut != nil {
		slog.Warn("mysql statement interrupted after it gave out rows: they stand, and the rows it did not reach are left for the next selection",
			"job", job, "rows", n, "err", cut)
	}
	return n, err
}

func (s *Store) stream(ctx context.Context, query string, fn func(record.Task) error, bad *[]badRow, args ...any) (int64, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		r, err := scanTask(rows)
		if err != nil {
			return n, err
		}
		n++
		if err := r.task.Check(); err != nil {
			*bad = append(*bad, badRow{r.task.ID, r.url, r.sha256, err.Error()})
			continue
		}
		if err := fn(r.task); err != nil {
			return n, err
		}
	}
	return n, rows.Err()
}

// sqlFailBadRow fails a row that no task line can carry (its url is no
// http(s) URL dl can fetch, its expected_sha256 no sha256), if it is still
// due and still has those values. Streamed, every task line consumer would
// refuse it every round, and the row would stay pending for ever, selected
// ahead of the good rows and taking their places under --limit; streamed
// without its checksum, its file would be accepted unverified.
const sqlFailBadRow = `UPDATE %[1]s SET status = -1, error_message = ?, claim_token = NULL, lease_until = NULL,
	next_attempt_at = NULL, finished_at = NOW(3)
	WHERE id = ? AND url <=> ? AND expected_sha256 <=> ? AND ((` + condDue + `) OR (` + condExpired + `))`

func (s *Store) failBadRows(ctx context.Context, bad []badRow, stale time.Duration) error {
	for _, b := range bad {
		job := fmt.Sprintf("fail row %q that no task can carry", b.id)
		if err := s.execRetry(ctx, job, s.q(sqlFailBadRow), []any{b.reason, b.id, b.url, b.sha256, micros(stale)}); err != nil {
			return err
		}
		slog.Warn("row failed: no task line can carry it", "id", b.id, "err", b.reason)
	}
	return nil
}

// ClaimOptions bound a claim.
type ClaimOptions struct {
	QueueLease    time.Duration // how long a claimed row may wait in the queue
	Stale         time.Duration // see SelectOptions.Stale
	MaxDeliveries int           // lost deliveries after which a row fails; 0: never
}

// Claim moves the rows of tasks that are still claimable to processing under
// a new token, and returns those tasks (with token and attempt count from the
// row) in their input order. A row claimed by someone else in the meantime is
// left out, so two claimers never both get a row. Three statements per batch.
//
// A task's expected checksum and name are kept in its row by the claim, and
// each task returned carries the row's (its line's, or those an earlier
// line or an operator left there), so that every delivery of the row is
// verified and named alike.
func (s *Store) Claim(ctx context.Context, tasks []record.Task, o ClaimOptions) ([]record.Task, error) {
	if len(tasks) == 0 {
		return nil, nil
	}
	ids := make([]any, len(tasks))
	for i, t := range tasks {
		ids[i] = t.ID
	}
	if o.MaxDeliveries > 0 {
		args := append(append([]any{}, ids...), micros(o.Stale), o.MaxDeliveries)
		if err := s.execRetry(ctx, "fail poison rows", s.q(sqlFailPoison, len(ids)), args); err != nil {
			return nil, err
		}
	}
	token := NewToken()
	set, setArgs := setKept(tasks)
	args := append(append(append([]any{token, micros(o.QueueLease)}, setArgs...), ids...), micros(o.Stale))
	claimSQL := fmt.Sprintf(s.fit(sqlClaim), s.quoted, placeholders(len(ids)), set)
	if err := s.execRetry(ctx, fmt.Sprintf("claim %d rows", len(ids)), claimSQL, args); err != nil {
		return nil, err
	}
	var got map[string]record.Task
	err := s.retryTransient(ctx, "read claimed rows", func() (err error) {
		got, err = s.tokenRows(ctx, s.q(sqlClaimed, len(ids)), append(ids, token))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read claimed rows: %w", err)
	}
	out := make([]record.Task, 0, len(got))
	keep := func(row record.Task) {
		delete(got, row.ID) // a duplicate line in one batch is claimed once
		row.Token = token
		// A checksum the line did not carry comes from the row, where
		// an operator may have written one no line can carry: such a row
		// is left in processing, and dl-select --expired fails it with
		// the reason once its queue lease runs out. (Only rows with a
		// checksum or without a url, NULL in a table that allows it, are
		// checked: plain ones cost the claim nothing more.)
		if row.SHA256 != "" || row.URL == "" {
			if err := row.Check(); err != nil {
				slog.Warn("claimed row left out: no task line can carry it", "id", row.ID, "err", err)
				return
			}
		}
		out = append(out, row)
	}
	// The table compares ids by its collation, so a line may claim a row
	// whose id differs from its own (in case, say): that row goes out
	// with its own id, the one every later statement and file name uses,
	// in the line's place where IDKey tells them alike.
	var byKey map[string]string
	for _, t := range tasks {
		row, ok := got[t.ID]
		if !ok && len(got) > 0 {
			if byKey == nil {
				byKey = make(map[string]string, len(got))
				for id := range got {
					byKey[IDKey(id)] = id
				}
			}
			row, ok = got[byKey[IDKey(t.ID)]]
		}
		if ok {
			keep(row)
		}
	}
	// Rows that only the collation finds alike (accents aside, say): they
	// are ours all the same, and go out at the end of the batch.
	for _, id := range slices.Sorted(maps.Keys(got)) {
		keep(got[id])
	}
	return out, nil
}

// IDKey approximates the table's default collation (utf8mb4_general_ci,
// PAD SPACE) for ordering: ids that differ only in letter case or in
// trailing spaces name one row, and have one key. The collation alone
// decides which row a line claims; the key only places it.
func IDKey(id string) string {
	return strings.ToLower(strings.TrimRight(id, " "))
}

// setKept returns setExpected filled for the tasks that carry an expected
// checksum or a name, with its arguments, or nothing when none does: the
// claim of plain lines stays the plain statement.
func setKept(tasks []record.Task) (string, []any) {
	var sums, names []any
	for _, t := range tasks {
		if t.SHA256 == "" && t.Name == "" {
			continue
		}
		sums = append(sums, t.ID, nullable(t.SHA256))
		names = append(names, t.ID, nullable(t.Name))
	}
	if len(sums) == 0 {
		return "", nil
	}
	when := strings.Repeat("WHEN ? THEN ? ", len(sums)/2)
	return fmt.Sprintf(setExpected, when, when), append(sums, names...)
}

// nullable is s, or NULL for "" (a task line's absent value).
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// tokenRows reads rows through taskColumns, as tasks by id.
func (s *Store) tokenRows(ctx context.Context, query string, args []any) (map[string]record.Task, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	got := map[string]record.Task{}
	for rows.Next() {
		r, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		got[r.task.ID] = r.task
	}
	return got, rows.Err()
}

// Take records that worker has popped tasks: it counts a delivery and
// shortens each lease from the queue's to a worker's. Tasks without a token
// (pushed by the original distributor) are claimed here and get one. It
// returns the tasks the worker should work on, with their attempt counts: a
// task whose row has since been claimed again under another token (a stale
// copy left in the queue after its lease ran out) or finished is left out,
// since the row's current claim will bring it to an end; so is a task
// another worker took under the same claim (a second copy in the queue),
// and the second of two copies in tasks.
//
// seedToken is the token tasks without one are claimed under, made by
// NewToken once for the batch and given again to a take of the same batch
// made again (its answer lost to a dropped connection): the rows the first
// take claimed are under it, and the take made again gets them back with
// their delivery counted once. Under a token of its own, it would find
// them held by another claim, and leave them held by nobody until their
// leases ran out. A batch with such tasks needs one; others may pass "".
func (s *Store) Take(ctx context.Context, tasks []record.Task, lease time.Duration, worker, seedToken string) ([]record.Task, error) {
	if len(tasks) == 0 {
		return nil, nil
	}
	var tokened, seed []record.Task
	for _, t := range tasks {
		if t.Token == "" {
			seed = append(seed, t)
		} else {
			tokened = append(tokened, t)
		}
	}
	if len(tokened) > 0 {
		ids, pairs := idsAndPairs(tokened)
		args := append(append(append([]any{micros(lease), worker}, ids...), pairs...), worker)
		n, err := s.execRetryCount(ctx, fmt.Sprintf("take %d tasks", len(ids)), s.qPaired(sqlTake, len(ids)), args)
		if err != nil {
			return nil, err
		}
		// Every task taken (each UPDATE changes its row: the first take
		// sets its worker, any take moves its lease), and their attempt
		// counts cannot have changed while the rows were held under their
		// tokens: the tasks stand as they are, and the reading back below
		// is needed only when some were not (or a take made again moved
		// no lease within the same millisecond).
		if n == int64(len(tokened)) && len(seed) == 0 {
			return tokened, nil
		}
	}
	if len(seed) > 0 {
		ids, _ := idsAndPairs(seed)
		job := fmt.Sprintf("take %d tasks of the original distributor", len(ids))
		if seedToken == "" {
			return nil, fmt.Errorf("%s: no token given for them", job)
		}
		args := append([]any{seedToken, seedToken, micros(lease), worker}, ids...)
		if err := s.execRetry(ctx, job, s.q(sqlTakeSeed, len(ids)), args); err != nil {
			return nil, err
		}
	}
	ids, _ := idsAndPairs(tasks)
	var got map[string]heldRow
	err := s.retryTransient(ctx, "read taken rows", func() (err error) {
		got, err = s.heldRows(ctx, ids)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read taken rows: %w", err)
	}
	var out []record.Task
	for _, t := range tasks {
		want := t.Token
		if want == "" {
			want = seedToken
		}
		h, ok := got[t.ID]
		if !ok || h.token != want || h.worker != worker {
			continue
		}
		// A batch may hold two copies of one task: one transfer is enough.
		delete(got, t.ID)
		if t.Token == "" {
			// The original distributor's payload has only the id and the
			// url: what else the row asks for comes from the row.
			t.SHA256 = cmp.Or(t.SHA256, h.sha256.String)
			t.Name = cmp.Or(t.Name, h.name.String)
			if err := t.Check(); err != nil {
				slog.Warn("taken row left out: no task line can carry it", "id", t.ID, "err", err)
				continue
			}
		}
		t.Token, t.Attempt = want, h.attempts
		out = append(out, t)
	}
	return out, nil
}

// heldRow is a row held under a claim, as Take reads it back.
type heldRow struct {
	token, worker string
	attempts      int
	sha256, name  sql.NullString
}

// heldRows reads the rows of ids that are held under a claim.
func (s *Store) heldRows(ctx context.Context, ids []any) (map[string]heldRow, error) {
	rows, err := s.db.QueryContext(ctx, s.q(sqlHeld, len(ids)), ids...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	got := map[string]heldRow{}
	for rows.Next() {
		var id string
		var h heldRow
		if err := rows.Scan(&id, &h.token, &h.worker, &h.attempts, &h.sha256, &h.name); err != nil {
			return nil, err
		}
		got[id] = h
	}
	return got, rows.Err()
}

// GiveBack returns tasks a worker took but never started to pending, as if
// they had not been delivered, so that a stopping worker's prefetched tasks
// are claimable at once. A row no longer held under the task's token is
// left alone.
func (s *Store) GiveBack(ctx context.Context, tasks []record.Task) error {
	byToken := map[string][]any{}
	for _, t := range tasks {
		if t.Token != "" {
			byToken[t.Token] = append(byToken[t.Token], t.ID)
		}
	}
	for token, ids := range byToken {
		for len(ids) > 0 {
			n := min(len(ids), 1000)
			args := append(append([]any{}, ids[:n]...), token)
			if err := s.execRetry(ctx, fmt.Sprintf("give back %d tasks", n), s.q(sqlGiveBack, n), args); err != nil {
				return err
			}
			ids = ids[n:]
		}
	}
	return nil
}

// RenewQueued extends the queue leases of tasks still waiting in the queue,
// so that a short queue lease covers a long queue while a lost queue (or a
// task lost between pop and take) is noticed within one queue lease.
func (s *Store) RenewQueued(ctx context.Context, tasks []record.Task, queueLease time.Duration) error {
	for len(tasks) > 0 {
		n := min(len(tasks), 1000)
		ids, pairs := idsAndPairs(tasks[:n])
		tasks = tasks[n:]
		args := append(append([]any{micros(queueLease)}, ids...), pairs...)
		if err := s.execRetry(ctx, fmt.Sprintf("renew %d queue leases", len(ids)), s.qPaired(sqlRenewQueued, len(ids)), args); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) execRetry(ctx context.Context, job, query string, args []any) error {
	_, err := s.execRetryCount(ctx, job, query, args)
	return err
}

// execRetryCount runs a statement, retrying conflicts and interruptions
// (see retryTransient), and returns the number of rows it changed. job
// names it in the log and in the error it returns.
func (s *Store) execRetryCount(ctx context.Context, job, query string, args []any) (int64, error) {
	var n int64
	err := s.retryTransient(ctx, job, func() error {
		res, err := s.db.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", job, err)
	}
	return n, nil
}

// Renew extends the leases of tasks a worker still holds. One statement for
// all of them.
func (s *Store) Renew(ctx context.Context, tasks []record.Task, lease time.Duration) error {
	var held []record.Task
	for _, t := range tasks {
		if t.Token != "" {
			held = append(held, t)
		}
	}
	if len(held) == 0 {
		return nil
	}
	ids, pairs := idsAndPairs(held)
	args := append(append([]any{micros(lease)}, ids...), pairs...)
	return s.execRetry(ctx, fmt.Sprintf("renew %d leases", len(ids)), s.qPaired(sqlRenew, len(ids)), args)
}

// idsAndPairs returns the ids of tasks and, flattened, their (id, token)
// pairs.
func idsAndPairs(tasks []record.Task) (ids, pairs []any) {
	for _, t := range tasks {
		ids = append(ids, t.ID)
		pairs = append(pairs, t.ID, t.Token)
	}
	return ids, pairs
}
