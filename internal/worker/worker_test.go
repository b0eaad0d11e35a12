package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/testenv"
	"github.com/dlkit/dl/internal/tool"
)

// countingFetcher "downloads" by waiting a little and records the highest
// number of calls in flight at once.
type countingFetcher struct {
	inFlight, peak atomic.Int64
	fail           string // URL substring that fails
	full           string // URL substring that fails on a full disk
	hold           bool   // each call lasts until ctx ends, not 20ms
}

func (f *countingFetcher) FetchUnlessStopped(stop, ctx context.Context, t record.Task) (record.Result, bool) {
	return f.fetch(ctx, t), true
}

func (f *countingFetcher) fetch(ctx context.Context, t record.Task) record.Result {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	var soon <-chan time.Time
	if !f.hold {
		soon = time.After(20 * time.Millisecond)
	}
	select {
	case <-soon:
	case <-ctx.Done():
	}
	if f.full != "" && strings.Contains(t.URL, f.full) {
		return record.Result{ID: t.ID, URL: t.URL, Outcome: record.Failed, Error: "write /d/x.part: no space left on device", Retryable: true, Local: true}
	}
	if f.fail != "" && strings.Contains(t.URL, f.fail) {
		return record.Result{ID: t.ID, URL: t.URL, Outcome: record.Failed, Error: "boom"}
	}
	return record.Result{ID: t.ID, URL: t.URL, Outcome: record.Done, Path: "p/" + t.ID, Bytes: 1}
}

func TestRunLines(t *testing.T) {
	tests := []struct {
		name        string
		input       string
		concurrency int
		fail        string
		wantLines   int
		wantErr     string
	}{
		{"all good", "http://h/1\nhttp://h/2\nhttp://h/3\nhttp://h/4\nhttp://h/5\n", 2, "", 5, ""},
		{"task lines", `{"id":"a","url":"http://h/a"}` + "\n" + `{"id":"b","url":"http://h/b"}` + "\n", 8, "", 2, ""},
		{"bad lines", "http://h/1\nnope\n{\"id\":\"x\"}\nhttp://h/2\n", 4, "", 2, "2 bad task lines skipped"},
		{"failures", "http://h/ok\nhttp://h/bad\n", 4, "bad", 2, "1 of 2 downloads failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &countingFetcher{fail: tc.fail}
			var out bytes.Buffer
			err := RunLines(context.Background(), f, strings.NewReader(tc.input), Options{Concurrency: tc.concurrency}, &out)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			if n := strings.Count(out.String(), "\n"); n != tc.wantLines {
				t.Fatalf("%d result lines, want %d:\n%s", n, tc.wantLines, out.String())
			}
			if p := f.peak.Load(); p > int64(tc.concurrency) {
				t.Fatalf("%d transfers at once, limit %d", p, tc.concurrency)
			}
		})
	}
}

func TestConcurrencyIsUsed(t *testing.T) {
	f := &countingFetcher{}
	var urls []string
	for i := 0; i < 64; i++ {
		urls = append(urls, "http://h/"+strings.Repeat("x", i+1))
	}
	var out bytes.Buffer
	if err := RunURLs(context.Background(), f, urls, Options{Concurrency: 16}, &out); err != nil {
		t.Fatal(err)
	}
	if p := f.peak.Load(); p != 16 {
		t.Fatalf("peak %d transfers at once, want 16", p)
	}
}

// A first stop (the command's context) lets transfers in flight finish and
// report; nothing new starts.
func TestStopFinishesInFlight(t *testing.T) {
	f := &countingFetcher{}
	hard := context.Background()
	ctx, stop := context.WithCancel(tool.WithHard(hard, hard))
	r, w := ioPipe()
	var out testenv.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- RunLines(ctx, f, r, Options{Concurrency: 2}, &out) }()
	w.Write([]byte("http://h/1\nhttp://h/2\n"))
	for f.inFlight.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	stop() // with stdin still open: the reader must not hold the exit
	// Nor may the exit status say the input was done: it was not all read.
	if err := <-done; err == nil || !strings.Contains(err.Error(), "stopped before every task was started, after 2 downloads") {
		t.Fatalf("err %v; want the run reported cut short after 2 downloads", err)
	}
	w.Close()
	if n := strings.Count(out.String(), "\n"); n != 2 {
		t.Fatalf("%d results after stop, want the 2 in flight:\n%s", n, out.String())
	}
}

// TestStopBeforeEveryURLFails: dl-fetch URL… stopped with URLs not yet
// started exits non-zero, like curl and wget interrupted.
func TestStopBeforeEveryURLFails(t *testing.T) {
	f := &countingFetcher{}
	hard := context.Background()
	ctx, stop := context.WithCancel(tool.WithHard(hard, hard))
	done := make(chan error, 1)
	var out testenv.SyncBuffer
	go func() {
		done <- RunURLs(ctx, f, []string{"http://h/1", "http://h/2", "http://h/3"}, Options{Concurrency: 1}, &out)
	}()
	for f.inFlight.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	stop()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "stopped before every task was started") {
		t.Fatalf("err %v; want the run reported cut short", err)
	}
}

// TestAbandonedURLFails: dl-fetch URL… whose download a second signal
// abandoned exits non-zero, although every URL was started: it used to exit
// 0, as if the file were there.
func TestAbandonedURLFails(t *testing.T) {
	f := &countingFetcher{hold: true}
	hard, abort := context.WithCancel(context.Background())
	defer abort()
	ctx, stop := context.WithCancel(tool.WithHard(hard, hard))
	defer stop()
	done := make(chan error, 1)
	var out testenv.SyncBuffer
	go func() { done <- RunURLs(ctx, f, []string{"http://h/1"}, Options{Concurrency: 1}, &out) }()
	for f.inFlight.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	stop()
	abort()
	if err := <-done; err == nil || err.Error() != "1 downloads abandoned in flight" {
		t.Fatalf("err %v; want the download reported abandoned", err)
	}
	if out.String() != "" {
		t.Errorf("results %q; want none for an abandoned download", out.String())
	}
}

// TestDiskRefusedStops: the first failure of the local disk stops the feed,
// so a full disk fails a few tasks, not the whole input, and the run ends
// with an error that says why.
func TestDiskRefusedStops(t *testing.T) {
	f := &countingFetcher{full: "/full"}
	var in strings.Builder
	for i := range 40 {
		if i == 2 {
			in.WriteString("http://h/full\n")
		}
		fmt.Fprintf(&in, "http://h/%d\n", i)
	}
	var out bytes.Buffer
	err := RunLines(context.Background(), f, strings.NewReader(in.String()), Options{Concurrency: 2}, &out)
	if !errors.Is(err, ErrDiskRefused) || !strings.Contains(err.Error(), "http://h/full: write /d/x.part: no space left on device") {
		t.Fatalf("err %v, want %v naming the task and its error", err, ErrDiskRefused)
	}
	// Started before the stop: the first two, the full one, the one beside
	// it, and one the feed handed over as the stop came.
	if n := strings.Count(out.String(), "\n"); n > 5 || !strings.Contains(out.String(), `"local":true`) {
		t.Fatalf("%d result lines of 41, want at most 5 with the local failure among them:\n%s", n, out.String())
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"forever": Forever, "once": Once, "batch": Batch} {
		if m, err := ParseMode(in); err != nil || m != want {
			t.Errorf("%s: %v %v", in, m, err)
		}
	}
	if _, err := ParseMode("sometimes"); err == nil {
		t.Error("bad mode accepted")
	}
}
