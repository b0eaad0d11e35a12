package tool_test

import (
	"context"
	"fmt"
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

// command is what a tool or script accepts on its command line: the flags
// (by name without dashes, true when they take a value) and subcommands.
type command struct {
	name  string
	flags map[string]bool
	env   map[string]string // flag → its variable
	subs  map[string]*command
	any   bool // arguments go on to another program (scripts/test: go test) and are not checked
}

var (
	mdFlagRE = regexp.MustCompile(`\*\*-{1,2}([\w-]+)\*\*`)
	mdEnvRE  = regexp.MustCompile(`environment: (DL[\\A-Z0-9_]+)`)
	varRE    = regexp.MustCompile(`DL_[A-Z0-9_]*[A-Z0-9]`)
	wordRE   = regexp.MustCompile(`^[a-z][a-z-]*$`) // a subcommand's name, not a URL or a path
	assignRE = regexp.MustCompile(`^[A-Za-z_]\w*=`) // VAR=value before a command
)

// commandFromMarkdown reads a tool's flags and subcommands from its
// --generate-markdown page, which is made from the cli.App the tool runs.
func commandFromMarkdown(name, md string) *command {
	env := map[string]string{}
	flags := func(section string) map[string]bool {
		m := map[string]bool{}
		lines := strings.Split(section, "\n")
		for i, line := range lines {
			if !strings.HasPrefix(line, "**-") {
				continue
			}
			for _, n := range mdFlagRE.FindAllStringSubmatch(line, -1) {
				m[n[1]] = !strings.HasSuffix(line, "**") // a value's placeholder follows in *italics*
				if e := mdEnvRE.FindStringSubmatch(lines[min(i+1, len(lines)-1)]); e != nil {
					env[n[1]] = strings.ReplaceAll(e[1], `\_`, "_")
				}
			}
		}
		return m
	}
	section := func(s, heading string) string {
		_, s, _ = strings.Cut(s, "\n# "+heading+"\n")
		s, _, _ = strings.Cut(s, "\n# ")
		return s
	}
	c := &command{name: name, flags: flags(section(md, "OPTIONS")), env: env, subs: map[string]*command{}}
	for _, sub := range strings.Split(section(md, "COMMANDS"), "\n## ")[1:] {
		subName, body, _ := strings.Cut(sub, "\n")
		subName = strings.TrimSpace(subName)
		env = map[string]string{}
		c.subs[subName] = &command{name: name + " " + subName, flags: flags(body), env: env}
		c.subs[subName].flags["help"], c.subs[subName].flags["h"] = false, false
	}
	return c
}

// scriptArgs says what each script in scripts/ does with its arguments: ""
// takes none (it reads DL_ variables), else the program it hands them to. A
// new script fails TestReadmeCommands until it has its entry here.
var scriptArgs = map[string]string{
	"bench":          "dl-bench", // tools/bench's flags
	"dl-worker":      "dl-fetch",
	"test":           "go test",
	"demo":           "",
	"dl-distributor": "",
	"install":        "", // configured by PREFIX, DESTDIR, ...
	"services":       "",
}

// benchCommand reads the flags tools/bench (dl-bench, which scripts/bench
// runs with its arguments) defines with the flag package.
func benchCommand(t *testing.T, root string) *command {
	src, err := os.ReadFile(filepath.Join(root, "tools", "bench", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	c := &command{name: "scripts/bench", flags: map[string]bool{"help": false, "h": false}}
	for _, m := range regexp.MustCompile(`flag\.(\w+)Var\(&[\w.]+, "([\w-]+)"`).FindAllStringSubmatch(string(src), -1) {
		c.flags[m[2]] = m[1] != "Bool"
	}
	if len(c.flags) < 10 {
		t.Fatalf("found only %d flags in tools/bench/main.go: %v", len(c.flags), c.flags)
	}
	return c
}

// docCommand is one command line a document shows: in a code block or in
// inline code.
type docCommand struct {
	where string // file:line
	text  string
}

// docCommands returns every code block line and every inline code span of a
// Markdown file.
func docCommands(t *testing.T, path string) []docCommand {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(path)
	var out []docCommand
	var para []string
	paraStart := 0
	flush := func() {
		text := strings.Join(para, "\n")
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatchIndex(text, -1) {
			line := paraStart + strings.Count(text[:m[0]], "\n")
			out = append(out, docCommand{fmt.Sprintf("%s:%d", name, line), strings.ReplaceAll(text[m[2]:m[3]], "\n", " ")})
		}
		para = nil
	}
	fence := false
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			flush()
			fence = !fence
			continue
		}
		if fence {
			n := i + 1
			for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
				i++
				line = strings.TrimSuffix(line, `\`) + " " + lines[i]
			}
			out = append(out, docCommand{fmt.Sprintf("%s:%d", name, n), strings.TrimPrefix(strings.TrimSpace(line), "$ ")})
			continue
		}
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if para == nil {
			paraStart = i + 1
		}
		para = append(para, line)
	}
	flush()
	return out
}

// shellWords splits a command line as sh does, enough for documentation:
// quotes, comments, and the operators between commands, which come out as
// "|" (any of | || && ; &) and "<" (a redirection, whose target follows).
func shellWords(s string) []string {
	s = strings.ReplaceAll(s, `\|`, "|") // a pipe inside a Markdown table
	var words []string
	var w strings.Builder
	inWord := false
	end := func() {
		if inWord {
			words = append(words, w.String())
		}
		w.Reset()
		inWord = false
	}
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '\'' || ch == '"':
			j := strings.IndexByte(s[i+1:], ch)
			if j < 0 {
				j = len(s) - i - 1
			}
			w.WriteString(s[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case ch == '\\' && i+1 < len(s):
			w.WriteByte(s[i+1])
			inWord = true
			i++
		case ch == '#' && !inWord:
			end()
			return words
		case ch == ' ' || ch == '\t':
			end()
		case ch == '|' || ch == '&' || ch == ';':
			end()
			words = append(words, "|")
		case ch == '<' || ch == '>':
			if strings.Trim(w.String(), "0123456789") == "" {
				w.Reset() // a file descriptor: 2>
				inWord = false
			}
			end()
			for i+1 < len(s) && (s[i+1] == '>' || s[i+1] == '&' || s[i+1] >= '0' && s[i+1] <= '9') {
				i++
			}
			if s[i] == '&' || s[i] >= '0' && s[i] <= '9' {
				continue // 2>&1: no target follows
			}
			words = append(words, "<")
		default:
			w.WriteByte(ch)
			inWord = true
		}
	}
	end()
	return words
}

// checkArgs returns what is wrong with args given to c (an option it does
// not have, a subcommand it does not have, an option after an argument,
// where urfave/cli and the flag package take it as an argument), and the
// command or subcommand they run.
func checkArgs(c *command, args []string) (bad []string, runs *command) {
	arg := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "[") { // a synopsis: [--error PATTERN], [dl-fetch options]
			a = strings.TrimPrefix(a, "[")
			if !strings.HasPrefix(a, "-") {
				for i < len(args) && !strings.HasSuffix(args[i], "]") {
					i++
				}
				continue
			}
		}
		a = strings.TrimSuffix(a, "]")
		switch {
		case c.any || a == "--":
			return bad, c
		case strings.HasPrefix(a, "-") && a != "-":
			if arg != "" {
				bad = append(bad, fmt.Sprintf("%s comes after the argument %q, so %s takes it as an argument, not an option", a, arg, c.name))
				continue
			}
			name, _, withValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			valued, ok := c.flags[name]
			if !ok {
				bad = append(bad, fmt.Sprintf("%s has no option %s", c.name, a))
			} else if valued && !withValue {
				i++
			}
		case c.flags == nil:
			bad = append(bad, fmt.Sprintf("%s takes no arguments, not %q", c.name, a))
			return bad, c
		case arg == "" && len(c.subs) > 0 && wordRE.MatchString(a):
			sub, ok := c.subs[a]
			if !ok {
				bad = append(bad, fmt.Sprintf("%s has no subcommand %q", c.name, a))
				return bad, c
			}
			c = sub
		default:
			arg = a
		}
	}
	return bad, c
}

// docFacts is what the documents are checked against: every tool's and
// script's command line, and every DL_ variable something reads.
type docFacts struct {
	root     string
	commands map[string]*command // "dl-fetch", "scripts/bench"
	vars     map[string]bool
	readme   []string // README.md's lines
}

func readDocFacts(t *testing.T) docFacts {
	t.Helper()
	bin := testenv.Binaries(t)
	f := docFacts{root: filepath.Join("..", ".."), commands: map[string]*command{}, vars: map[string]bool{}}
	for _, tool := range tools {
		md, stderr, err := testenv.Run(t, context.Background(), filepath.Join(bin, tool), nil, nil, "--generate-markdown")
		if err != nil {
			t.Fatalf("%s --generate-markdown: %v %s", tool, err, stderr)
		}
		f.commands[tool] = commandFromMarkdown(tool, md)
		for _, m := range mdEnvRE.FindAllStringSubmatch(md, -1) {
			f.vars[strings.ReplaceAll(m[1], `\_`, "_")] = true
		}
	}
	readme, err := os.ReadFile(filepath.Join(f.root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	f.readme = strings.Split(string(readme), "\n")
	scripts, err := os.ReadDir(filepath.Join(f.root, "scripts"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range scripts {
		if fi, err := e.Info(); err != nil || fi.Mode()&0o111 == 0 {
			continue // schema.sql
		}
		name := "scripts/" + e.Name()
		src, err := os.ReadFile(filepath.Join(f.root, name))
		if err != nil {
			t.Fatal(err)
		}
		to, ok := scriptArgs[e.Name()]
		switch {
		case !ok:
			t.Errorf("%s: say in scriptArgs what it does with its arguments", name)
		case to == "dl-bench":
			f.commands[name] = benchCommand(t, f.root)
		case to == "":
			f.commands[name] = &command{name: name}
		case f.commands[to] != nil:
			f.commands[name] = &command{name: name + " (" + to + "'s options)", flags: f.commands[to].flags, subs: f.commands[to].subs}
		default:
			f.commands[name] = &command{name: name, any: true}
		}
		if ok && (to == "") == strings.Contains(string(src), `"$@"`) {
			t.Errorf("scriptArgs says %s hands its arguments to %q, but its source does otherwise", name, to)
		}
		for _, v := range varRE.FindAllString(string(src), -1) {
			f.vars[v] = true
		}
	}
	// The variables the units and CI set or read, and those Go code reads.
	getenvRE := regexp.MustCompile(`(?:Getenv|LookupEnv|envOr)\("(DL_[A-Z0-9_]+)"`)
	anyRE := regexp.MustCompile(`(` + varRE.String() + `)`)
	err = filepath.WalkDir(f.root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ext := filepath.Ext(path)
		re := getenvRE
		switch {
		case strings.HasPrefix(path, filepath.Join(f.root, "systemd")) && (ext == ".service" || ext == ".timer"),
			strings.HasPrefix(path, filepath.Join(f.root, ".ci")):
			re = anyRE
		case ext != ".go" || strings.HasSuffix(path, "_test.go"):
			return nil
		}
		src, err := os.ReadFile(path)
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			f.vars[m[1]] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// check checks the command lines of dc (only those of the command only, if
// given) and returns the commands and subcommands they run.
func (f docFacts) check(t *testing.T, dc docCommand, only string) (runs []string) {
	t.Helper()
	words := shellWords(dc.text)
	for len(words) > 0 {
		n := len(words)
		for i, w := range words {
			if w == "|" {
				n = i
				break
			}
		}
		seg := words[:n]
		words = words[min(n+1, len(words)):]
		var args []string
		for i := 0; i < len(seg); i++ {
			if seg[i] == "<" {
				i++ // the target of a redirection
				continue
			}
			args = append(args, seg[i])
		}
		// Skip VAR=value and the programs that run another: /usr/bin/time -v bin/dl-fetch.
		for len(args) > 0 && (assignRE.MatchString(args[0]) || strings.HasPrefix(args[0], "-") && len(args) > 1 ||
			map[string]bool{"sudo": true, "time": true, "/usr/bin/time": true, "env": true, "exec": true, "nohup": true}[args[0]]) {
			args = args[1:]
		}
		if len(args) == 0 {
			continue
		}
		name := args[0]
		if base := filepath.Base(name); !strings.HasPrefix(name, "scripts/") && f.commands[base] != nil {
			name = base // bin/dl-fetch
		}
		c := f.commands[name]
		switch {
		case only != "" && name != only:
		case c != nil:
			bad, ran := checkArgs(c, args[1:])
			for _, b := range bad {
				t.Errorf("%s: `%s`: %s", dc.where, dc.text, b)
			}
			runs = append(runs, ran.name)
		case strings.HasPrefix(name, "scripts/") && !strings.Contains(name, "."):
			if _, err := os.Stat(filepath.Join(f.root, name)); err != nil {
				t.Errorf("%s: `%s`: there is no %s", dc.where, dc.text, name)
			}
		}
	}
	return runs
}

// TestReadmeCommands: every command line README.md shows, in a code block
// or inline, that runs one of our tools or scripts, and every line of
// BENCHMARKS.md that runs scripts/bench, uses only options and subcommands
// the tool or script has, as its cli.App or option parsing defines them;
// and the README shows every tool and subcommand.
func TestReadmeCommands(t *testing.T) {
	f := readDocFacts(t)
	shown := map[string]bool{}
	for _, dc := range docCommands(t, filepath.Join(f.root, "README.md")) {
		for _, name := range f.check(t, dc, "") {
			shown[name] = true
		}
	}
	for _, dc := range docCommands(t, filepath.Join(f.root, "BENCHMARKS.md")) {
		f.check(t, dc, "scripts/bench")
	}
	for _, tool := range tools {
		names := []string{tool}
		for sub := range f.commands[tool].subs {
			names = append(names, tool+" "+sub)
		}
		for _, name := range names {
			if !shown[name] {
				t.Errorf("README.md shows no command line of %s", name)
			}
		}
	}
	for _, name := range []string{"scripts/bench", "scripts/dl-worker"} {
		if !shown[f.commands[name].name] {
			t.Errorf("found no command line of %s in README.md: is the extraction broken?", name)
		}
	}
}

// TestReadmeOptionsTable: in README.md's table of options, "| `--json`,
// `--prometheus` (dl-stat) | `DL_STAT_JSON`, `DL_STAT_PROMETHEUS` |", each
// flag is an option of the tools named (of some tool when none is, of all
// but those after "but" for "every tool") and reads the variable beside it.
func TestReadmeOptionsTable(t *testing.T) {
	f := readDocFacts(t)
	flagRE, envRE := regexp.MustCompile("`--([\\w-]+)`"), regexp.MustCompile("`(DL_\\w+)`")
	rows := 0
	for i, line := range f.readme {
		cells := strings.Split(line, " | ")
		if !strings.HasPrefix(line, "| `--") || len(cells) < 2 {
			continue
		}
		rows++
		flags, envs := flagRE.FindAllStringSubmatch(cells[0], -1), envRE.FindAllStringSubmatch(cells[1], -1)
		if len(flags) != len(envs) {
			t.Errorf("README.md:%d: %d flags beside %d variables: %s", i+1, len(flags), len(envs), line)
			continue
		}
		var in []*command
		for _, m := range regexp.MustCompile(`dl-\w+(?: [a-z]+)?`).FindAllString(cells[0], -1) {
			tool, sub, _ := strings.Cut(m, " ")
			if c := f.commands[tool]; c != nil && c.subs[sub] != nil {
				in = append(in, c.subs[sub])
			} else if c != nil {
				in = append(in, c)
			}
		}
		if strings.Contains(cells[0], "every tool") {
			in = nil
			for _, tool := range tools {
				if !strings.Contains(cells[0], "but "+tool) {
					in = append(in, f.commands[tool])
				}
			}
		}
		for j, flag := range flags {
			name, env := flag[1], envs[j][1]
			for _, c := range in {
				if c.env[name] != env {
					t.Errorf("README.md:%d: %s has no option --%s read from %s: %s", i+1, c.name, name, env, line)
				}
			}
			found := len(in) > 0
			for _, tool := range tools {
				found = found || f.commands[tool].env[name] == env
			}
			if !found {
				t.Errorf("README.md:%d: no tool has an option --%s read from %s: %s", i+1, name, env, line)
			}
		}
	}
	if rows < 20 {
		t.Errorf("found only %d rows of the table of options in README.md", rows)
	}
}

// TestReadmeVariables: every DL_ variable README.md names is a tool's
// option's variable, or one a script, a unit, CI or the tests read.
func TestReadmeVariables(t *testing.T) {
	f := readDocFacts(t)
	n := 0
	for i, line := range f.readme {
		for _, v := range varRE.FindAllString(line, -1) {
			n++
			if !f.vars[v] {
				t.Errorf("README.md:%d names %s, which no tool, script, unit or test reads: %s", i+1, v, strings.TrimSpace(line))
			}
		}
	}
	if n < 50 {
		t.Errorf("found only %d DL_ variables in README.md", n)
	}
}
