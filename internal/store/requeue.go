package store

import (
	"context"
	"fmt"
	"time"
)

// sqlRequeue puts failed rows back to pending with a fresh retry budget.
const sqlRequeue = `UPDATE %[1]s SET status = 0, attempts = 0, deliveries = 0, next_attempt_at = NULL,
	claim_token = NULL, lease_until = NULL, finished_at = NULL
	WHERE status = -1 AND (? = '' OR error_message LIKE ?) AND (? = 0 OR updated_at < NOW(3) - INTERVAL ? MICROSECOND)`

// RequeueFilter chooses which failed rows Requeue puts back.
type RequeueFilter struct {
	ErrorLike string        // SQL LIKE pattern on error_message; "" for any
	OlderThan time.Duration // failed at least this long ago; 0 for any
}

// Requeue puts the failed rows that match f back to pending and says how many.
// Their error_message stays until the next attempt's outcome replaces it.
func (s *Store) Requeue(ctx context.Context, f RequeueFilter) (int64, error) {
	older := micros(f.OlderThan)
	res, err := s.db.ExecContext(ctx, s.q(sqlRequeue), f.ErrorLike, f.ErrorLike, older, older)
	if err != nil {
		return 0, fmt.Errorf("requeue failed rows: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("requeue failed rows: %w", err)
	}
	return n, nil
}
