package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Status is the key dl-stat --publish keeps the fleet's last status in
// (<prefix>status, download_status by default): the original design's
// "real-time status in Redis", readable with a plain GET.
func (k Keys) Status() string { return k.prefix + "status" }

// Stat is what Redis knows about a pipeline.
type Stat struct {
	Length   int64 // tasks waiting in the queue
	ExitFlag bool
}

// Stat reads the queue's length and the exit flag in one round trip.
func (q *Queue) Stat(ctx context.Context) (Stat, error) {
	var n *redis.IntCmd
	var flag *redis.IntCmd
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		n = p.LLen(ctx, q.keys.Queue)
		flag = p.Exists(ctx, q.keys.ExitFlag)
		return nil
	})
	if err != nil {
		return Stat{}, fmt.Errorf("read %s and %s: %w", q.keys.Queue, q.keys.ExitFlag, err)
	}
	return Stat{Length: n.Val(), ExitFlag: flag.Val() > 0}, nil
}

// PublishStatus stores status (dl-stat's JSON) under Keys.Status for ttl, so
// a status nobody refreshes disappears instead of telling old news.
func (q *Queue) PublishStatus(ctx context.Context, status []byte, ttl time.Duration) error {
	if err := q.rdb.Set(ctx, q.keys.Status(), status, ttl).Err(); err != nil {
		return fmt.Errorf("write %s: %w", q.keys.Status(), err)
	}
	return nil
}

// PublishedStatus reads what PublishStatus stored; nil when nothing is.
func (q *Queue) PublishedStatus(ctx context.Context) ([]byte, error) {
	b, err := q.rdb.Get(ctx, q.keys.Status()).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", q.keys.Status(), err)
	}
	return b, nil
}
