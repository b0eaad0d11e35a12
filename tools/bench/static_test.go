package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"testing"

	"github.com/dlkit/dl/internal/origin"
)

// The static origin must serve exactly dl-origin's bytes for each name, or
// the static workloads would check downloads against the wrong sums.
func TestStaticOriginServesTheOriginsContent(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		// Not testenv.Missing: scripts/test does not install nginx, since
		// Debian's package starts a server on every address's port 80.
		t.Skip("nginx is not installed (scripts/bench installs nginx-light)")
	}
	s, err := startStatic(t.TempDir(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.publish(context.Background(), files("", "t", 3, 3<<20+5))
	if err != nil {
		s.stop()
		t.Fatal(err)
	}
	for _, r := range rows {
		resp, err := http.Get(r.url)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d, %v", r.url, resp.StatusCode, err)
		}
		if got, want := hex.EncodeToString(h.Sum(nil)), origin.Sum(r.name, r.size); got != want {
			t.Errorf("%s: sha256 %s, dl-origin's %s", r.url, got, want)
		}
	}
	root := s.root
	s.stop()
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("document root %s left after stop (%v)", root, err)
	}
	if _, err := http.Get(rows[0].url); err == nil {
		t.Errorf("nginx still answers after stop")
	}
}
