package fetch

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/testenv"
)

// newFetcher makes a Fetcher writing into a fresh directory, with short
// backoffs so retry tests stay fast.
func newFetcher(t *testing.T, o Options) *Fetcher {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	f, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.firstBackoff = 10 * time.Millisecond
	t.Cleanup(f.Close)
	return f
}

// content returns n reproducible pseudo-random bytes.
func content(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkDone asserts a done result whose file holds exactly want.
func checkDone(t *testing.T, res record.Result, want []byte) {
	t.Helper()
	if res.Outcome != record.Done {
		t.Fatalf("outcome %q, error %q; want done", res.Outcome, res.Error)
	}
	if res.Error != "" || res.Retryable {
		t.Errorf("done result carries error %q, retryable %v", res.Error, res.Retryable)
	}
	got, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatalf("read result file: %v", err)
	}
	if len(got) != len(want) || sha(got) != sha(want) {
		t.Fatalf("file has %d bytes sha256 %s; want %d bytes %s", len(got), sha(got), len(want), sha(want))
	}
	if res.Bytes != int64(len(want)) || res.SHA256 != sha(want) {
		t.Errorf("result says %d bytes sha256 %s; want %d %s", res.Bytes, res.SHA256, len(want), sha(want))
	}
	if res.Duration <= 0 {
		t.Errorf("duration %v", res.Duration)
	}
	for _, suffix := range []string{".part", ".part.meta"} {
		if _, err := os.Stat(res.Path + suffix); err == nil {
			t.Errorf("%s left behind", suffix)
		}
	}
}

// files lists the regular files under dir, relative, sorted.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	sort.Strings(out)
	return out
}

// rawServer is an origin that speaks HTTP by hand, for the misbehaviour
// net/http's server refuses to produce. serve gets each connection after its
// request head was read, and done, closed when the test ends.
func rawServer(t *testing.T, serve func(c net.Conn, req *http.Request, done <-chan struct{})) string {
	t.Helper()
	return testenv.TCPServer(t, func(c net.Conn, done <-chan struct{}) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		serve(c, req, done)
	})
}

// reset closes c with a TCP RST instead of a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// counter counts requests to a handler.
type counter struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (c *counter) wrap(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.reqs = append(c.reqs, r.Clone(r.Context()))
		c.mu.Unlock()
		h(w, r)
	}
}

func (c *counter) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.reqs)
}

func (c *counter) last() *http.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reqs) == 0 {
		return nil
	}
	return c.reqs[len(c.reqs)-1]
}

func hasPrefixAny(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
