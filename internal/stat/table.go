package stat

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// writeTable shows a snapshot for a person: the counts first, then what is
// moving, then who holds what and what goes wrong.
func writeTable(w io.Writer, s Snapshot) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }

	p("table %s\t%s", s.Table, s.Time.Format(time.RFC3339))
	p("")
	p("ROWS")
	p("pending\t%d\t(%d waiting to retry)", s.Rows.Pending, s.Rows.RetryWaiting)
	p("processing\t%d\t(%d lease expired)", s.Rows.Processing, s.Rows.Expired)
	p("done\t%d", s.Rows.Done)
	p("failed\t%d", s.Rows.Failed)
	if s.Rows.Other != 0 {
		p("other\t%d\t(status not 0, 1, 2 or -1)", s.Rows.Other)
	}
	p("total\t%d", s.Rows.Total)
	p("")
	switch {
	case s.Queue != nil:
		flag := "clear"
		if s.Queue.ExitFlag {
			flag = "SET: workers are stopping"
		}
		p("queue\t%d\ttasks in %s; exit flag %s", s.Queue.Length, s.Queue.Name, flag)
	default:
		p("queue\t?\t%s", s.QueueError)
	}
	p("in flight\t%d\tdownloading (%d claimed, waiting in the queue)", s.InFlight.Downloading, s.InFlight.Queued)
	lm := s.LastMinute
	p("last %s\t%d\tdone, %d failed; %s (%.1f files/s, %s/s)", window(lm.Seconds), lm.Done, lm.Failed,
		size(float64(lm.Bytes)), lm.FilesPerSecond, size(lm.BytesPerSecond))
	if s.OldestPendingSeconds != nil {
		p("oldest pending\t%s", age(*s.OldestPendingSeconds))
	} else {
		p("oldest pending\t-")
	}
	if len(s.Workers) > 0 {
		p("")
		p("WORKER\tIN FLIGHT")
		for _, wk := range s.Workers {
			p("%s\t%d", wk.Worker, wk.InFlight)
		}
	}
	if len(s.Errors) > 0 {
		p("")
		p("ERRORS\tROWS")
		for _, e := range s.Errors {
			p("%s\t%d", oneLine(e.Message, 100), e.Rows)
		}
	}
	return tw.Flush()
}

func window(secs float64) string {
	if secs == 60 {
		return "minute"
	}
	return time.Duration(secs * float64(time.Second)).String()
}

// age rounds to what a person reads: seconds under an hour, minutes above.
func age(secs float64) string {
	d := time.Duration(secs) * time.Second
	if d >= time.Hour {
		d = d.Round(time.Minute)
	}
	return d.String()
}

func size(n float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	i := 0
	for n >= 1000 && i < len(units)-1 {
		n /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", n, units[i])
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}

// oneLine keeps a message to one table cell.
func oneLine(s string, width int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > width {
		return string(r[:width-1]) + "…"
	}
	return s
}
