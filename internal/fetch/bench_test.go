package fetch

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/record"
)

// BenchmarkFetch measures one transfer of a large file and many concurrent
// transfers of small ones over loopback, origin in process. Compare the
// large case with curl against a separate server for the real ratio: here
// the origin competes for the same cores.
func BenchmarkFetch(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 20} {
		body := content(size, 12)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
		}))
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			f, err := New(Options{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(int64(size))
			b.SetParallelism(16) // with GOMAXPROCS, many transfers at once
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := strconv.FormatInt(n.Add(1), 10)
					res := f.Fetch(context.Background(), record.Task{ID: id, URL: srv.URL + "/f"})
					if res.Outcome != record.Done {
						b.Error(res.Error)
					}
					os.Remove(res.Path) // keep the disk from filling
				}
			})
		})
		srv.Close()
	}
}
