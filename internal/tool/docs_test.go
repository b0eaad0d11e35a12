package tool_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

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

// TestEveryOptionHasAVariable: every option of every tool has an environment
// variable (the product's rule), so that dl.env configures a service of any
// tool, dl-stat's --prometheus --watch --output one included. Help and
// version are no options, and a subcommand's filters (dl-mark requeue
// --error) are one run's arguments.
func TestEveryOptionHasAVariable(t *testing.T) {
	bin := testenv.Binaries(t)
	for _, tool := range tools {
		md, stderr, err := testenv.Run(t, context.Background(), filepath.Join(bin, tool), nil, nil, "--generate-markdown")
		if err != nil {
			t.Fatalf("%s --generate-markdown: %v %s", tool, err, stderr)
		}
		_, opts, _ := strings.Cut(md, "# OPTIONS\n")
		opts, _, _ = strings.Cut(opts, "\n# ")
		n := 0
		for _, entry := range strings.Split(opts, "\n\n") {
			name, usage, _ := strings.Cut(strings.TrimSpace(entry), "\n")
			if name == "" || strings.HasPrefix(name, "**--help**") || strings.HasPrefix(name, "**--version**") {
				continue
			}
			n++
			if !strings.Contains(usage, "environment: DL\\_") {
				t.Errorf("%s %s has no environment variable: %s", tool, name, usage)
			}
		}
		if n < 3 {
			t.Errorf("%s: found only %d options in its markdown:\n%s", tool, n, md)
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
	check(complete("dl-stat", "--wa"), "--wait-for-services", "--watch")
	check(complete("dl-stat", "--wat"), "--watch")
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

// TestEnvExampleShowsTheDefaults: a variable the example leaves commented
// out "takes the default shown", so the value shown must be the tool's
// default (as --help prints it), and a file the example refers to must
// exist.
func TestEnvExampleShowsTheDefaults(t *testing.T) {
	bin := testenv.Binaries(t)
	defaultRE := regexp.MustCompile(`\(default: ("[^"]*"|[^)]*)\) \[\$(DL_[A-Z0-9_]+)\]`)
	envRE := regexp.MustCompile(`\[\$(DL_[A-Z0-9_]+)\]`)
	defaults := map[string]string{} // every variable a tool reads → its default ("" for none)
	for _, tool := range tools {
		help, stderr, err := testenv.Run(t, context.Background(), filepath.Join(bin, tool), nil, nil, "--help")
		if err != nil {
			t.Fatalf("%s --help: %v %s", tool, err, stderr)
		}
		for _, line := range strings.Split(help, "\n") {
			if m := defaultRE.FindStringSubmatch(line); m != nil {
				defaults[m[2]] = strings.Trim(m[1], `"`)
			} else if m := envRE.FindStringSubmatch(line); m != nil {
				defaults[m[1]] = ""
			}
		}
	}
	path := filepath.Join("..", "..", "systemd", "dl.env.example")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	same := func(a, b string) bool {
		da, errA := time.ParseDuration(a)
		db, errB := time.ParseDuration(b)
		if errA == nil && errB == nil {
			return da == db
		}
		return a == b
	}
	checked := 0
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "#"), "=")
		if !strings.HasPrefix(line, "#DL_") || !ok || strings.Contains(k, " ") {
			continue
		}
		def, known := defaults[k]
		if !known {
			continue // a script's variable (DL_INTERVAL, DL_BIN)
		}
		v = strings.ReplaceAll(strings.Trim(v, `'"`), "VERSION", "dev")
		if !same(v, def) {
			t.Errorf("%s shows %s=%s, but the default is %q", path, k, v, def)
		}
		checked++
	}
	if checked < 20 {
		t.Errorf("checked only %d defaults of %s", checked, path)
	}
	for _, ref := range regexp.MustCompile(`\b(docs/[\w./-]+\w|README\.md)`).FindAllString(string(b), -1) {
		if _, err := os.Stat(filepath.Join("..", "..", ref)); err != nil {
			t.Errorf("%s refers to %s: %v", path, ref, err)
		}
	}
}
