// Package queue is all of dl's Redis I/O and holds every Redis key name.
//
// Redis is a transport, not a record: the queue may lose everything at any
// moment (a restart without persistence, a FLUSHALL) and MySQL's leases bring
// the lost tasks back. The key names default to the original design's so that
// its workers and ours can share one queue:
//
//	<queue>            list of task payloads {"id":…,"url":…} (download_queue)
//	<prefix>exit_flag  set: every worker finishes what it has and exits (download_exit_flag)
//	<prefix>result:<id> the last result of a row, kept 24 h (download_result:<id>)
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dlkit/dl/internal/outage"
	"github.com/dlkit/dl/internal/record"
)

// ResultTTL is how long a result key lives, as in the original design.
const ResultTTL = 24 * time.Hour

// Keys are the Redis key names of one pipeline.
type Keys struct {
	Queue    string
	ExitFlag string
	prefix   string
}

// NewKeys derives the key names from the queue name and the prefix of the
// others ("download_" gives the original design's names).
func NewKeys(queue, prefix string) Keys {
	return Keys{Queue: queue, ExitFlag: prefix + "exit_flag", prefix: prefix}
}

// Result is the key of a row's result.
func (k Keys) Result(id string) string { return k.prefix + "result:" + id }

// Queue is one pipeline's keys on one Redis.
type Queue struct {
	rdb  redis.UniversalClient
	keys Keys
	addr string // for messages, password removed
}

// Open connects to the Redis named by rawURL (one server, a Redis Cluster or
// a Sentinel-monitored master: see newClient for the URL forms) and checks
// that it answers. In cluster mode the key names are put in one hash slot
// (see Keys.inOneSlot); Queue.Keys tells the names in use.
func Open(ctx context.Context, rawURL string, keys Keys) (*Queue, error) {
	q, err := Dial(rawURL, keys)
	if err != nil {
		return nil, err
	}
	if err := q.rdb.Ping(ctx).Err(); err != nil {
		q.Close()
		return nil, fmt.Errorf("redis at %s: %w%s", q.addr, err, tlsHint(rawURL, err))
	}
	return q, nil
}

// tlsHint explains a rediss:// URL that timed out: plain Redis reads a TLS
// handshake as the start of a command and waits for the rest, so the only
// sign of the mismatch is that nothing answers.
func tlsHint(rawURL string, err error) string {
	var ne net.Error
	timedOut := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
	if !timedOut || !strings.HasPrefix(strings.ToLower(rawURL), "rediss:") {
		return ""
	}
	return " (no answer to the TLS handshake: if that server is plain Redis, the URL is redis://, not rediss://)"
}

// Dial is Open without the check that Redis answers: each command
// connects (again) as it needs to, so a Redis that is down now is no
// error until a command fails. It is for dl-stat --watch, which shows an
// outage rather than fail on it.
func Dial(rawURL string, keys Keys) (*Queue, error) {
	rdb, m, err := newClient(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis URL %q: %w", Redact(rawURL), err)
	}
	if m == cluster {
		if keys, err = keys.inOneSlot(); err != nil {
			rdb.Close()
			return nil, err
		}
	}
	// go-redis logs dial failures itself; our callers report them once.
	redis.SetLogger(quietLogger{})
	return &Queue{rdb: rdb, keys: keys, addr: Redact(rawURL)}, nil
}

// CheckURL refuses what Open would refuse before dialling: a URL that is
// none of the three forms, or, in a cluster, keys that cannot share a slot.
func CheckURL(rawURL string, keys Keys) error {
	rdb, m, err := newClient(rawURL)
	if err != nil {
		return fmt.Errorf("redis URL %q: %w", Redact(rawURL), err)
	}
	rdb.Close()
	if m == cluster {
		_, err = keys.inOneSlot()
	}
	return err
}

// Close releases the connections.
func (q *Queue) Close() error { return q.rdb.Close() }

// Keys returns the key names in use.
func (q *Queue) Keys() Keys { return q.keys }

// Client exposes the client for tests and dl-stat.
func (q *Queue) Client() redis.UniversalClient { return q.rdb }

// Where names the server in messages.
func (q *Queue) Where() string { return q.addr }

// Redact returns a Redis URL without its secrets: its passwords, and a
// user name given without a password, which hosted services hand out as
// a token (redis://TOKEN@host), in every form (record.RedactUser). The
// sentinels' user name and password, given in the query, are a user's
// too and go by the same rule: sentinel_username alone is hidden whole.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	q := u.Query()
	hidden := q.Has("password")
	if hidden {
		q.Set("password", "xxxxx")
	}
	if q.Has("sentinel_username") || q.Has("sentinel_password") {
		s := &url.URL{User: url.User(q.Get("sentinel_username"))}
		if q.Has("sentinel_password") {
			s.User = url.UserPassword(q.Get("sentinel_username"), q.Get("sentinel_password"))
		}
		if record.RedactUser(s) {
			hidden = true
			if q.Has("sentinel_username") {
				q.Set("sentinel_username", s.User.Username())
			}
			if pass, ok := s.User.Password(); ok {
				q.Set("sentinel_password", pass)
			}
		}
	}
	if hidden {
		u.RawQuery = q.Encode()
	}
	record.RedactUser(u)
	return u.String()
}

// Push appends tasks to the queue in one RPUSH.
func (q *Queue) Push(ctx context.Context, tasks []record.Task) error {
	if len(tasks) == 0 {
		return nil
	}
	vals := make([]any, len(tasks))
	for i, t := range tasks {
		b, err := json.Marshal(t)
		if err != nil {
			return fmt.Errorf("encode task %q: %w", t.ID, err)
		}
		vals[i] = b
	}
	if err := q.rdb.RPush(ctx, q.keys.Queue, vals...).Err(); err != nil {
		return fmt.Errorf("push %d tasks onto %s: %w", len(tasks), q.keys.Queue, err)
	}
	return nil
}

// Pop takes up to n tasks without waiting. Payloads that do not decode are
// returned as errors beside the tasks, so one bad payload loses nothing else.
func (q *Queue) Pop(ctx context.Context, n int) ([]record.Task, []error, error) {
	vals, err := q.rdb.LPopCount(ctx, q.keys.Queue, n).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("pop from %s: %w", q.keys.Queue, err)
	}
	tasks, bad := decode(vals)
	return tasks, bad, nil
}

// Wait blocks up to timeout for one task.
func (q *Queue) Wait(ctx context.Context, timeout time.Duration) ([]record.Task, []error, error) {
	kv, err := q.rdb.BLPop(ctx, timeout, q.keys.Queue).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("wait on %s: %w", q.keys.Queue, err)
	}
	tasks, bad := decode(kv[1:])
	return tasks, bad, nil
}

func decode(vals []string) ([]record.Task, []error) {
	var tasks []record.Task
	var bad []error
	for _, v := range vals {
		t, err := record.ParseTask([]byte(v))
		if err != nil {
			bad = append(bad, fmt.Errorf("bad payload %.200q: %w", v, err))
			continue
		}
		tasks = append(tasks, t)
	}
	return tasks, bad
}

// Len is the queue's length.
func (q *Queue) Len(ctx context.Context) (int64, error) {
	n, err := q.rdb.LLen(ctx, q.keys.Queue).Result()
	if err != nil {
		return 0, fmt.Errorf("length of %s: %w", q.keys.Queue, err)
	}
	return n, nil
}

// ExitFlag tells whether the exit flag is set.
func (q *Queue) ExitFlag(ctx context.Context) (bool, error) {
	n, err := q.rdb.Exists(ctx, q.keys.ExitFlag).Result()
	if err != nil {
		return false, fmt.Errorf("read %s: %w", q.keys.ExitFlag, err)
	}
	return n > 0, nil
}

// SetExitFlag sets (on) or clears the exit flag. The value is "1", as the
// original design writes it.
func (q *Queue) SetExitFlag(ctx context.Context, on bool) error {
	var err error
	if on {
		err = q.rdb.Set(ctx, q.keys.ExitFlag, "1", 0).Err()
	} else {
		err = q.rdb.Del(ctx, q.keys.ExitFlag).Err()
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", q.keys.ExitFlag, err)
	}
	return nil
}

// resultValue is the result key's value: the original design's fields (id,
// success, message, timestamp) and the whole result line beside them.
type resultValue struct {
	record.Result
	Success   bool   `json:"success"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
	Marked    string `json:"marked"`
}

// SetResults stores each result under its key for ResultTTL, in one pipeline.
// marked says what dl-mark did with each (done, retry, failed, duplicate).
func (q *Queue) SetResults(ctx context.Context, results []record.Result, marked []string) error {
	if len(results) == 0 {
		return nil
	}
	now := time.Now().Format("2006-01-02 15:04:05")
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range results {
			msg := r.Error
			if r.Outcome == record.Done {
				msg = fmt.Sprintf("downloaded (%.2fs)", r.Duration)
			}
			b, err := json.Marshal(resultValue{Result: r, Success: r.Outcome == record.Done, Message: msg, Timestamp: now, Marked: marked[i]})
			if err != nil {
				return fmt.Errorf("encode result %q: %w", r.ID, err)
			}
			p.Set(ctx, q.keys.Result(r.ID), b, ResultTTL)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store %d results: %w", len(results), err)
	}
	return nil
}

// IsUnavailable tells whether err means Redis could not be reached, dropped
// the connection, is not ready yet (loading, failing over), or refuses
// writes until it has memory again (OOM: at its maxmemory, which the workers'
// pops free): each passes, so a push waits it out and dl-mark skips the
// result keys meanwhile, instead of failing.
func IsUnavailable(err error) bool {
	if outage.Network(err) {
		return true
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range []string{"LOADING", "MASTERDOWN", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "OOM"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
	}
	return false
}

// quietLogger sends go-redis's own log lines to slog at debug level, so an
// outage is reported once by the caller, not once per dial by the library.
type quietLogger struct{}

func (quietLogger) Printf(_ context.Context, format string, v ...any) {
	slog.Debug(fmt.Sprintf(format, v...), "component", "go-redis")
}

// Peek returns up to n tasks from the head of the queue without removing
// them; payloads that do not decode are skipped.
func (q *Queue) Peek(ctx context.Context, n int64) ([]record.Task, error) {
	vals, err := q.rdb.LRange(ctx, q.keys.Queue, 0, n-1).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", q.keys.Queue, err)
	}
	tasks, _ := decode(vals)
	return tasks, nil
}
