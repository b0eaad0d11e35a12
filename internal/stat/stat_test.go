package stat_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/stat"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/testenv"
)

// fleet is a table and a queue in a known state: every status, two workers,
// a claim waiting in the queue, an expired lease, a retry backoff, recent and
// old finishes, and errors that differ only by URL.
func fleet(t *testing.T) (stat.Source, *queue.Queue) {
	t.Helper()
	src, q, _ := fleetDB(t)
	return src, q
}

// fleetDB is fleet with a connection to its database, to add rows.
func fleetDB(t *testing.T) (stat.Source, *queue.Queue, *sql.DB) {
	t.Helper()
	ctx := context.Background()
	dsn, db := testenv.MySQL(t)
	url, prefix, _ := testenv.Redis(t)
	st, err := store.Open(ctx, dsn, "files")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(ctx, url, queue.NewKeys(prefix+"download_queue", prefix+"download_"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	for _, stmt := range []string{
		// pending: one new, one waiting out a backoff, one whose backoff passed
		`INSERT INTO files (id, url, status, created_at) VALUES ('p1', 'http://h/p1', 0, NOW() - INTERVAL 2 HOUR)`,
		`INSERT INTO files (id, url, status, error_message, next_attempt_at) VALUES
		 ('p2', 'http://h/p2', 0, 'GET http://h/p2: status 503 Service Unavailable', NOW(3) + INTERVAL 1 HOUR),
		 ('p3', 'http://h/p3', 0, 'GET http://h/p3: status 503 Service Unavailable', NOW(3) - INTERVAL 1 MINUTE)`,
		// processing: three held by w1, one by w2, one claimed in the queue, one expired
		`INSERT INTO files (id, url, status, worker, lease_until) VALUES
		 ('a1', 'http://h/a1', 2, 'host1:11', NOW(3) + INTERVAL 1 MINUTE),
		 ('a2', 'http://h/a2', 2, 'host1:11', NOW(3) + INTERVAL 1 MINUTE),
		 ('a3', 'http://h/a3', 2, 'host1:11', NOW(3) + INTERVAL 1 MINUTE),
		 ('b1', 'http://h/b1', 2, 'host2:22', NOW(3) + INTERVAL 1 MINUTE),
		 ('q1', 'http://h/q1', 2, NULL, NOW(3) + INTERVAL 30 MINUTE),
		 ('x1', 'http://h/x1', 2, 'host3:33', NOW(3) - INTERVAL 1 MINUTE)`,
		// done: two within the minute (3000 bytes), one long ago
		`INSERT INTO files (id, url, status, bytes, finished_at) VALUES
		 ('d1', 'http://h/d1', 1, 1000, NOW(3) - INTERVAL 5 SECOND),
		 ('d2', 'http://h/d2', 1, 2000, NOW(3) - INTERVAL 10 SECOND),
		 ('d3', 'http://h/d3', 1, 4000, NOW(3) - INTERVAL 1 HOUR)`,
		// failed: three 404s on different URLs, one refused, one recent
		`INSERT INTO files (id, url, status, error_message, finished_at) VALUES
		 ('f1', 'http://h/f1', -1, 'GET http://h/f1: status 404 Not Found', NOW(3) - INTERVAL 1 HOUR),
		 ('f2', 'http://h/f2', -1, 'GET https://other/f2?x=1: status 404 Not Found', NOW(3) - INTERVAL 1 HOUR),
		 ('f3', 'http://h/f3', -1, 'GET http://h/f3: status 404 Not Found', NOW(3) - INTERVAL 2 SECOND),
		 ('f4', 'http://h/f4', -1, 'GET http://h/f4: dial tcp 10.0.0.1:80: connect: connection refused', NOW(3) - INTERVAL 1 HOUR)`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := q.Push(ctx, []record.Task{{ID: "q1", URL: "http://h/q1"}, {ID: "z", URL: "http://h/z"}}); err != nil {
		t.Fatal(err)
	}
	if err := q.SetExitFlag(ctx, true); err != nil {
		t.Fatal(err)
	}
	return stat.Source{Store: st, Queue: q, Window: time.Minute, TopErrors: 5, QueueLease: 5 * time.Minute}, q, db
}

func TestCollectReadsEveryFigure(t *testing.T) {
	src, q := fleet(t)
	s, err := stat.Collect(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	want := stat.Rows{Pending: 3, RetryWaiting: 1, Processing: 6, Expired: 1, Done: 3, Failed: 4, Total: 16}
	if s.Rows != want {
		t.Errorf("rows %+v, want %+v", s.Rows, want)
	}
	if s.Queue == nil || *s.Queue != (stat.Queue{Name: q.Keys().Queue, Length: 2, ExitFlag: true}) {
		t.Errorf("queue %+v (%s)", s.Queue, s.QueueError)
	}
	if s.InFlight != (stat.InFlight{Downloading: 4, Queued: 1}) {
		t.Errorf("in flight %+v", s.InFlight)
	}
	if len(s.Workers) != 2 || s.Workers[0] != (stat.Worker{"host1:11", 3}) || s.Workers[1] != (stat.Worker{"host2:22", 1}) {
		t.Errorf("workers %+v (the expired host3 must not count)", s.Workers)
	}
	lm := s.LastMinute
	if lm.Done != 2 || lm.Failed != 1 || lm.Bytes != 3000 || lm.Seconds != 60 || lm.BytesPerSecond != 50 {
		t.Errorf("last minute %+v", lm)
	}
	if s.OldestPendingSeconds == nil || *s.OldestPendingSeconds < 7190 || *s.OldestPendingSeconds > 7300 {
		t.Errorf("oldest pending %v s, want about 7200", s.OldestPendingSeconds)
	}
	wantErrs := []stat.Error{
		{"GET <url>: status 404 Not Found", 3},
		{"GET <url>: status 503 Service Unavailable", 2},
		{"GET <url>: dial tcp 10.0.0.1:80: connect: connection refused", 1},
	}
	if len(s.Errors) != len(wantErrs) {
		t.Fatalf("errors %+v, want %+v", s.Errors, wantErrs)
	}
	for i := range wantErrs {
		if s.Errors[i] != wantErrs[i] {
			t.Errorf("error %d: %+v, want %+v", i, s.Errors[i], wantErrs[i])
		}
	}
}

func TestFormats(t *testing.T) {
	src, q := fleet(t)
	ctx := context.Background()
	s, err := stat.Collect(ctx, src)
	if err != nil {
		t.Fatal(err)
	}

	js := render(t, s, stat.JSON)
	var doc struct {
		Rows  map[string]int64 `json:"rows"`
		Queue map[string]any   `json:"queue"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil || strings.Count(js.String(), "\n") != 1 {
		t.Fatalf("JSON %q: %v", js.String(), err)
	}
	for k, v := range map[string]int64{"pending": 3, "processing": 6, "done": 3, "failed": 4} {
		if doc.Rows[k] != v {
			t.Errorf("JSON rows.%s = %d, want %d", k, doc.Rows[k], v)
		}
	}
	if !strings.Contains(js.String(), `"GET <url>: status 404 Not Found"`) {
		t.Errorf("JSON escapes the messages: %s", js.String())
	}

	prom := render(t, s, stat.Prometheus)
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(prom.Bytes()))
	if err != nil {
		t.Fatalf("not Prometheus text: %v\n%s", err, prom.String())
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		mf := mfs[name]
		if mf == nil {
			t.Fatalf("no %s in\n%s", name, prom.String())
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metrics
				}
			}
			return m.GetGauge().GetValue()
		}
		t.Fatalf("no %s%v in\n%s", name, labels, prom.String())
		return 0
	}
	for status, n := range map[string]float64{"pending": 3, "processing": 6, "done": 3, "failed": 4} {
		if got := value("dl_rows", map[string]string{"status": status, "table": "files"}); got != n {
			t.Errorf("dl_rows{status=%q} = %v, want %v", status, got, n)
		}
	}
	for name, want := range map[string]float64{"dl_queue_length": 2, "dl_exit_flag": 1, "dl_redis_up": 1, "dl_rows_retry_waiting": 1, "dl_rows_lease_expired": 1, "dl_claimed_queued": 1} {
		if got := value(name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := value("dl_in_flight", map[string]string{"worker": "host1:11"}); got != 3 {
		t.Errorf("dl_in_flight{worker=host1:11} = %v", got)
	}
	if got := value("dl_error_rows", map[string]string{"message": "GET <url>: status 404 Not Found"}); got != 3 {
		t.Errorf("dl_error_rows 404 = %v", got)
	}
	if got := value("dl_finished_last_window", map[string]string{"outcome": "done"}); got != 2 {
		t.Errorf("dl_finished_last_window done = %v", got)
	}
	if mfs["dl_queue_length"].GetMetric()[0].GetLabel()[0].GetValue() != q.Keys().Queue {
		t.Errorf("queue label %v", mfs["dl_queue_length"])
	}

	tab := render(t, s, stat.Table)
	for _, want := range []string{"pending     3  (1 waiting to retry)", "processing  6  (1 lease expired)", "failed      4",
		"2  tasks in " + q.Keys().Queue + "; exit flag SET", "4  downloading (1 claimed", "2  done, 1 failed; 3.0 kB",
		"oldest pending  2h0m0s", "host1:11  3", "GET <url>: status 404 Not Found", "connection refused"} {
		if !strings.Contains(tab.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tab.String())
		}
	}
}

// TestRowsOfAnotherStatusAreShown: a row whose status dl does not know
// (an operator's own, set by hand) counts in the total, so every format
// must show it too, or the figures do not add up to the total and the
// rows are nowhere to be seen.
func TestRowsOfAnotherStatusAreShown(t *testing.T) {
	src, _, db := fleetDB(t)
	if _, err := db.Exec(`INSERT INTO files (id, url, status) VALUES ('o1', 'http://h/o1', 3), ('o2', 'http://h/o2', 7)`); err != nil {
		t.Fatal(err)
	}
	s, err := stat.Collect(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	js := render(t, s, stat.JSON)
	var doc struct {
		Rows map[string]int64 `json:"rows"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	r := doc.Rows
	if r["other"] != 2 || r["total"] != 18 || r["pending"]+r["processing"]+r["done"]+r["failed"]+r["other"] != r["total"] {
		t.Errorf("JSON rows %v: want 2 other, adding up to a total of 18", r)
	}

	prom := render(t, s, stat.Prometheus)
	if !strings.Contains(prom.String(), `dl_rows{status="other",table="files"} 2`+"\n") {
		t.Errorf("Prometheus lacks dl_rows{status=\"other\"} 2:\n%s", prom.String())
	}

	tab := render(t, s, stat.Table)
	if !strings.Contains(tab.String(), "other       2  (status not 0, 1, 2 or -1)") || !strings.Contains(tab.String(), "total       18") {
		t.Errorf("table lacks the other rows:\n%s", tab.String())
	}
}

// TestTableLeavesOutNoOtherRows: with every row of a known status, the
// table stays as the README shows it.
func TestTableLeavesOutNoOtherRows(t *testing.T) {
	src, _ := fleet(t)
	s, err := stat.Collect(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	tab := render(t, s, stat.Table)
	if strings.Contains(tab.String(), "other") {
		t.Errorf("table shows other rows where none are:\n%s", tab.String())
	}
}

// lineWriter cancels the watch after n lines.
type lineWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	n      int
	cancel context.CancelFunc
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Count(w.buf.String(), "\n") >= w.n {
		w.cancel()
	}
	return len(p), nil
}

func TestWatchWritesJSONLinesUntilStopped(t *testing.T) {
	src, q := fleet(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &lineWriter{n: 3, cancel: cancel}
	done := make(chan error, 1)
	go func() {
		done <- stat.Run(ctx, src, stat.Options{Format: stat.JSON, Watch: 20 * time.Millisecond, Publish: true}, w)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("watch ended with %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("watch did not stop when its context ended")
	}
	lines := strings.Split(strings.TrimSpace(w.buf.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("%d snapshots: %q", len(lines), w.buf.String())
	}
	for _, l := range lines {
		var s stat.Snapshot
		if err := json.Unmarshal([]byte(l), &s); err != nil || s.Rows.Done != 3 {
			t.Fatalf("snapshot %q: %v", l, err)
		}
	}
	pub, err := q.PublishedStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var s stat.Snapshot
	if err := json.Unmarshal(pub, &s); err != nil || s.Rows.Failed != 4 {
		t.Fatalf("published status %q: %v", pub, err)
	}
	ttl, _ := q.Client().TTL(context.Background(), q.Keys().Status()).Result()
	if ttl <= 0 || ttl > time.Minute {
		t.Errorf("published status TTL %v, want at most a minute", ttl)
	}
}

// Tables watched into a pipe (a log, less) are parted by a blank line, and
// carry no terminal escapes.
func TestWatchedTablesInAPipeArePartedByABlankLine(t *testing.T) {
	src, _ := fleet(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &lineWriter{n: 40, cancel: cancel}
	if err := stat.Run(ctx, src, stat.Options{Format: stat.Table, Watch: 20 * time.Millisecond}, w); err != nil {
		t.Fatalf("watch ended with %v", err)
	}
	out := w.buf.String()
	if n := strings.Count(out, "table "); n < 2 {
		t.Fatalf("%d tables in %q, want at least two", n, out)
	}
	if strings.Contains(out, "\033") {
		t.Errorf("terminal escapes written to a pipe: %q", out)
	}
	parts := strings.Split(out, "\ntable ")
	for i := 1; i < len(parts); i++ {
		if !strings.HasSuffix(parts[i-1], "\n") {
			t.Fatalf("table %d follows the one before without a blank line:\n%s", i+1, out)
		}
	}
}

func TestOutputFileIsReplacedWhole(t *testing.T) {
	src, _ := fleet(t)
	path := filepath.Join(t.TempDir(), "dl.prom")
	if err := os.WriteFile(path, []byte("stale-content\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := stat.Run(context.Background(), src, stat.Options{Format: stat.Prometheus, Output: path}, os.Stdout); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `dl_rows{status="done",table="files"} 3`) || strings.Contains(string(b), "stale-content") {
		t.Fatalf("output file:\n%s", b)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("output mode %v, want 0644 for the collector", fi.Mode().Perm())
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".dl.prom.*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestRedisDownStillShowsMySQL(t *testing.T) {
	src, _ := fleet(t)
	url, stop, _ := testenv.StartRedisServer(t)
	q, err := queue.Open(context.Background(), url, queue.NewKeys("q", "p_"))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	stop()
	src.Queue = q
	var out bytes.Buffer
	err = stat.Run(context.Background(), src, stat.Options{Format: stat.JSON}, &out)
	if err == nil || !strings.Contains(err.Error(), "redis at") {
		t.Fatalf("error %v, want one naming Redis", err)
	}
	var s stat.Snapshot
	if jerr := json.Unmarshal(out.Bytes(), &s); jerr != nil || s.Rows.Total != 16 || s.Queue != nil || s.QueueError == "" {
		t.Fatalf("snapshot without Redis %q: %v", out.String(), jerr)
	}
}

// TestPrometheusMergesMessagesThatReadTheSame: messages MySQL keeps apart
// may read the same once made one line and cut; the exposition must still
// be valid, with one series holding the rows of both.
func TestPrometheusMergesMessagesThatReadTheSame(t *testing.T) {
	long := strings.Repeat("x509: certificate is valid for many names, ", 6)
	for _, tc := range []struct {
		name string
		errs []stat.Error
		want map[string]float64
	}{
		{"a newline and a space", []stat.Error{{Message: "read: connection\nreset", Rows: 2}, {Message: "read: connection reset", Rows: 3}},
			map[string]float64{"read: connection reset": 5}},
		{"a long common prefix", []stat.Error{{Message: long + "not a.example", Rows: 1}, {Message: long + "not b.example", Rows: 4}, {Message: "other", Rows: 1}},
			map[string]float64{string([]rune(long)[:199]) + "…": 5, "other": 1}},
		{"distinct", []stat.Error{{Message: "a", Rows: 1}, {Message: "b", Rows: 2}},
			map[string]float64{"a": 1, "b": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := stat.Snapshot{Time: time.Now(), Table: "files", Workers: []stat.Worker{}, Errors: tc.errs}
			prom := render(t, s, stat.Prometheus)
			parser := expfmt.NewTextParser(model.LegacyValidation)
			mfs, err := parser.TextToMetricFamilies(bytes.NewReader(prom.Bytes()))
			if err != nil {
				t.Fatalf("not Prometheus text: %v\n%s", err, prom.String())
			}
			got := map[string]float64{}
			for _, m := range mfs["dl_error_rows"].GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "message" {
						got[l.GetValue()] += m.GetGauge().GetValue()
					}
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("series %v, want %v", got, tc.want)
			}
			for msg, n := range tc.want {
				if got[msg] != n {
					t.Errorf("dl_error_rows{message=%q} = %v, want %v", msg, got[msg], n)
				}
			}
		})
	}
}

// TestWatchFailsOnAnOutputItCannotWrite: an --output in a directory that
// does not exist (a typo in a unit) fails the watch at its first snapshot,
// as it fails a single look; it used to go on for ever, a service that
// looked fine logging "status incomplete" and writing nothing.
func TestWatchFailsOnAnOutputItCannotWrite(t *testing.T) {
	src, _ := fleet(t)
	path := filepath.Join(t.TempDir(), "no-such-dir", "dl.prom")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := stat.Run(ctx, src, stat.Options{Format: stat.Prometheus, Watch: 10 * time.Millisecond, Output: path}, os.Stdout)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("watch writing to %s: %v (context: %v), want an error naming the file at once", path, err, ctx.Err())
	}
}

// render is s rendered in format f.
func render(t *testing.T, s stat.Snapshot, f stat.Format) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	if err := stat.Render(&b, s, f); err != nil {
		t.Fatalf("render %v: %v", f, err)
	}
	return &b
}
