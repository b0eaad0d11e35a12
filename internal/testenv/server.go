package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readyTimeout bounds a private server's start; MariaDB's crash recovery
// after a kill is the slow case.
const readyTimeout = 60 * time.Second

// server is a private MariaDB or Redis that a test may kill and start again
// on the same port, to play an outage.
type server struct {
	name  string
	argv  []string
	out   string   // the process's stdout and stderr
	logs  []string // shown when it fails to come up
	ready func(ctx context.Context) error

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

func (s *server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	out, err := os.OpenFile(s.out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("open %s log: %w", s.name, err)
	}
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	// If the test binary dies (go test's timeout panics it), the server goes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	out.Close()
	if err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit is reported through exited and the logs
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited

	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	for {
		err := s.ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("%s exited before accepting connections (%v); its log:\n%s", s.name, cmd.ProcessState, s.logTail())
		case <-ctx.Done():
			s.killLocked()
			return fmt.Errorf("%s not ready after %v (last error: %v); its log:\n%s", s.name, readyTimeout, err, s.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop kills the server (SIGKILL: a crash, not a polite shutdown) and waits
// until it is gone, so its port refuses connections when stop returns.
func (s *server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *server) killLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill() // fails only if it already exited, which is the goal
	<-s.exited
	s.cmd = nil
}

func (s *server) logTail() string {
	var b strings.Builder
	for _, l := range append([]string{s.out}, s.logs...) {
		fmt.Fprintf(&b, "--- %s\n%s\n", l, readTail(l, 8<<10))
	}
	return b.String()
}

// startOnFreePort starts the server newServer builds for a port, retrying
// with another port when one taken between freePort and bind.
func startOnFreePort(t testing.TB, newServer func(port int) *server) *server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		s := newServer(freePort(t))
		err := s.start()
		if err == nil {
			t.Cleanup(s.stop)
			return s
		}
		if attempt >= 3 || !strings.Contains(err.Error(), "already in use") {
			t.Fatalf("testenv: %v", err)
		}
	}
}

// controls turns a server into the stop and start functions the helpers
// return. Call them from the test's goroutine: start fails the test.
func controls(t testing.TB, s *server) (stop, start func()) {
	return s.stop, func() {
		t.Helper()
		if err := s.start(); err != nil {
			t.Fatalf("testenv: restart: %v", err)
		}
	}
}

// lookPath finds a server program, also in the sbin directories that are
// not on every user's PATH. A missing program fails the test: these
// tests must run, so the machine must have them.
func lookPath(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/libexec", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if info, err := os.Stat(p); err == nil && info.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("testenv: %s not found on PATH or in the sbin directories; install it", name)
	return ""
}

var errNotReady = errors.New("not ready")
