// Package progress draws dl-fetch's live progress on a terminal: one bar per
// active transfer and a total line with the rate and an ETA, redrawn in
// place, with log lines and result lines printed above them (Write). Bars
// implements fetch.Observer; dl-fetch wires it only when stderr is a
// terminal, so a log file never receives a bar.
//
// The transfers only add to counters (an atomic add per buffer, in the copy
// loop); one goroutine turns those into bars a few times a second, so a
// thousand small files a second cost no drawing each. A transfer gets a bar
// once it has run for MinAge and while there is room on the screen; the
// others still count in the total line.
package progress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/dlkit/dl/internal/fetch"
	"github.com/dlkit/dl/internal/layout"
	"github.com/dlkit/dl/internal/record"
)

// Options tune Bars. Zero values take the defaults named.
type Options struct {
	// Width of every line; default: the terminal's, else 100.
	Width int
	// MaxBars caps the transfer bars on screen; default: what fits the
	// terminal's height with room for the total and a few log lines.
	MaxBars int
	// MinAge is how long a transfer runs before it gets a bar; default
	// 300ms. Negative: at once.
	MinAge time.Duration
	// Refresh is how often the bars are updated; default 200ms.
	Refresh time.Duration
}

const (
	defaultMinAge  = 300 * time.Millisecond
	defaultRefresh = 200 * time.Millisecond
	nameWidth      = 28
	// rateWindow is what the rates shown average over: long enough to
	// smooth TCP's bursts, short enough to follow a real change.
	rateWindow = 3 * time.Second
)

// Bars is the progress display. Create it with New and Close it when the
// transfers are over.
type Bars struct {
	o   Options
	out io.Writer
	p   *mpb.Progress

	mu     sync.Mutex
	active []*transfer // in start order
	ended  []*transfer // since the last refresh, to take their bars down

	done, failed atomic.Int64
	doneBytes    atomic.Int64 // size of the files done
	received     atomic.Int64 // body bytes received by all transfers

	// Owned by the refresh goroutine.
	total *mpb.Bar
	view  atomic.Pointer[row]
	rate  meter

	began   time.Time
	stop    chan struct{}
	stopped sync.WaitGroup
	closed  atomic.Bool
}

// New starts drawing on w, which should be a terminal.
func New(w io.Writer, o Options) *Bars {
	width, height := 100, 0
	if f, ok := w.(*os.File); ok {
		if tw, th, err := term.GetSize(int(f.Fd())); err == nil {
			width, height = tw, th
		}
	}
	if o.Width <= 0 {
		o.Width = width
	}
	if o.MaxBars <= 0 {
		// Room for the total line and a few log lines above the bars.
		o.MaxBars = 16
		if height > 0 {
			o.MaxBars = max(height-6, 1)
		}
	}
	if o.MinAge == 0 {
		o.MinAge = defaultMinAge
	}
	if o.Refresh <= 0 {
		o.Refresh = defaultRefresh
	}
	b := &Bars{o: o, out: w, stop: make(chan struct{}), began: time.Now()}
	b.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(o.Width), mpb.WithRefreshRate(o.Refresh),
		mpb.WithAutoRefresh(), mpb.WithQueueLen(o.MaxBars+1))
	b.view.Store(&row{name: "0 active, 0 done, 0 failed"})
	b.total = b.p.New(0, mpb.BarStyle().Lbound("[").Rbound("]"),
		mpb.BarPriority(math.MaxInt32), // always the bottom line
		mpb.PrependDecorators(column(&b.view, func(r *row) string { return r.name }, decor.DSyncWidthR)),
		mpb.AppendDecorators(columns(&b.view)...))
	b.stopped.Add(1)
	go func() {
		defer b.stopped.Done()
		b.run()
	}()
	return b
}

// Start implements fetch.Observer.
func (b *Bars) Start(t record.Task) fetch.Transfer {
	tr := &transfer{b: b, name: displayName(t), start: time.Now()}
	tr.total.Store(-1)
	b.mu.Lock()
	b.active = append(b.active, tr)
	b.mu.Unlock()
	return tr
}

// Write prints p above the bars (after Close, straight to the output). It
// is meant for whole lines, as a log handler writes them; see Lines for a
// stream that may split them.
func (b *Bars) Write(p []byte) (int, error) {
	if !b.closed.Load() {
		n, err := b.p.Write(p)
		var done mpb.ErrDone[*mpb.Progress]
		if !errors.As(err, &done) {
			return n, err
		}
	}
	return b.out.Write(p)
}

// Lines returns a writer that passes only whole lines to Write, holding a
// partial line back until its end arrives (or Close), so the bars are
// never drawn into the middle of a line.
func (b *Bars) Lines() io.WriteCloser {
	return &lineWriter{w: b}
}

// Close stops drawing: the transfer bars go, and the total line stays with
// its last figures. Events that arrive later are ignored.
func (b *Bars) Close() {
	if b.closed.Load() {
		return
	}
	close(b.stop)
	b.stopped.Wait()
	b.mu.Lock()
	rest := append(b.ended, b.active...)
	b.active, b.ended = nil, nil
	b.mu.Unlock()
	for _, tr := range rest {
		if tr.bar != nil {
			tr.bar.Abort(true)
		}
	}
	b.total.SetTotal(-1, true) // completes it, so Wait can return
	b.p.Wait()
	b.closed.Store(true)
}

func (b *Bars) run() {
	t := time.NewTicker(b.o.Refresh)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			b.refresh(time.Now())
			// The line that stays: the average of the whole run, not of
			// its last seconds.
			if secs := time.Since(b.began).Seconds(); secs > 0 {
				b.rate.v = float64(b.received.Load()) / secs
				v := *b.view.Load()
				v.rate, v.eta = speed(b.rate.v), ""
				b.view.Store(&v)
			}
			return
		case now := <-t.C:
			b.refresh(now)
		}
	}
}

// refresh turns the counters into bars: it takes down the bars of ended
// transfers, raises bars for transfers old enough while there is room, and
// updates every bar and the total line.
func (b *Bars) refresh(now time.Time) {
	b.mu.Lock()
	active := slices.Clone(b.active)
	ended := b.ended
	b.ended = nil
	b.mu.Unlock()
	for _, tr := range ended {
		if tr.bar != nil {
			tr.bar.Abort(true)
			tr.bar = nil
		}
	}
	shown := 0
	for _, tr := range active {
		if tr.bar != nil {
			shown++
		}
	}
	// left is what the transfers of known size still need: the ETA says
	// when they will be done at the current rate, leaving out those that
	// may never end.
	// A transfer of unknown size (no Content-Length) makes the total
	// unknown: the line then shows no percentage, rather than count what
	// such a transfer received so far as its whole size.
	cur, tot, left, unknown := b.doneBytes.Load(), b.doneBytes.Load(), int64(0), false
	for _, tr := range active {
		got, total := tr.got.Load(), tr.total.Load()
		tr.rate.add(now, tr.recv.Load())
		cur += got
		if total >= 0 {
			tot += max(total, got)
			left += max(total-got, 0)
		} else {
			tot += got
			unknown = unknown || tr.body.Load()
		}
		if tr.bar == nil && shown < b.o.MaxBars && tr.body.Load() && now.Sub(tr.start) >= b.o.MinAge {
			tr.bar = b.newBar(tr)
			shown++
		}
		if tr.bar != nil {
			tr.view.Store(tr.describe())
			tr.bar.SetTotal(max(total, 0), false)
			tr.bar.SetCurrent(got)
		}
	}
	b.rate.add(now, b.received.Load())

	v := &row{name: fmt.Sprintf("%d active, %d done, %d failed", len(active), b.done.Load(), b.failed.Load()),
		bytes: size(cur) + " / " + size(tot), rate: speed(b.rate.v)}
	switch {
	case unknown:
		v.bytes = size(cur) + " / ?"
	case tot > 0:
		v.pct = fmt.Sprintf("%.0f%%", 100*float64(cur)/float64(tot))
	}
	if left > 0 && b.rate.v > 0 {
		v.eta = "ETA " + clock(time.Duration(float64(left)/b.rate.v*float64(time.Second)))
	}
	b.view.Store(v)
	b.total.SetTotal(tot, false)
	b.total.SetCurrent(cur)
}

func (b *Bars) newBar(tr *transfer) *mpb.Bar {
	tr.view.Store(tr.describe())
	var style mpb.BarFillerBuilder = mpb.BarStyle().Lbound("[").Rbound("]")
	if tr.total.Load() < 0 {
		// No size, no fraction to fill: a spinner says it is alive.
		style = mpb.SpinnerStyle("[-]", "[\\]", "[|]", "[/]").PositionLeft()
	}
	return b.p.New(0, style,
		mpb.PrependDecorators(decor.Name(tr.name, decor.WC{W: nameWidth, C: decor.DSyncWidthR})),
		mpb.AppendDecorators(columns(&tr.view)...))
}

// row is the text around one bar, in columns that line up across bars.
type row struct{ name, pct, bytes, rate, eta string }

// columns are the decorators after a bar; every bar, the total's too, has
// the same ones so that mpb can align them.
func columns(v *atomic.Pointer[row]) []decor.Decorator {
	return []decor.Decorator{
		column(v, func(r *row) string { return r.pct }, decor.DSyncWidth),
		column(v, func(r *row) string { return "  " + r.bytes }, decor.DSyncWidth),
		column(v, func(r *row) string { return "  " + r.rate }, decor.DSyncWidth),
		column(v, func(r *row) string { return "  " + r.eta }, decor.DSyncWidthR),
	}
}

// column reads one field of the row that the refresh goroutine last
// stored; mpb calls it from its own goroutines, so nothing here may lock.
func column(v *atomic.Pointer[row], field func(*row) string, c int) decor.Decorator {
	return decor.Any(func(decor.Statistics) string { return field(v.Load()) }, decor.WC{C: c})
}

// transfer is one task's bar. The fetch goroutine writes the atomics; the
// refresh goroutine owns the rest.
type transfer struct {
	b     *Bars
	name  string
	start time.Time
	got   atomic.Int64 // bytes of the file so far, resumed ones included
	recv  atomic.Int64 // bytes received, for the rate
	total atomic.Int64 // -1: unknown
	body  atomic.Bool  // a body has started
	ended atomic.Bool
	retry atomic.Int64 // when a retry is due (unix ns), while waiting for it

	bar  *mpb.Bar
	view atomic.Pointer[row]
	rate meter
}

func (t *transfer) Body(from, total int64) {
	t.got.Store(from)
	t.total.Store(total)
	t.body.Store(true)
	t.retry.Store(0)
}

func (t *transfer) Advance(n int) {
	t.got.Add(int64(n))
	t.recv.Add(int64(n))
	t.b.received.Add(int64(n))
}

func (t *transfer) Retry(_ string, wait time.Duration) {
	t.retry.Store(time.Now().Add(wait).UnixNano())
}

func (t *transfer) End(r record.Result) {
	if t.ended.Swap(true) {
		return
	}
	if r.Outcome == record.Done {
		t.b.done.Add(1)
		t.b.doneBytes.Add(r.Bytes)
	} else {
		t.b.failed.Add(1)
	}
	b := t.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := slices.Index(b.active, t); i >= 0 {
		b.active = slices.Delete(b.active, i, i+1)
		b.ended = append(b.ended, t)
	}
}

// describe is the text around a transfer's bar.
func (t *transfer) describe() *row {
	got, total := t.got.Load(), t.total.Load()
	r := &row{bytes: size(got), rate: speed(t.rate.v)}
	if at := t.retry.Load(); at != 0 && time.Until(time.Unix(0, at)) > 0 {
		r.rate, r.eta = "failed", "retry in "+clock(time.Until(time.Unix(0, at)))
		return r
	}
	if total >= 0 {
		pct := 100.0
		if total > 0 {
			pct = 100 * float64(got) / float64(total)
		}
		r.pct, r.bytes = fmt.Sprintf("%.0f%%", pct), size(got)+" / "+size(total)
	}
	if left := total - got; total >= 0 && left > 0 && t.rate.v > 0 {
		r.eta = "ETA " + clock(time.Duration(float64(left)/t.rate.v*float64(time.Second)))
	}
	return r
}

// displayName is what a person recognises a transfer by, made safe for a
// terminal: a name from a URL could carry escape sequences.
func displayName(t record.Task) string {
	name := t.Name
	if name == "" {
		name = layout.URLName(t.URL)
	}
	if name == "" {
		name = record.RedactURL(t.ID) // a bare URL's id is the URL
	}
	name = layout.Sanitize(name)
	if r := []rune(name); len(r) > nameWidth-1 {
		name = string(r[:nameWidth-2]) + "…"
	}
	return name
}

// meter is a rate in bytes per second over the last rateWindow, or since
// the start when that is shorter: exact from the first refresh on, where a
// moving average would start from nothing and crawl up.
type meter struct {
	v       float64
	samples []sample // oldest first, spanning at most rateWindow
}

type sample struct {
	at time.Time
	n  int64 // cumulative
}

func (m *meter) add(at time.Time, n int64) {
	if len(m.samples) == 0 {
		m.samples = append(m.samples, sample{at, n})
		return
	}
	m.samples = append(m.samples, sample{at, n})
	cut := 0
	for cut < len(m.samples)-2 && at.Sub(m.samples[cut+1].at) >= rateWindow {
		cut++
	}
	m.samples = m.samples[cut:]
	first := m.samples[0]
	if dt := at.Sub(first.at).Seconds(); dt > 0 {
		m.v = float64(n-first.n) / dt
	}
}

func size(n int64) string {
	return fmt.Sprintf("% .1f", decor.SizeB1024(n))
}

func speed(bps float64) string {
	return fmt.Sprintf("% .1f/s", decor.SizeB1024(int64(bps)))
}

// clock shows a duration the way a person reads an ETA: 42s, 3m05s, 2h10m.
func clock(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 100*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return ">99h"
}

// lineWriter holds back a partial line.
type lineWriter struct {
	w   io.Writer
	mu  sync.Mutex
	buf []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	i := bytes.LastIndexByte(l.buf, '\n')
	if i < 0 {
		return len(p), nil
	}
	if _, err := l.w.Write(l.buf[:i+1]); err != nil {
		return 0, err
	}
	l.buf = append(l.buf[:0], l.buf[i+1:]...)
	return len(p), nil
}

// Close writes what is left of a last, unterminated line.
func (l *lineWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.w.Write(l.buf)
	l.buf = nil
	return err
}
