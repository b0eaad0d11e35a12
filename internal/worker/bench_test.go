package worker

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/dlkit/dl/internal/fetch"
	"github.com/dlkit/dl/internal/testenv"
)

// BenchmarkRunLines is dl-fetch - on 4 KiB files: one op is one file, from
// its task line to its result line, with the transfers at the benchmark's
// concurrency. The server is a canned HTTP/1.1 responder that allocates
// nothing per request, so allocs/op is the downloader's own (net/http's
// client included); the origin of internal/origin would add its own to the
// count, being in the same process.
//
//	go test -run '^$' -bench RunLines -benchtime 20000x -benchmem -cpuprofile fetch.prof ./internal/worker
func BenchmarkRunLines(b *testing.B) {
	// The engine's closing statistics line would break up the benchmark's
	// output lines.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	b.Cleanup(func() { slog.SetDefault(prev) })
	for _, fsync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%t", fsync), func(b *testing.B) {
			base := cannedServer(b, 4096)
			f, err := fetch.New(fetch.Options{Dir: b.TempDir(), Fsync: fsync})
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			var in bytes.Buffer
			for i := range b.N {
				fmt.Fprintf(&in, "%s/files/f%08d\n", base, i)
			}
			var out countingWriter
			b.ReportAllocs()
			b.SetBytes(4096)
			b.ResetTimer()
			if err := RunLines(context.Background(), f, &in, Options{Concurrency: 64}, &out); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if out.lines != b.N {
				b.Fatalf("%d result lines for %d files", out.lines, b.N)
			}
		})
	}
}

type countingWriter struct{ lines int }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

// cannedServer answers every request on a loopback port with the same
// size-byte body, keeping connections alive, until the benchmark ends.
func cannedServer(b *testing.B, size int) string {
	b.Helper()
	resp := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\nETag: \"canned\"\r\n\r\n%s",
		size, strings.Repeat("x", size)))
	return testenv.TCPServer(b, func(c net.Conn, _ <-chan struct{}) {
		r := bufio.NewReaderSize(c, 8192)
		for {
			// Headers end at an empty line; requests have no body.
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 {
					break
				}
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	})
}
