package systemd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var tools = []string{"dl-select", "dl-enqueue", "dl-fetch", "dl-mark", "dl-flag", "dl-stat"}

// TestInstallPutsEverythingInPlace checks what scripts/install leaves in its
// DESTDIR: the tools with the version and commit built in, the scripts, the
// units, the environment file, man pages and completions.
func TestInstallPutsEverythingInPlace(t *testing.T) {
	root := installed(t)
	p := func(rel string) string { return filepath.Join(root, rel) }
	for _, tool := range tools {
		out, err := exec.Command(p("usr/local/bin/"+tool), "--version").CombinedOutput()
		if want := tool + " version " + testVersion + " (commit " + testCommit + ")\n"; err != nil || string(out) != want {
			t.Errorf("%s --version: %q (%v), want %q", tool, out, err, want)
		}
		for _, f := range []string{"usr/local/share/man/man1/" + tool + ".1", "usr/local/share/bash-completion/completions/" + tool,
			"usr/local/share/zsh/site-functions/_" + tool} {
			if fi, err := os.Stat(p(f)); err != nil || fi.Size() == 0 || fi.Mode().Perm() != 0o644 {
				t.Errorf("%s: %v %v", f, fi, err)
			}
		}
	}
	for _, f := range []string{"usr/local/lib/dl/dl-worker", "usr/local/lib/dl/dl-distributor"} {
		if fi, err := os.Stat(p(f)); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v", f, fi, err)
		}
	}
	for _, u := range units {
		want, _ := os.ReadFile(filepath.Join(repo(), "systemd", u))
		got, err := os.ReadFile(p("etc/systemd/system/" + u))
		if err != nil || string(got) != string(want) {
			t.Errorf("unit %s not installed as is under PREFIX=/usr/local: %v", u, err)
		}
	}
	if fi, err := os.Stat(p("etc/dl/dl.env")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("etc/dl/dl.env: %v %v (it holds passwords: 0640)", fi, err)
	}
	for _, f := range []string{"etc/dl/dl.env.example", "usr/local/share/doc/dl/dl.env.example", "etc/sysusers.d/dl.conf"} {
		if _, err := os.Stat(p(f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(repo(), "docs", "operations.md")); err == nil {
		if _, err := os.Stat(p("usr/local/share/doc/dl/operations.md")); err != nil {
			t.Error(err)
		}
	}
}

// TestInstallElsewhereKeepsTheOperatorsEnv installs with another PREFIX over
// an edited dl.env: the units must name the new paths and the operator's
// file must survive.
func TestInstallElsewhereKeepsTheOperatorsEnv(t *testing.T) {
	installed(t) // the build cache is warm after it
	dest := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dest, "etc", "dl"), 0o755); err != nil {
		t.Fatal(err)
	}
	mine := "DL_MYSQL_DSN='me:secret@tcp(db:3306)/mine'\n"
	if err := os.WriteFile(filepath.Join(dest, "etc", "dl", "dl.env"), []byte(mine), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runInstall(dest, "PREFIX=/opt/dl")
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "etc", "dl", "dl.env")); string(got) != mine {
		t.Errorf("install overwrote dl.env with:\n%s", got)
	}
	if !strings.Contains(out, "kept the existing /etc/dl/dl.env") {
		t.Errorf("install did not say it kept dl.env:\n%s", out)
	}
	w, err := os.ReadFile(filepath.Join(dest, "etc", "systemd", "system", "dl-worker@.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(w), "ExecStart=/opt/dl/lib/dl/dl-worker\n") || !strings.Contains(string(w), "Environment=DL_BIN=/opt/dl/bin\n") ||
		strings.Contains(string(w), "/usr/local") {
		t.Errorf("worker unit under PREFIX=/opt/dl:\n%s", w)
	}
	if _, err := os.Stat(filepath.Join(dest, "opt", "dl", "bin", "dl-stat")); err != nil {
		t.Error(err)
	}
}
