package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/origin"
	"github.com/dlkit/dl/internal/testenv"
)

// The static origin must serve exactly dl-origin's bytes for each name, or
// the static workloads would check downloads against the wrong sums.
func TestStaticOriginServesTheOriginsContent(t *testing.T) {
	if _, err := nginxBinary(); err != nil {
		testenv.Missing(t, "nginx is not installed (scripts/test and scripts/bench install nginx-light)")
	}
	s, err := startStatic(t.TempDir(), t.TempDir(), freePort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop) // a failure must not leave nginx running
	rows, err := s.publish(context.Background(), files("", "t", 3, 3<<20+5))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		checkServed(t, r)
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

// checkServed fetches r from its URL and checks dl-origin's bytes came.
func checkServed(t *testing.T, r row) {
	t.Helper()
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Get(r.url)
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

// The port nginx is given is free when picked, and may be taken before nginx
// binds it: by a program that listens without answering, or by another web
// server. The static origin must then serve on another port, not report
// ready on the taken one (whose server answered the workloads' requests in
// nginx's place) nor give up the static workloads.
func TestStaticOriginTakesAnotherPortWhenItsIsTaken(t *testing.T) {
	if _, err := nginxBinary(); err != nil {
		testenv.Missing(t, "nginx is not installed (scripts/test and scripts/bench install nginx-light)")
	}
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	for _, tc := range []struct {
		name  string
		taken net.Listener
	}{{"by a silent listener", silent}, {"by another web server", web.Listener}} {
		t.Run(tc.name, func(t *testing.T) {
			takenPort := tc.taken.Addr().(*net.TCPAddr).Port
			picks := 0
			ports := func() (int, error) {
				if picks++; picks == 1 {
					return takenPort, nil
				}
				return freePort()
			}
			s, err := startStatic(t.TempDir(), t.TempDir(), ports)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.stop)
			if picks != 2 || s.base == fmt.Sprintf("http://127.0.0.1:%d", takenPort) {
				t.Fatalf("serving at %s after %d ports picked; want the second, not the taken %d", s.base, picks, takenPort)
			}
			rows, err := s.publish(context.Background(), files("", "p", 1, 5000))
			if err != nil {
				t.Fatal(err)
			}
			checkServed(t, rows[0])
		})
	}
}

// Debian installs nginx in /usr/sbin, which is not on the PATH of a user
// other than root: the static workloads must find it there all the same, and
// not be skipped as if nginx were missing (nor this package's tests).
func TestNginxFoundOutsideAUsersPath(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
		testenv.Missing(t, "no /usr/sbin/nginx (scripts/test and scripts/bench install nginx-light)")
	}
	t.Setenv("PATH", "/usr/local/bin:/usr/bin:/bin") // Debian's for a user
	if got, err := nginxBinary(); err != nil || got != "/usr/sbin/nginx" {
		t.Fatalf("nginxBinary() = %q, %v; want /usr/sbin/nginx", got, err)
	}
}
