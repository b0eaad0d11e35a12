package fetch

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/record"
)

// recorder is an Observer that writes each event down as a line.
type recorder struct {
	mu     sync.Mutex
	events map[string][]string // by task id
}

type recTransfer struct {
	r        *recorder
	id       string
	advanced int64 // since the last Body
	ended    bool
}

func (r *recorder) Start(t record.Task) Transfer {
	r.add(t.ID, "start")
	return &recTransfer{r: r, id: t.ID}
}

func (r *recorder) add(id, ev string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.events == nil {
		r.events = map[string][]string{}
	}
	r.events[id] = append(r.events[id], ev)
}

func (r *recorder) of(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events[id], " ")
}

func (t *recTransfer) flush() {
	if t.advanced > 0 {
		t.r.add(t.id, fmt.Sprintf("+%d", t.advanced))
		t.advanced = 0
	}
}

func (t *recTransfer) Body(from, total int64) {
	t.flush()
	t.r.add(t.id, fmt.Sprintf("body(%d/%d)", from, total))
}

func (t *recTransfer) Advance(n int) {
	if n <= 0 || t.ended {
		panic(fmt.Sprintf("Advance(%d) after end %v", n, t.ended))
	}
	t.advanced += int64(n)
}

func (t *recTransfer) Retry(err string, wait time.Duration) {
	t.flush()
	t.r.add(t.id, "retry")
}

func (t *recTransfer) End(r record.Result) {
	t.flush()
	if t.ended {
		panic("End twice")
	}
	t.ended = true
	t.r.add(t.id, fmt.Sprintf("end(%s %d)", r.Outcome, r.Bytes))
}

// TestObserver: the events of a transfer add up to what Fetch did — a body
// cut at 1 MiB, a retry that resumes it, the end with the result — and a
// file already in place, a failure before any body, and a refused resume
// tell their own stories.
func TestObserver(t *testing.T) {
	body := content(3<<20, 21)
	var mu sync.Mutex
	cutOnce := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.NotFound(w, r)
			return
		case "/norange":
			w.Header().Set("ETag", `"n"`)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
			return
		}
		mu.Lock()
		first := !cutOnce[r.URL.Path]
		cutOnce[r.URL.Path] = true
		mu.Unlock()
		w.Header().Set("ETag", `"e"`)
		if first {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body[:1<<20])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}))
	defer srv.Close()
	var rec recorder
	f := newFetcher(t, Options{Retries: 1, Observer: &rec})

	res := f.Fetch(context.Background(), record.Task{ID: "cut", URL: srv.URL + "/cut.bin"})
	checkDone(t, res, body)
	got := rec.of("cut")
	// The cut lands anywhere in the first MiB, as the kernel delivers it.
	var n1, n2 int64
	if _, err := fmt.Sscanf(got, "start body(0/3145728) +%d retry body(%d/3145728)", &n1, &n2); err != nil || n1 != n2 || n1 > 1<<20 {
		t.Fatalf("events %q: want the first body, a retry and a resume where it stopped", got)
	}
	if want := fmt.Sprintf(" +%d end(done 3145728)", len(body)-int(n1)); !strings.HasSuffix(got, want) {
		t.Errorf("events %q: want them to end with %q", got, want)
	}

	// Recognised in place: no body at all.
	res = f.Fetch(context.Background(), record.Task{ID: "cut", URL: srv.URL + "/cut.bin"})
	checkDone(t, res, body)
	if got := rec.of("cut"); !strings.HasSuffix(got, "end(done 3145728) start end(done 3145728)") {
		t.Errorf("events for a file in place %q", got)
	}

	res = f.Fetch(context.Background(), record.Task{ID: "404", URL: srv.URL + "/missing"})
	if got := rec.of("404"); res.Outcome != record.Failed || got != "start end(failed 0)" {
		t.Errorf("events for a 404 %q", got)
	}

	// A refused resume starts a new body from 0.
	task := record.Task{ID: "nr", URL: srv.URL + "/norange"}
	ps := f.paths(task)
	os.MkdirAll(filepath.Dir(ps.part), 0o755)
	os.WriteFile(ps.part, body[:1000], 0o644)
	os.WriteFile(ps.meta, []byte(`{"url":"`+task.URL+`","etag":"\"n\"","size":-1}`), 0o644)
	res = f.Fetch(context.Background(), task)
	checkDone(t, res, body)
	if got, want := rec.of("nr"), "start body(0/3145728) +3145728 end(done 3145728)"; got != want {
		t.Errorf("events for a refused resume %q, want %q", got, want)
	}
}

func TestObservers(t *testing.T) {
	if Observers() != nil || Observers(nil, nil) != nil {
		t.Error("no observer should make nil, so Fetch skips observing")
	}
	var a, b recorder
	if o := Observers(nil, &a); o != Observer(&a) {
		t.Errorf("one observer came back wrapped: %T", o)
	}
	body := content(5000, 22)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	defer srv.Close()
	f := newFetcher(t, Options{Observer: Observers(&a, nil, &b)})
	checkDone(t, f.Fetch(context.Background(), record.Task{ID: "t", URL: srv.URL + "/t"}), body)
	for _, r := range []*recorder{&a, &b} {
		if got, want := r.of("t"), "start body(0/5000) +5000 end(done 5000)"; got != want {
			t.Errorf("events %q, want %q", got, want)
		}
	}
}
