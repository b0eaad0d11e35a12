package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// binaries is built at most once per test process; a failed build is kept
// too, so every test reports it instead of rebuilding.
var binaries struct {
	mu  sync.Mutex
	dir string
	err error
}

// Binaries builds every command under cmd/ of this module and returns the
// directory holding them (dl-fetch, dl-mark, ...). The directory is keyed by
// a hash of the sources, so test processes and reruns share an up-to-date
// build instead of relinking each time; stale ones are pruned after a day.
func Binaries(t testing.TB) string {
	t.Helper()
	binaries.mu.Lock()
	defer binaries.mu.Unlock()
	if binaries.dir == "" && binaries.err == nil {
		root, err := moduleRoot()
		if err == nil {
			binaries.dir, err = build(root, "./cmd/...", filepath.Join(os.TempDir(), "dltest-bin"))
		}
		binaries.err = err
	}
	if binaries.err != nil {
		t.Fatalf("testenv: build the dl binaries: %v", binaries.err)
	}
	return binaries.dir
}

const builtMarker = ".built"

// build runs "go build -o DIR/ pattern" in root, unless cacheDir already
// holds a build of the same sources.
func build(root, pattern, cacheDir string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	key, err := sourceKey(ctx, root, pattern)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cacheDir, key)
	if _, err := os.Stat(filepath.Join(dir, builtMarker)); err == nil {
		now := time.Now()
		_ = os.Chtimes(dir, now, now) // keeps it from being pruned while in use
		return dir, nil
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return "", fmt.Errorf("create build cache: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".building-")
	if err != nil {
		return "", fmt.Errorf("create build dir: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed

	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp+string(filepath.Separator), pattern)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s in %s: %w\n%s", pattern, root, err, tail(string(out), 16<<10))
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return "", fmt.Errorf("list built binaries: %w", err)
	}
	if len(entries) == 0 {
		return "", fmt.Errorf("go build %s in %s produced no commands", pattern, root)
	}
	if err := os.WriteFile(filepath.Join(tmp, builtMarker), nil, 0o600); err != nil {
		return "", fmt.Errorf("mark build complete: %w", err)
	}
	// Another test process may have finished the same build first; its
	// result is as good as ours.
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, builtMarker)); statErr != nil {
			return "", fmt.Errorf("install build: %w", err)
		}
	}
	prune(cacheDir, dir, 24*time.Hour)
	return dir, nil
}

// sourceKey hashes what the build depends on: the toolchain and settings,
// and the files of every package of this module that pattern needs.
// Dependencies outside the module are named by module version, which the
// module cache keeps immutable.
func sourceKey(ctx context.Context, root, pattern string) (string, error) {
	const tmpl = `{{if not .Standard}}P	{{.ImportPath}}	{{.Dir}}	{{with .Module}}{{.Version}}	{{.Main}}{{end}}
{{range .GoFiles}}F {{.}}
{{end}}{{range .CgoFiles}}F {{.}}
{{end}}{{range .CFiles}}F {{.}}
{{end}}{{range .HFiles}}F {{.}}
{{end}}{{range .SFiles}}F {{.}}
{{end}}{{range .SysoFiles}}F {{.}}
{{end}}{{range .EmbedFiles}}F {{.}}
{{end}}{{end}}`
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-f", tmpl, pattern)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list %s in %s: %w\n%s", pattern, root, err, tail(stderr.String(), 16<<10))
	}
	h := sha256.New()
	fmt.Fprintln(h, runtime.Version(), os.Getenv("GOFLAGS"), os.Getenv("CGO_ENABLED"), os.Getenv("GOOS"),
		os.Getenv("GOARCH"), os.Getenv("GOEXPERIMENT"), pattern, root)
	h.Write(out)
	for _, f := range []string{"go.mod", "go.sum"} {
		if err := hashFile(h, filepath.Join(root, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	var dir string
	local := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "P\t"):
			f := strings.Split(line, "\t")
			dir = f[2]
			// A package of a versioned module lives in the read-only module
			// cache; anything else (this module, replace directives) may change.
			local = len(f) < 5 || f[3] == "" || f[4] == "true"
		case strings.HasPrefix(line, "F ") && local:
			if err := hashFile(h, filepath.Join(dir, line[2:])); err != nil {
				return "", err
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

func hashFile(h io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("hash source: %w", err)
	}
	defer f.Close()
	fmt.Fprintf(h, "%s\n", path)
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("hash source %s: %w", path, err)
	}
	return nil
}

// prune removes builds not used for maxAge, so a machine that runs the tests
// for months does not fill its temp dir. Failures only leave litter behind.
func prune(cacheDir, keep string, maxAge time.Duration) {
	entries, err := os.ReadDir(cacheDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(cacheDir, e.Name())
		info, err := e.Info()
		if p == keep || err != nil || time.Since(info.ModTime()) < maxAge {
			continue
		}
		_ = os.RemoveAll(p)
	}
}
