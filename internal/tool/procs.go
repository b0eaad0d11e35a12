package tool

import (
	"os"
	"runtime"
)

// OneProcessor runs the Go scheduler on a single processor (GOMAXPROCS=1),
// unless the GOMAXPROCS environment variable sets the number.
//
// It is for the tools that move lines between a pipe and the servers
// (dl-select, dl-enqueue, dl-mark): they wait on MySQL, Redis and their
// input in turn and do little between, so a second processor buys no
// speed, while every wake-up of a goroutine woke an idle processor's thread
// to look for work too, and put it back to sleep: thread switches and
// spinning that cost them a quarter or more of their CPU, taken from
// dl-fetch and the servers beside them. Measured on 2 cores (BENCHMARKS.md, "The
// last change"): dl-mark 0.99–1.23 → 0.70–0.95 s of CPU for 20,000 results,
// dl-enqueue 1.18–1.29 → 0.89–0.93 s for 100,000 rows.
//
// dl-fetch does not call it: it makes blocking file system calls, and with
// one processor each would hold up every transfer until the runtime's
// monitor took the processor back.
func OneProcessor() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
