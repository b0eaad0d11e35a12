package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestModuleRootFindsGoMod(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.Contains(string(mod), "module github.com/dlkit/dl") {
		t.Fatalf("root %s has no dl go.mod (%v)", root, err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mainSaying(s string) string {
	return "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(" + `"` + s + `"` + ") }\n"
}

func runBin(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command(path).Output()
	if err != nil {
		t.Fatalf("run %s: %v", path, err)
	}
	return strings.TrimSpace(string(out))
}

// The real cmd/ belongs to other packages' tests; this builds a throwaway
// module with the same layout.
func TestBuildCachesBySourceAndRebuildsOnChange(t *testing.T) {
	t.Parallel()
	mod, cache := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(mod, "go.mod"), "module example.com/m\n\ngo 1.26\n")
	writeFile(t, filepath.Join(mod, "cmd", "hello", "main.go"), mainSaying("hello"))
	writeFile(t, filepath.Join(mod, "cmd", "bye", "main.go"), mainSaying("bye"))

	dir, err := build(mod, "./cmd/...", cache)
	if err != nil {
		t.Fatal(err)
	}
	if runBin(t, filepath.Join(dir, "hello")) != "hello" || runBin(t, filepath.Join(dir, "bye")) != "bye" {
		t.Fatal("built binaries say the wrong thing")
	}
	before, err := os.Stat(filepath.Join(dir, "hello"))
	if err != nil {
		t.Fatal(err)
	}

	again, err := build(mod, "./cmd/...", cache)
	if err != nil || again != dir {
		t.Fatalf("unchanged sources built into %s (%v), want the cached %s", again, err, dir)
	}
	if after, _ := os.Stat(filepath.Join(dir, "hello")); !after.ModTime().Equal(before.ModTime()) {
		t.Fatal("unchanged sources were rebuilt")
	}

	writeFile(t, filepath.Join(mod, "cmd", "hello", "main.go"), mainSaying("hello again"))
	changed, err := build(mod, "./cmd/...", cache)
	if err != nil || changed == dir {
		t.Fatalf("changed sources built into %s (%v)", changed, err)
	}
	if got := runBin(t, filepath.Join(changed, "hello")); got != "hello again" {
		t.Fatalf("rebuilt hello says %q", got)
	}
}

func TestBuildReportsCompilerErrors(t *testing.T) {
	t.Parallel()
	mod := t.TempDir()
	writeFile(t, filepath.Join(mod, "go.mod"), "module example.com/m\n\ngo 1.26\n")
	writeFile(t, filepath.Join(mod, "cmd", "broken", "main.go"), "package main\n\nfunc main() { undefinedThing() }\n")
	_, err := build(mod, "./cmd/...", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "undefinedThing") {
		t.Fatalf("err %v, want the compiler's message", err)
	}
}
