package tool_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dlkit/dl/internal/testenv"
)

var tools = []string{"dl-select", "dl-enqueue", "dl-fetch", "dl-mark", "dl-flag", "dl-stat"}

// TestManPages renders every tool's generated page with man(1) and checks
// that groff finds nothing wrong with it and that it documents the flags
// and their environment variables.
func TestManPages(t *testing.T) {
	bin := testenv.Binaries(t)
	for _, tool := range tools {
		page, stderr, err := testenv.Run(t, context.Background(), filepath.Join(bin, tool), nil, nil, "--generate-man")
		if err != nil || stderr != "" {
			t.Fatalf("%s --generate-man: %v\n%s", tool, err, stderr)
		}
		lint := exec.Command("groff", "-k", "-man", "-Tutf8", "-ww", "-z")
		lint.Stdin = strings.NewReader(page)
		if out, err := lint.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("%s: groff warns: %v\n%s", tool, err, out)
		}
		path := filepath.Join(t.TempDir(), tool+".1")
		if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		render := exec.Command("man", "-l", path)
		render.Env = append(os.Environ(), "MANWIDTH=100", "MANPAGER=cat", "PAGER=cat")
		text, err := render.Output()
		if err != nil {
			t.Fatalf("man -l %s: %v", path, err)
		}
		flat := strings.Join(strings.Fields(string(text)), " ")
		for _, want := range []string{"NAME " + tool + " - ", "SYNOPSIS", "OPTIONS", "--log-level", "DL_LOG_LEVEL", "--version", "SEE ALSO", "EXIT STATUS"} {
			if !strings.Contains(flat, want) {
				t.Errorf("%s's man page lacks %q:\n%s", tool, want, text)
			}
		}
		if tool == "dl-mark" && !strings.Contains(flat, "COMMANDS requeue dl-mark requeue [--error PATTERN]") {
			t.Errorf("dl-mark's page does not document requeue and its flags:\n%s", text)
		}
		if strings.Contains(string(text), "dl-fetch(1)") == (tool == "dl-fetch") {
			t.Errorf("%s's SEE ALSO is wrong:\n%s", tool, text)
		}
	}
	fetch, _, _ := testenv.Run(t, context.Background(), filepath.Join(bin, "dl-fetch"), nil, nil, "--generate-markdown")
	for _, want := range []string{"**--concurrency**, **-c** *N*", "environment: DL\\_CONCURRENCY", "# ENVIRONMENT", "**DL\\_MYSQL\\_DSN**"} {
		if !strings.Contains(fetch, want) {
			t.Errorf("dl-fetch's markdown lacks %q:\n%s", want, fetch)
		}
	}
}

// TestBashCompletion sources each generated script in bash and asks it what
// it completes, as bash does on Tab.
func TestBashCompletion(t *testing.T) {
	bin := testenv.Binaries(t)
	dir := t.TempDir()
	for _, tool := range tools {
		script, stderr, err := testenv.Run(t, context.Background(), filepath.Join(bin, tool), nil, nil, "--generate-completion", "bash")
		if err != nil {
			t.Fatalf("%s --generate-completion bash: %v\n%s", tool, err, stderr)
		}
		if err := os.WriteFile(filepath.Join(dir, tool), []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	complete := func(words ...string) []string {
		t.Helper()
		fn := "_" + strings.ReplaceAll(words[0], "-", "_")
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+w+"'")
		}
		sh := "source " + filepath.Join(dir, words[0]) + "\ncd " + dir + "\n" +
			"COMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n" +
			fn + "\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		out, err := exec.Command("bash", "--norc", "--noprofile", "-c", sh).CombinedOutput()
		if err != nil {
			t.Fatalf("complete %v: %v\n%s", words, err, out)
		}
		return strings.Fields(string(out))
	}
	check := func(got []string, want ...string) {
		t.Helper()
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("completed %q, want %q", got, want)
		}
	}
	check(complete("dl-fetch", "--conc"), "--concurrency")
	check(complete("dl-flag", "s"), "set", "status")
	check(complete("dl-stat", "--wa"), "--watch")
	check(complete("dl-mark", "requeue", "--e"), "--error")
	check(complete("dl-mark", "--table", "files", "re"), "requeue")
	check(complete("dl-fetch", "--mode", "x")) // a value: nothing to offer
	if err := os.Mkdir(filepath.Join(dir, "downloads"), 0o755); err != nil {
		t.Fatal(err)
	}
	check(complete("dl-fetch", "--dir", "dow"), "downloads")
}

// TestZshCompletion checks that every generated script parses in zsh (where
// zsh is installed: its completion at work was checked by hand in tmux).
func TestZshCompletion(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		testenv.Missing(t, "zsh is not installed (apt-get install zsh): cannot check the zsh completion scripts")
	}
	bin := testenv.Binaries(t)
	for _, tool := range tools {
		script, stderr, err := testenv.Run(t, context.Background(), filepath.Join(bin, tool), nil, nil, "--generate-completion=zsh")
		if err != nil {
			t.Fatalf("%s --generate-completion=zsh: %v\n%s", tool, err, stderr)
		}
		if !strings.HasPrefix(script, "#compdef "+tool+"\n") {
			t.Errorf("%s: no #compdef line:\n%s", tool, script)
		}
		cmd := exec.Command(zsh, "-n")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: zsh -n: %v\n%s\n%s", tool, err, out, script)
		}
	}
	_, stderr, err := testenv.Run(t, context.Background(), filepath.Join(bin, "dl-flag"), nil, nil, "--generate-completion", "fish")
	if err == nil || !strings.Contains(stderr, "want bash or zsh") {
		t.Errorf("fish: %v %q", err, stderr)
	}
}
