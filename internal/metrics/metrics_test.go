package metrics_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dlkit/dl/internal/fetch"
	"github.com/dlkit/dl/internal/metrics"
	"github.com/dlkit/dl/internal/origin"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/testenv"
)

// TestMetricsCountRealDownloads runs a Fetcher with the metrics as its
// observer against the test origin and scrapes them over HTTP: one file
// done after one in-process retry, one refused for good, one handed back.
func TestMetricsCountRealDownloads(t *testing.T) {
	_, base := testenv.StartOrigin(t)
	f, metricsURL := serve(t, fetch.Options{Dir: t.TempDir(), Retries: 1})

	ctx := context.Background()
	tasks := []record.Task{
		{ID: "ok", URL: origin.URL(base, "a.bin", 5000, "fail=1")},     // 503 once, then 5000 bytes
		{ID: "gone", URL: origin.URL(base, "b.bin", 10, "status=404")}, // failed for good
		{ID: "busy", URL: origin.URL(base, "c.bin", 10, "status=503")}, // retried once, then handed back
	}
	for _, task := range tasks {
		r := f.Fetch(ctx, task)
		t.Logf("%s: %s %s", task.ID, r.Outcome, r.Error)
	}

	mfs := scrape(t, metricsURL)
	for outcome, want := range map[string]float64{"done": 1, "failed": 1, "retry": 1} {
		if got := value(t, mfs, "dl_fetch_downloads_total", "outcome", outcome); got != want {
			t.Errorf("downloads{outcome=%s} = %v, want %v", outcome, got, want)
		}
	}
	if got := value(t, mfs, "dl_fetch_received_bytes_total", "", ""); got != 5000 {
		t.Errorf("received bytes %v, want 5000", got)
	}
	if got := value(t, mfs, "dl_fetch_retries_total", "", ""); got != 2 {
		t.Errorf("retries %v, want 2 (one for ok, one for busy)", got)
	}
	if got := value(t, mfs, "dl_fetch_in_flight", "", ""); got != 0 {
		t.Errorf("in flight %v after every fetch returned", got)
	}
	for _, mt := range mfs["dl_fetch_download_duration_seconds"].GetMetric() {
		if h := mt.GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() <= 0 {
			t.Errorf("duration histogram %v: want one positive sample per outcome", mt)
		}
	}
	if mfs["dl_fetch_build_info"] == nil || mfs["go_goroutines"] == nil {
		t.Errorf("build info or Go runtime metrics missing")
	}
}

func TestInFlightWhileTransferring(t *testing.T) {
	_, base := testenv.StartOrigin(t)
	f, metricsURL := serve(t, fetch.Options{Dir: t.TempDir()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan record.Result)
	go func() { done <- f.Fetch(ctx, record.Task{ID: "slow", URL: origin.URL(base, "s.bin", 0, "endless=1")}) }()
	testenv.Eventually(t, time.Minute, 20*time.Millisecond, func() bool {
		mfs := scrape(t, metricsURL)
		return value(t, mfs, "dl_fetch_in_flight", "", "") == 1 && value(t, mfs, "dl_fetch_received_bytes_total", "", "") > 0
	}, "one transfer in flight, receiving bytes")
	cancel()
	<-done
	if got := value(t, scrape(t, metricsURL), "dl_fetch_in_flight", "", ""); got != 0 {
		t.Errorf("in flight %v after the transfer ended", got)
	}
}

func TestListenAddrDefaultsToLoopback(t *testing.T) {
	for in, want := range map[string]string{
		"9101": "127.0.0.1:9101", ":9101": "127.0.0.1:9101", "0.0.0.0:9101": "0.0.0.0:9101",
		"[::1]:9101": "[::1]:9101", "localhost:0": "localhost:0",
	} {
		if got, err := metrics.ListenAddr(in); err != nil || got != want {
			t.Errorf("ListenAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := metrics.ListenAddr("a:b:c"); err == nil {
		t.Error("a:b:c accepted")
	}
	// A port that is taken fails at once, not in the background.
	m := metrics.New(0)
	srv, err := m.Serve(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(srv.Addr(), "127.0.0.1:") {
		t.Errorf("bare port listens on %s, want loopback", srv.Addr())
	}
	if _, err := metrics.New(0).Serve(srv.Addr()); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("second listener on %s: %v", srv.Addr(), err)
	}
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("scrape is not Prometheus text: %v\n%s", err, b)
	}
	return mfs
}

func value(t *testing.T, mfs map[string]*dto.MetricFamily, name, label, want string) float64 {
	t.Helper()
	mf := mfs[name]
	if mf == nil {
		t.Fatalf("no metric %s", name)
	}
	for _, m := range mf.GetMetric() {
		ok := label == ""
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == want {
				ok = true
			}
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, want)
	return 0
}

// counter is a second observer, standing in for the progress bars.
type counter struct{ starts, bytes, ends int }

func (c *counter) Start(record.Task) fetch.Transfer { c.starts++; return c }
func (c *counter) Body(int64, int64)                {}
func (c *counter) Advance(n int)                    { c.bytes += n }
func (c *counter) Retry(string, time.Duration)      {}
func (c *counter) End(record.Result)                { c.ends++ }

// TestChainFeedsBoth: with progress bars on, the metrics still count.
func TestChainFeedsBoth(t *testing.T) {
	_, base := testenv.StartOrigin(t)
	m := metrics.New(0)
	bars := &counter{}
	f, err := fetch.New(fetch.Options{Dir: t.TempDir(), Observer: fetch.Observers(m, bars)})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if r := f.Fetch(context.Background(), record.Task{ID: "a", URL: origin.URL(base, "a.bin", 3000)}); r.Outcome != record.Done {
		t.Fatalf("fetch: %+v", r)
	}
	if bars.starts != 1 || bars.ends != 1 || bars.bytes != 3000 {
		t.Errorf("second observer saw %+v", bars)
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	if got := value(t, byName, "dl_fetch_received_bytes_total", "", ""); got != 3000 {
		t.Errorf("metrics counted %v bytes, want 3000", got)
	}
}

// TestWaitingTasksAreNotTransfers: tasks that wait for a --per-host slot are
// not transfers in flight, and those a stop gives back before they start
// (dl-fetch prints no result for them) are no outcome: the counters must
// match the result lines.
func TestWaitingTasksAreNotTransfers(t *testing.T) {
	_, base := testenv.StartOrigin(t)
	f, metricsURL := serve(t, fetch.Options{Dir: t.TempDir(), PerHost: 1})

	stop, cancel := context.WithCancel(context.Background())
	type ret struct {
		r       record.Result
		started bool
	}
	rets := make(chan ret, 3)
	for i, name := range []string{"a.bin", "b.bin", "c.bin"} {
		task := record.Task{ID: name, URL: origin.URL(base, name, 2000, "delay=1s")}
		go func() {
			r, started := f.FetchUnlessStopped(stop, context.Background(), task)
			rets <- ret{r, started}
		}()
		if i == 0 {
			// The first holds the host's one slot before the others ask.
			testenv.Eventually(t, time.Minute, 10*time.Millisecond, func() bool {
				return value(t, scrape(t, metricsURL), "dl_fetch_in_flight", "", "") >= 1
			}, "the first transfer under way")
		}
	}
	time.Sleep(200 * time.Millisecond) // the other two are waiting for the slot
	if got := value(t, scrape(t, metricsURL), "dl_fetch_in_flight", "", ""); got != 1 {
		t.Errorf("in flight %v with one transfer and two tasks waiting for its host, want 1", got)
	}
	cancel()
	results := map[string]float64{}
	for range 3 {
		if r := <-rets; r.started {
			outcome := metrics.OutcomeDone
			switch {
			case r.r.Outcome != record.Done && r.r.Retryable:
				outcome = metrics.OutcomeRetry
			case r.r.Outcome != record.Done:
				outcome = metrics.OutcomeFailed
			}
			results[outcome]++
		}
	}
	if results[metrics.OutcomeDone] != 1 || len(results) != 1 {
		t.Fatalf("results %v, want the first done and the others given back", results)
	}
	mfs := scrape(t, metricsURL)
	for _, outcome := range []string{metrics.OutcomeDone, metrics.OutcomeFailed, metrics.OutcomeRetry} {
		if got := value(t, mfs, "dl_fetch_downloads_total", "outcome", outcome); got != results[outcome] {
			t.Errorf("downloads{outcome=%s} = %v, want %v (the results returned)", outcome, got, results[outcome])
		}
	}
	if got := value(t, mfs, "dl_fetch_in_flight", "", ""); got != 0 {
		t.Errorf("in flight %v after every fetch returned", got)
	}
}

// serve gives a test a Fetcher with o whose observer is a new metrics
// server on a loopback port, and the URL to scrape it at; both close at the
// test's end.
func serve(t *testing.T, o fetch.Options) (*fetch.Fetcher, string) {
	t.Helper()
	m := metrics.New(o.MaxAttempts)
	o.Observer = m
	f, err := fetch.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	srv, err := m.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return f, "http://" + srv.Addr() + "/metrics"
}

// TestSpentAttemptsCountAsFailed: a passing failure on a task's last
// attempt (--max-attempts, DL_MAX_ATTEMPTS, which dl-mark reads too) is
// failed for good by dl-mark, not handed back: the metrics must count it
// failed, or a host that never recovers shows as retries and never in the
// failure rate.
func TestSpentAttemptsCountAsFailed(t *testing.T) {
	_, base := testenv.StartOrigin(t)
	f, metricsURL := serve(t, fetch.Options{Dir: t.TempDir(), Retries: 1, MaxAttempts: 3})
	ctx := context.Background()
	for _, task := range []record.Task{
		{ID: "last", URL: origin.URL(base, "a.bin", 10, "status=503"), Attempt: 2}, // its third attempt fails: spent
		{ID: "more", URL: origin.URL(base, "b.bin", 10, "status=503")},             // two fail, one left: handed back
	} {
		r := f.Fetch(ctx, task)
		t.Logf("%s: %s attempt %d retryable %v: %s", task.ID, r.Outcome, r.Attempt, r.Retryable, r.Error)
	}
	mfs := scrape(t, metricsURL)
	for outcome, want := range map[string]float64{"done": 0, "failed": 1, "retry": 1} {
		if got := value(t, mfs, "dl_fetch_downloads_total", "outcome", outcome); got != want {
			t.Errorf("downloads{outcome=%s} = %v, want %v", outcome, got, want)
		}
	}
}
