// Package stat is dl-stat: one look at the whole fleet — rows by status,
// the queue, downloads in flight per worker, throughput, the oldest pending
// row, the most common errors — read from MySQL and Redis and shown as a
// table, as JSON or in Prometheus' text format, once or every few seconds.
//
// Everything it shows is derived from the table and the queue, which every
// worker already keeps current, so it needs no agent on the workers and
// writes nothing (except the status key when asked to publish).
package stat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/store"
)

// Snapshot is the fleet at one moment; its JSON form is dl-stat --json.
type Snapshot struct {
	Time  time.Time `json:"time"`
	Table string    `json:"table"`
	Rows  Rows      `json:"rows"`
	// Queue is nil when Redis could not be read; QueueError says why.
	Queue      *Queue     `json:"queue"`
	QueueError string     `json:"queue_error,omitempty"`
	InFlight   InFlight   `json:"in_flight"`
	Workers    []Worker   `json:"workers"`
	LastMinute Throughput `json:"last_minute"`
	// OldestPendingSeconds is nil when no row is pending.
	OldestPendingSeconds *float64 `json:"oldest_pending_seconds"`
	Errors               []Error  `json:"errors"`
}

// Rows are the table's rows by status.
type Rows struct {
	Pending      int64 `json:"pending"`       // status 0, retry-waiting included
	RetryWaiting int64 `json:"retry_waiting"` // pending, backoff not over
	Processing   int64 `json:"processing"`    // status 2, expired included
	Expired      int64 `json:"expired"`       // processing, lease ran out: re-queued at the next distributor round
	Done         int64 `json:"done"`
	Failed       int64 `json:"failed"`
	// Other is rows of a status dl does not know (an operator's own, set
	// by hand): dl never hands them out, but they count in Total.
	Other int64 `json:"other"`
	Total int64 `json:"total"`
}

// Queue is the Redis side.
type Queue struct {
	Name     string `json:"name"`
	Length   int64  `json:"length"`
	ExitFlag bool   `json:"exit_flag"`
}

// InFlight splits the processing rows under a live lease.
type InFlight struct {
	Downloading int64 `json:"downloading"` // held by a worker
	Queued      int64 `json:"queued"`      // claimed, waiting in the queue for a worker
}

// Worker is one dl-fetch process (its name, host:pid-suffix) and the rows it holds.
type Worker struct {
	Worker   string `json:"worker"`
	InFlight int64  `json:"in_flight"`
}

// Throughput is what finished within the window.
type Throughput struct {
	Seconds        float64 `json:"seconds"`
	Done           int64   `json:"done"`
	Failed         int64   `json:"failed"`
	Bytes          int64   `json:"bytes"`
	FilesPerSecond float64 `json:"files_per_second"`
	BytesPerSecond float64 `json:"bytes_per_second"`
}

// Error is one error message (URLs cut out) and how many rows carry it.
type Error struct {
	Message string `json:"message"`
	Rows    int64  `json:"rows"`
}

// Source is where a snapshot is read from.
type Source struct {
	Store *store.Store
	Queue *queue.Queue
	// Window is the span of "last minute"; TopErrors how many messages to show.
	Window    time.Duration
	TopErrors int
	// QueueLease is dl-select's: a processing row with no lease (the
	// original distributor's) counts as expired once it is older.
	QueueLease time.Duration
}

// errQueue marks a snapshot that lacks the Redis side.
var errQueue = errors.New("redis")

// Collect reads one snapshot. A Redis failure leaves the MySQL side intact,
// says why in QueueError, and is returned too; a MySQL failure returns no
// snapshot.
func Collect(ctx context.Context, src Source) (Snapshot, error) {
	now := time.Now().UTC()
	st, err := src.Store.Stat(ctx, src.Window, src.QueueLease, src.TopErrors)
	if err != nil {
		return Snapshot{}, fmt.Errorf("mysql: %w", err)
	}
	s := Snapshot{
		Time: now, Table: src.Store.Table(),
		Rows: Rows{Pending: st.Counts.Pending, RetryWaiting: st.Counts.RetryWaiting, Processing: st.Counts.Processing,
			Expired: st.Counts.Expired, Done: st.Counts.Done, Failed: st.Counts.Failed, Other: st.Counts.Other, Total: st.Counts.Total()},
		Workers: []Worker{}, Errors: []Error{},
	}
	for _, w := range st.Workers {
		if w.Worker == "" {
			s.InFlight.Queued += w.Rows
			continue
		}
		s.InFlight.Downloading += w.Rows
		s.Workers = append(s.Workers, Worker{Worker: w.Worker, InFlight: w.Rows})
	}
	secs := st.Recent.Window.Seconds()
	s.LastMinute = Throughput{Seconds: secs, Done: st.Recent.Done, Failed: st.Recent.Failed, Bytes: st.Recent.Bytes}
	if secs > 0 {
		s.LastMinute.FilesPerSecond = float64(st.Recent.Done) / secs
		s.LastMinute.BytesPerSecond = float64(st.Recent.Bytes) / secs
	}
	if st.OldestPending >= 0 {
		age := st.OldestPending.Seconds()
		s.OldestPendingSeconds = &age
	}
	for _, e := range st.Errors {
		s.Errors = append(s.Errors, Error{Message: e.Message, Rows: e.Rows})
	}
	qs, err := src.Queue.Stat(ctx)
	if err != nil {
		s.QueueError = err.Error()
		return s, fmt.Errorf("%w at %s: %w", errQueue, src.Queue.Where(), err)
	}
	s.Queue = &Queue{Name: src.Queue.Keys().Queue, Length: qs.Length, ExitFlag: qs.ExitFlag}
	return s, nil
}

// Format is how a snapshot is shown.
type Format int

// The formats of dl-stat.
const (
	Table      Format = iota // for a person
	JSON                     // one object per snapshot (one line each in --watch)
	Prometheus               // text exposition format, for node_exporter's textfile collector
)

// Render writes s in format f.
func Render(w io.Writer, s Snapshot, f Format) error {
	switch f {
	case JSON:
		b, err := encode(s)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case Prometheus:
		return writePrometheus(w, s)
	}
	return writeTable(w, s)
}

// encode is the snapshot's JSON line; messages keep their <url> readable.
func encode(s Snapshot) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return b.Bytes(), nil
}

// Options say how Run shows the fleet.
type Options struct {
	Format Format
	// Watch repeats every Watch until ctx ends; 0 shows one snapshot.
	Watch time.Duration
	// Output is a file to replace atomically with each snapshot (what the
	// textfile collector wants: it must never read half a file); empty for w.
	Output string
	// Publish stores each snapshot's JSON in Redis (queue.Keys.Status) too.
	Publish bool
}

// Run shows one snapshot, or one every o.Watch until ctx ends. Watching
// survives failures (they are logged and shown); a single look returns them.
func Run(ctx context.Context, src Source, o Options, w io.Writer) error {
	clear := o.Watch > 0 && o.Format == Table && o.Output == "" && isTerminal(w)
	var tick <-chan time.Time
	if o.Watch > 0 {
		t := time.NewTicker(o.Watch)
		defer t.Stop()
		tick = t.C
	}
	written := false
	for {
		// A terminal is cleared for each table; in a pipe or a log a blank
		// line parts one table from the next.
		prefix := ""
		switch {
		case clear:
			prefix = "\033[H\033[2J"
		case written && o.Format == Table && o.Output == "":
			prefix = "\n"
		}
		wrote, err := once(ctx, src, o, w, prefix)
		if o.Watch == 0 {
			return err
		}
		// An output that never took a snapshot (a directory that does
		// not exist, one not ours) will not take the next: a watch that
		// went on would look fine and write nothing. One that worked
		// before may fail for a while (a full disk) and come back.
		var oe *outputError
		if !written && errors.As(err, &oe) {
			return err
		}
		written = written || wrote
		if err != nil && ctx.Err() == nil {
			slog.Warn("status incomplete", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		}
	}
}

// once shows one snapshot; wrote tells whether it reached the output;
// prefix goes before it.
func once(ctx context.Context, src Source, o Options, w io.Writer, prefix string) (wrote bool, err error) {
	s, err := Collect(ctx, src)
	if err != nil && !errors.Is(err, errQueue) {
		return false, err
	}
	var buf bytes.Buffer
	buf.WriteString(prefix)
	if rerr := Render(&buf, s, o.Format); rerr != nil {
		return false, rerr
	}
	if o.Output != "" {
		if werr := writeAtomic(o.Output, buf.Bytes()); werr != nil {
			return false, &outputError{werr}
		}
	} else if _, werr := w.Write(buf.Bytes()); werr != nil {
		return false, &outputError{fmt.Errorf("write status: %w", werr)}
	}
	if o.Publish && s.Queue != nil {
		b, jerr := encode(s)
		if jerr != nil {
			return true, jerr
		}
		if perr := src.Queue.PublishStatus(ctx, b, publishTTL(o.Watch)); perr != nil {
			return true, perr
		}
	}
	return true, err
}

// outputError is a snapshot that could not be written out.
type outputError struct{ err error }

func (e *outputError) Error() string { return e.err.Error() }
func (e *outputError) Unwrap() error { return e.err }

// publishTTL keeps a published status a little longer than the next refresh
// takes, so readers never see a gap, and lets it vanish when dl-stat stops.
func publishTTL(watch time.Duration) time.Duration {
	return max(3*watch, time.Minute)
}

// writeAtomic replaces path with b: a temporary file in the same directory,
// renamed over it.
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Readable by the collector, which may run as another user.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
