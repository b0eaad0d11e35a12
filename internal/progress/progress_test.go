package progress

import (
	"context"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/fetch"
	"github.com/dlkit/dl/internal/origin"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/testenv"
)

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// TestBarsDrawRealTransfers runs real transfers, slowed by the rate limit
// so that they are seen in flight, and reads what was drawn.
func TestBarsDrawRealTransfers(t *testing.T) {
	_, base := testenv.StartOrigin(t)
	var out testenv.SyncBuffer
	bars := New(&out, Options{Width: 120, MinAge: -1, Refresh: 20 * time.Millisecond})
	f, err := fetch.New(fetch.Options{Dir: t.TempDir(), Observer: bars, LimitRate: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tasks := []record.Task{
		{ID: "1", URL: origin.URL(base, "first.iso", 2<<20)},
		{ID: "2", URL: origin.URL(base, "second.bin", 1<<20)},
		{ID: "3", URL: origin.URL(base, "gone.bin", 10, "status=404")},
	}
	var wg sync.WaitGroup
	for _, tk := range tasks {
		wg.Go(func() { f.Fetch(context.Background(), tk) })
	}
	testenv.Eventually(t, 20*time.Second, 10*time.Millisecond, func() bool {
		return strings.Contains(out.String(), "first.iso") && strings.Contains(out.String(), "second.bin")
	}, "both transfers drawn")
	lines := bars.Lines()
	io.WriteString(lines, `{"id":"1",`)
	io.WriteString(lines, `"outcome":"done"}`+"\n")
	bars.Write([]byte("a log line\n"))
	wg.Wait()
	bars.Close()
	bars.Write([]byte("after close\n"))

	screen := ansi.ReplaceAllString(out.String(), "")
	for _, want := range []string{
		"first.iso", "second.bin", "/ 2.0 MiB", "ETA ", "iB/s",
		`{"id":"1","outcome":"done"}` + "\n", "a log line\n", "after close\n",
		"0 active, 2 done, 1 failed", "3.0 MiB / 3.0 MiB",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	if strings.Contains(screen, "gone.bin") {
		t.Errorf("a failure before any body got a bar:\n%s", screen)
	}
	// Events after Close are ignored, not drawn and not a panic.
	tr := bars.Start(record.Task{ID: "late", URL: "http://h/late"})
	tr.Body(0, 10)
	tr.Advance(10)
	tr.End(record.Result{Outcome: record.Done, Bytes: 10})
	bars.Close()
}

// TestBarsCap: no more bars than MaxBars, the rest only in the total.
func TestBarsCap(t *testing.T) {
	var out testenv.SyncBuffer
	bars := New(&out, Options{Width: 100, MaxBars: 2, MinAge: -1, Refresh: 10 * time.Millisecond})
	var trs []fetch.Transfer
	for i := range 5 {
		tr := bars.Start(record.Task{ID: string(rune('a' + i)), URL: "http://h/file" + string(rune('a'+i))})
		tr.Body(0, 100)
		tr.Advance(50)
		trs = append(trs, tr)
	}
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool {
		return strings.Contains(out.String(), "5 active")
	}, "the total line")
	for _, tr := range trs {
		tr.End(record.Result{Outcome: record.Done, Bytes: 100})
	}
	bars.Close()
	screen := ansi.ReplaceAllString(out.String(), "")
	for _, name := range []string{"filec", "filed", "filee"} {
		if strings.Contains(screen, name) {
			t.Errorf("%s drawn beyond the cap of 2:\n%s", name, screen)
		}
	}
	if !strings.Contains(screen, "filea") || !strings.Contains(screen, "0 active, 5 done, 0 failed") {
		t.Errorf("screen:\n%s", screen)
	}
}

func TestDisplayName(t *testing.T) {
	for _, tt := range []struct {
		task record.Task
		want string
	}{
		{record.Task{ID: "1", URL: "http://h/dir/a.iso?x=1"}, "a.iso"},
		{record.Task{ID: "1", URL: "http://h/a.iso", Name: "given.txt"}, "given.txt"},
		{record.Task{ID: "id9", URL: "http://h/"}, "id9"},
		{record.Task{ID: "1", URL: "http://h/%1B%5B2Jevil"}, "_[2Jevil"},
		{record.Task{ID: "1", URL: "http://h/" + strings.Repeat("x", 40)}, strings.Repeat("x", nameWidth-2) + "…"},
	} {
		if got := displayName(tt.task); got != tt.want {
			t.Errorf("displayName(%+v) = %q, want %q", tt.task, got, tt.want)
		}
	}
}

func TestClock(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 42 * time.Second: "42s", 185 * time.Second: "3m05s",
		2*time.Hour + 10*time.Minute: "2h10m", 200 * time.Hour: ">99h",
	} {
		if got := clock(d); got != want {
			t.Errorf("clock(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestTotalOfUnknownSizes: while a transfer of unknown size (no
// Content-Length) runs, the total is unknown too: the total line must not
// claim 100% of what was received so far.
func TestTotalOfUnknownSizes(t *testing.T) {
	var out testenv.SyncBuffer
	bars := New(&out, Options{Width: 120, MinAge: -1, Refresh: 10 * time.Millisecond})
	known := bars.Start(record.Task{ID: "k", URL: "http://h/known.bin"})
	known.Body(0, 4<<20)
	known.Advance(1 << 20)
	stream := bars.Start(record.Task{ID: "s", URL: "http://h/stream.bin"})
	stream.Body(0, -1)
	stream.Advance(3 << 20)
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool {
		return strings.Contains(ansi.ReplaceAllString(out.String(), ""), "2 active, 0 done")
	}, "the total line")
	known.End(record.Result{Outcome: record.Done, Bytes: 4 << 20})
	stream.End(record.Result{Outcome: record.Done, Bytes: 3 << 20})
	bars.Close()
	screen := ansi.ReplaceAllString(out.String(), "")
	for _, line := range strings.Split(strings.ReplaceAll(screen, "\r", "\n"), "\n") {
		if !strings.Contains(line, "2 active, 0 done") {
			continue
		}
		if strings.Contains(line, "%") || !strings.Contains(line, "4.0 MiB / ?") {
			t.Errorf("total line with a size unknown: %q, want no percentage and 4.0 MiB / ?", line)
		}
	}
	if !strings.Contains(screen, "0 active, 2 done, 0 failed") {
		t.Errorf("screen:\n%s", screen)
	}
}

// TestTotalOfKnownSizes: with every size known, the total line has its
// percentage and its total.
func TestTotalOfKnownSizes(t *testing.T) {
	var out testenv.SyncBuffer
	bars := New(&out, Options{Width: 120, MinAge: -1, Refresh: 10 * time.Millisecond})
	tr := bars.Start(record.Task{ID: "k", URL: "http://h/known.bin"})
	tr.Body(0, 4<<20)
	tr.Advance(1 << 20)
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool {
		s := ansi.ReplaceAllString(out.String(), "")
		return strings.Contains(s, "1 active, 0 done") && strings.Contains(s, "25%") && strings.Contains(s, "1.0 MiB / 4.0 MiB")
	}, "the total line at 25%%")
	tr.End(record.Result{Outcome: record.Done, Bytes: 4 << 20})
	bars.Close()
}
