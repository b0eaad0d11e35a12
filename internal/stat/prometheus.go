package stat

import (
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// The metrics of a snapshot. Each carries the table (and the queue) as a
// label, so one textfile collector can take several pipelines' files.
var (
	descRows = prometheus.NewDesc("dl_rows", "Rows of the table of files by status (other: a status dl does not know).",
		[]string{"table", "status"}, nil)
	descRetryWaiting = prometheus.NewDesc("dl_rows_retry_waiting", "Pending rows still waiting out a retry backoff.",
		[]string{"table"}, nil)
	descExpired = prometheus.NewDesc("dl_rows_lease_expired", "Processing rows whose lease ran out (re-queued at the distributor's next round).",
		[]string{"table"}, nil)
	descInFlight = prometheus.NewDesc("dl_in_flight", "Rows a worker holds under a live lease (downloads in flight).",
		[]string{"table", "worker"}, nil)
	descQueued = prometheus.NewDesc("dl_claimed_queued", "Rows claimed and waiting in the queue for a worker.",
		[]string{"table"}, nil)
	descFinished = prometheus.NewDesc("dl_finished_last_window", "Rows that reached done or failed within the window.",
		[]string{"table", "outcome", "window_seconds"}, nil)
	descBytes = prometheus.NewDesc("dl_bytes_last_window", "Bytes of the files done within the window.",
		[]string{"table", "window_seconds"}, nil)
	descOldest = prometheus.NewDesc("dl_oldest_pending_age_seconds", "Age of the oldest pending row (0 when none is).",
		[]string{"table"}, nil)
	descErrors = prometheus.NewDesc("dl_error_rows", "Failed or retry-waiting rows carrying one of the most common error messages.",
		[]string{"table", "message"}, nil)
	descQueueLen = prometheus.NewDesc("dl_queue_length", "Tasks waiting in the Redis queue.",
		[]string{"queue"}, nil)
	descExitFlag = prometheus.NewDesc("dl_exit_flag", "1 when the exit flag is set (workers are stopping).",
		[]string{"queue"}, nil)
	descRedisUp = prometheus.NewDesc("dl_redis_up", "1 when Redis answered dl-stat.",
		[]string{"table"}, nil)
	descTime = prometheus.NewDesc("dl_stat_timestamp_seconds", "When dl-stat took this snapshot (Unix time): tells a stale file apart.",
		[]string{"table"}, nil)
)

// collector turns one snapshot into constant metrics.
type collector struct{ s Snapshot }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRows, descRetryWaiting, descExpired, descInFlight, descQueued, descFinished,
		descBytes, descOldest, descErrors, descQueueLen, descExitFlag, descRedisUp, descTime} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s, t := c.s, c.s.Table
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, r := range []struct {
		status string
		n      int64
	}{{"pending", s.Rows.Pending}, {"processing", s.Rows.Processing}, {"done", s.Rows.Done}, {"failed", s.Rows.Failed},
		{"other", s.Rows.Other}} {
		g(descRows, float64(r.n), t, r.status)
	}
	g(descRetryWaiting, float64(s.Rows.RetryWaiting), t)
	g(descExpired, float64(s.Rows.Expired), t)
	for _, w := range s.Workers {
		g(descInFlight, float64(w.InFlight), t, w.Worker)
	}
	g(descQueued, float64(s.InFlight.Queued), t)
	win := fmt.Sprintf("%g", s.LastMinute.Seconds)
	g(descFinished, float64(s.LastMinute.Done), t, "done", win)
	g(descFinished, float64(s.LastMinute.Failed), t, "failed", win)
	g(descBytes, float64(s.LastMinute.Bytes), t, win)
	oldest := 0.0
	if s.OldestPendingSeconds != nil {
		oldest = *s.OldestPendingSeconds
	}
	g(descOldest, oldest, t)
	// Messages MySQL groups apart can read the same once made one line and
	// cut to 200 characters (a newline against a space, a long common
	// prefix); a label value may appear only once, or the whole exposition
	// is refused, so such messages share one series, their rows summed.
	var msgs []string
	rows := map[string]int64{}
	for _, e := range s.Errors {
		m := oneLine(e.Message, 200)
		if _, ok := rows[m]; !ok {
			msgs = append(msgs, m)
		}
		rows[m] += e.Rows
	}
	for _, m := range msgs {
		g(descErrors, float64(rows[m]), t, m)
	}
	up := 0.0
	if s.Queue != nil {
		up = 1
		g(descQueueLen, float64(s.Queue.Length), s.Queue.Name)
		flag := 0.0
		if s.Queue.ExitFlag {
			flag = 1
		}
		g(descExitFlag, flag, s.Queue.Name)
	}
	g(descRedisUp, up, t)
	g(descTime, float64(s.Time.UnixMilli())/1000, t)
}

// writePrometheus writes s in the text exposition format, through client
// library's registry so names, escaping and ordering are the library's.
func writePrometheus(w io.Writer, s Snapshot) error {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(collector{s}); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		return fmt.Errorf("gather metrics: %w", err)
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("write metrics: %w", err)
		}
	}
	return nil
}
