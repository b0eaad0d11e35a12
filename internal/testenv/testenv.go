// Package testenv is the one place for the helpers that tests across the
// repository share: a database and Redis keys of their own on the local
// servers, a private MariaDB or Redis that a test may take down, the test
// origin, the built dl binaries, and running those binaries joined by real
// pipes. Only _test.go files import it.
//
// Everything runs against real servers, never mocks. Every helper cleans up
// after itself through t.Cleanup, names what it creates uniquely, and bounds
// every wait, so tests run in parallel, rerun on a used machine, and fail
// with the evidence (server logs, each process's stderr) instead of hanging.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func randomHex(nbytes int) string {
	b := make([]byte, nbytes)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the caller binds it; the server helpers retry for that.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// moduleRoot walks up from the working directory (a package directory under
// go test) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("get working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("look for go.mod: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// tail keeps the end of long output, where the error usually is.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("[... %d bytes cut ...]\n%s", len(s)-n, s[len(s)-n:])
}

func readTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return tail(string(b), n)
}

// Missing reports that something a test needs from outside the repository
// (a program, the original script beside the checkout) is absent. On a
// developer's machine the test skips with the reason; under CI, where
// .ci/run sets DL_TEST_ALL=1 after installing what the tests need, it fails,
// so that no test can stop running there without anyone noticing.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("DL_TEST_ALL") == "1" {
		t.Fatalf("DL_TEST_ALL=1 and a test cannot run: %s", reason)
	}
	t.Skip(reason)
}
