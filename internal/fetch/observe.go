package fetch

import (
	"time"

	"github.com/dlkit/dl/internal/record"
)

// Observer watches transfers from outside: the progress bars of a terminal
// today, metrics tomorrow. It learns what a log would not say often enough
// to be useful (every byte) without the Fetcher knowing what it draws or
// counts.
//
// Start is called once per Fetch that starts (its first attempt has its
// slots, or it reports a result without one), from the goroutine running
// it, and may be called from many goroutines at once. A task given back
// unstarted by a stop while it waited for a slot is never seen. The Transfer it returns belongs to
// that one Fetch: its methods are called from one goroutine at a time, and
// End last, exactly once. Advance sits in the copy loop, so a Transfer must
// be cheap (an atomic add) and must never block.
type Observer interface {
	Start(t record.Task) Transfer
}

// Transfer is one task's events.
type Transfer interface {
	// Body: a response body starts arriving. from is the byte the body
	// starts at (the size of the part file being resumed, else 0) and total
	// the whole file's size, -1 when the server did not say. It is called
	// again when a retry or a refused resume starts a new body.
	Body(from, total int64)
	// Advance: n more body bytes were written to the file.
	Advance(n int)
	// Retry: an attempt failed with err (one line) and Fetch tries again
	// after wait.
	Retry(err string, wait time.Duration)
	// End: the task's result, the very one Fetch returns.
	End(r record.Result)
}

// nopTransfer stands in when no Observer is set, so the copy loop needs no
// nil check.
type nopTransfer struct{}

func (nopTransfer) Body(int64, int64)           {}
func (nopTransfer) Advance(int)                 {}
func (nopTransfer) Retry(string, time.Duration) {}
func (nopTransfer) End(record.Result)           {}

func (f *Fetcher) observe(t record.Task) Transfer {
	if f.o.Observer == nil {
		return nopTransfer{}
	}
	if tr := f.o.Observer.Start(t); tr != nil {
		return tr
	}
	return nopTransfer{}
}

// observed starts a task's Transfer only when the task starts: when an
// attempt has its slots, or when a result is reported without one (a bad
// URL, a max time spent waiting). A task a stop gives back while it waited
// for a --per-host or transfer slot was never a transfer: dl-fetch prints no
// result for it, so an observer must neither count it in flight nor give it
// an outcome.
type observed struct {
	f  *Fetcher
	t  record.Task
	tr Transfer // nil until begin
}

func (o *observed) begin() Transfer {
	if o.tr == nil {
		o.tr = o.f.observe(o.t)
	}
	return o.tr
}

// Observers combines observers (the progress bars and the metrics, say)
// into one that tells each of them everything. Nil ones are left out; with
// none left it returns nil.
func Observers(obs ...Observer) Observer {
	var m multiObserver
	for _, o := range obs {
		if o != nil {
			m = append(m, o)
		}
	}
	switch len(m) {
	case 0:
		return nil
	case 1:
		return m[0]
	}
	return m
}

type multiObserver []Observer

func (m multiObserver) Start(t record.Task) Transfer {
	trs := make(multiTransfer, 0, len(m))
	for _, o := range m {
		if tr := o.Start(t); tr != nil {
			trs = append(trs, tr)
		}
	}
	return trs
}

type multiTransfer []Transfer

func (m multiTransfer) Body(from, total int64) {
	for _, t := range m {
		t.Body(from, total)
	}
}

func (m multiTransfer) Advance(n int) {
	for _, t := range m {
		t.Advance(n)
	}
}

func (m multiTransfer) Retry(err string, wait time.Duration) {
	for _, t := range m {
		t.Retry(err, wait)
	}
}

func (m multiTransfer) End(r record.Result) {
	for _, t := range m {
		t.End(r)
	}
}
