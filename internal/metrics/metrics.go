// Package metrics exposes a long-running dl-fetch's downloads to Prometheus:
// downloads by outcome, bytes received, durations, transfers in flight and
// in-process retries. It is a fetch.Observer, so it sees every transfer's
// events as they happen, and serves them over HTTP on an address that
// defaults to loopback: the numbers describe what the fleet downloads and
// from where, which is nobody else's business.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dlkit/dl/internal/fetch"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/tool"
)

// Outcomes a download ends with: done, failed for good, or failed for a
// passing reason and handed back for a later attempt.
const (
	OutcomeDone   = "done"
	OutcomeFailed = "failed"
	OutcomeRetry  = "retry"
)

// Metrics counts one process's downloads. It is safe for concurrent use.
type Metrics struct {
	reg       *prometheus.Registry
	downloads *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	bytes     prometheus.Counter
	resumed   prometheus.Counter
	retries   prometheus.Counter
	inFlight  prometheus.Gauge
	// maxAttempts is where dl-mark fails a row for good (0: never).
	maxAttempts int
}

var _ fetch.Observer = (*Metrics)(nil)

// New makes the metrics and a registry holding them and the Go runtime's.
// maxAttempts is --max-attempts (0: no limit): a passing failure that
// used the last attempt is failed for good by dl-mark, and so counted
// failed here, not retry.
func New(maxAttempts int) *Metrics {
	m := &Metrics{
		maxAttempts: maxAttempts,
		reg:         prometheus.NewRegistry(),
		downloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dl_fetch_downloads_total",
			Help: "Tasks finished, by outcome: done, failed (for good) or retry (handed back for a later attempt).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dl_fetch_download_duration_seconds",
			Help: "Time from the start of a task to its result, in-process retries included.",
			// 100 ms to about half an hour: small files to big ones.
			Buckets: prometheus.ExponentialBuckets(0.1, 4, 8),
		}, []string{"outcome"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dl_fetch_received_bytes_total",
			Help: "Body bytes written to download files (failed attempts included).",
		}),
		resumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dl_fetch_resumed_total",
			Help: "Bodies that continued a partial file instead of starting over.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dl_fetch_retries_total",
			Help: "In-process retries of failed attempts.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dl_fetch_in_flight",
			Help: "Transfers in progress.",
		}),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "dl_fetch_build_info",
		Help:        "Version and commit of this dl-fetch (always 1).",
		ConstLabels: prometheus.Labels{"version": tool.Version, "commit": tool.Commit},
	})
	info.Set(1)
	m.reg.MustRegister(m.downloads, m.duration, m.bytes, m.resumed, m.retries, m.inFlight, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every outcome is exported from the start, so rates work before the
	// first failure.
	for _, o := range []string{OutcomeDone, OutcomeFailed, OutcomeRetry} {
		m.downloads.WithLabelValues(o)
		m.duration.WithLabelValues(o)
	}
	return m
}

// Registry is where the metrics are registered, for tests and for adding more.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus' exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slogAdapter{}})
}

// Start is called by the Fetcher when a task starts.
func (m *Metrics) Start(record.Task) fetch.Transfer {
	m.inFlight.Inc()
	return &transfer{m: m}
}

// transfer is one task's events; the Fetcher calls them from one goroutine.
type transfer struct {
	m     *Metrics
	ended bool
}

func (t *transfer) Body(from, _ int64) {
	if from > 0 {
		t.m.resumed.Inc()
	}
}

func (t *transfer) Advance(n int) { t.m.bytes.Add(float64(n)) }

func (t *transfer) Retry(string, time.Duration) { t.m.retries.Inc() }

func (t *transfer) End(r record.Result) {
	if t.ended {
		return
	}
	t.ended = true
	t.m.inFlight.Dec()
	outcome := t.m.outcome(r)
	t.m.downloads.WithLabelValues(outcome).Inc()
	t.m.duration.WithLabelValues(outcome).Observe(r.Duration)
}

// outcome is what dl-mark makes of r: done; retry for a failure of the
// worker's own disk, or a passing one with attempts left; failed.
func (m *Metrics) outcome(r record.Result) string {
	switch {
	case r.Outcome == record.Done:
		return OutcomeDone
	case r.Local:
		return OutcomeRetry
	case r.Retryable && (m.maxAttempts <= 0 || r.Attempt < m.maxAttempts):
		return OutcomeRetry
	}
	return OutcomeFailed
}

// ListenAddr completes addr as dl-fetch's --metrics-listen reads it: a bare
// port or ":port" listens on loopback only; a host (0.0.0.0, [::], a name)
// must be given to listen anywhere else.
func ListenAddr(addr string) (string, error) {
	orig := addr
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", errors.New("empty listen address")
	}
	if !strings.Contains(addr, ":") {
		addr = ":" + addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: want PORT, :PORT or HOST:PORT: %w", orig, err)
	}
	// A port out of range, or a host given without its port ("localhost"
	// read as a port), would only fail at the listen.
	if _, err := net.LookupPort("tcp", port); err != nil {
		return "", fmt.Errorf("listen address %q: want PORT, :PORT or HOST:PORT: %w", orig, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// Server serves the metrics until Close.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	once sync.Once
}

// Serve listens on addr (see ListenAddr) at once, so that a taken port fails
// the command before it starts working, and serves /metrics in the
// background until Close.
func (m *Metrics) Serve(addr string) (*Server, error) {
	a, err := ListenAddr(addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", a)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "dl-fetch: metrics at /metrics")
	})
	s := &Server{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		ln:  ln, done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("metrics server stopped", "err", err)
		}
	}()
	slog.Info("serving metrics", "addr", "http://"+ln.Addr().String()+"/metrics")
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server, giving a scrape in progress a few seconds, and
// waits for its goroutine.
func (s *Server) Close() {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(ctx) // a scrape cut short is retried by Prometheus
		<-s.done
	})
}

// slogAdapter sends promhttp's errors to the process's logger.
type slogAdapter struct{}

func (slogAdapter) Println(v ...any) { slog.Error(fmt.Sprint(v...), "component", "metrics") }
