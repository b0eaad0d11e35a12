package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"sort"
	"time"

	"github.com/dlkit/dl/internal/record"
)

// A result applies to a row only while the row is held under the result's
// token; a tokenless result (dl-select | dl-fetch - | dl-mark, no claim) only
// to a row nobody holds.
const condHeld = `id = ? AND status IN (0, 2) AND (claim_token = ? OR (? = '' AND (claim_token IS NULL OR lease_until < NOW(3))))`

const (
	sqlMarkDone = `UPDATE %[1]s SET status = 1, file_path = ?, download_time = ?, bytes = ?, sha256 = ?, http_status = ?,
	attempts = ?, error_message = NULL, claim_token = NULL, lease_until = NULL, next_attempt_at = NULL, finished_at = NOW(3)
	WHERE ` + condHeld
	sqlMarkRetry = `UPDATE %[1]s SET status = 0, download_time = ?, http_status = ?, attempts = ?, error_message = ?,
	claim_token = NULL, lease_until = NULL, next_attempt_at = NOW(3) + INTERVAL ? MICROSECOND
	WHERE ` + condHeld
	sqlMarkFailed = `UPDATE %[1]s SET status = -1, file_path = NULL, download_time = ?, http_status = ?, attempts = ?, error_message = ?,
	claim_token = NULL, lease_until = NULL, next_attempt_at = NULL, finished_at = NOW(3)
	WHERE ` + condHeld
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
	MarkedRetry                   // row is pending again, after a backoff
	MarkedFailed                  // row failed for good
	MarkedDuplicate               // the row is no longer held under this result's token: nothing written
)

func (m Marked) String() string {
	return [...]string{"done", "retry", "failed", "duplicate"}[m]
}

// Mark writes results in one transaction and tells, per result, what it did.
// Rows are updated in id order, the order in which claims lock them, so that
// concurrent marks and claims rarely deadlock; when they do, the transaction
// is retried.
func (s *Store) Mark(ctx context.Context, results []record.Result, p RetryPolicy) ([]Marked, error) {
	order := make([]int, len(results))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return results[order[a]].ID < results[order[b]].ID })
	var out []Marked
	err := retryConflicts(ctx, func() (err error) {
		out, err = s.mark(ctx, results, order, p)
		return err
	})
	return out, err
}

func (s *Store) mark(ctx context.Context, results []record.Result, order []int, p RetryPolicy) ([]Marked, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("mark: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	out := make([]Marked, len(results))
	for _, i := range order {
		r := results[i]
		var stmt string
		var args []any
		switch {
		case r.Outcome == record.Done:
			out[i] = MarkedDone
			stmt = sqlMarkDone
			args = []any{r.Path, r.Duration, r.Bytes, r.SHA256, nullInt(r.HTTP), r.Attempt}
		case r.Retryable && r.Attempt < p.MaxAttempts:
			out[i] = MarkedRetry
			stmt = sqlMarkRetry
			args = []any{r.Duration, nullInt(r.HTTP), r.Attempt, r.Error, micros(p.Backoff(r.Attempt))}
		default:
			out[i] = MarkedFailed
			stmt = sqlMarkFailed
			msg := r.Error
			if r.Retryable {
				msg = fmt.Sprintf("%s (gave up after %d attempts)", msg, r.Attempt)
			}
			args = []any{r.Duration, nullInt(r.HTTP), r.Attempt, msg}
		}
		args = append(args, r.ID, r.Token, r.Token)
		res, err := tx.ExecContext(ctx, s.q(stmt), args...)
		if err != nil {
			return nil, fmt.Errorf("mark %q %s: %w", r.ID, out[i], err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, fmt.Errorf("mark %q: %w", r.ID, err)
		} else if n == 0 {
			out[i] = MarkedDuplicate
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("mark: commit %d rows: %w", len(results), err)
	}
	return out, nil
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
