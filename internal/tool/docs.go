package tool

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/urfave/cli/v2"
)

// Every tool answers three hidden arguments, which scripts/install uses to
// generate its documentation from the very flags the tool parses, so the man
// pages and completions can never drift from the code:
//
//	dl-fetch --generate-man                 man page (roff, section 1)
//	dl-fetch --generate-markdown            the same page in Markdown
//	dl-fetch --generate-completion bash|zsh completion script for that shell
//
// They are not flags: they are recognised only as the first argument, before
// any flag parsing, and never appear in --help.
const (
	argMan        = "--generate-man"
	argMarkdown   = "--generate-markdown"
	argCompletion = "--generate-completion"
)

// family names the tools for a man page's SEE ALSO.
var family = []string{"dl-select", "dl-enqueue", "dl-fetch", "dl-mark", "dl-flag", "dl-stat"}

// generateDocs writes what a hidden argument asks for; handled is false when
// args hold none.
func generateDocs(app *cli.App, args []string, stdout, stderr io.Writer) (code int, handled bool) {
	if len(args) < 2 || !strings.HasPrefix(args[1], "--generate-") {
		return 0, false
	}
	var out string
	var err error
	switch arg, val, _ := strings.Cut(args[1], "="); {
	case arg == argMan && len(args) == 2:
		out = string(md2man.Render([]byte(manMarkdown(app, true))))
	case arg == argMarkdown && len(args) == 2:
		out = manMarkdown(app, false)
	case arg == argCompletion:
		if val == "" && len(args) == 3 {
			val = args[2]
		}
		switch val {
		case "bash":
			out = bashCompletion(app)
		case "zsh":
			out = zshCompletion(app)
		default:
			err = fmt.Errorf("%s: want bash or zsh, not %q", argCompletion, val)
		}
	default:
		return 0, false
	}
	if err == nil {
		_, err = io.WriteString(stdout, out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", app.Name, err)
		return 2, true
	}
	return 0, true
}

// flagDoc is what the docs say about one flag.
type flagDoc struct {
	names []string // long name first, then aliases
	value string   // placeholder of the value; empty for a switch
	usage string
	def   string
	env   []string
}

func (f flagDoc) dashed() []string {
	var out []string
	for _, n := range f.names {
		if len(n) == 1 {
			out = append(out, "-"+n)
		} else {
			out = append(out, "--"+n)
		}
	}
	return out
}

var placeholderRE = regexp.MustCompile("`([^`]+)`")

// flags documents app's visible flags, sorted by name, help and version
// included.
func flags(app *cli.App) []flagDoc {
	var docs []flagDoc
	for _, f := range app.VisibleFlags() {
		d := flagDoc{names: f.Names()}
		if dg, ok := f.(cli.DocGenerationFlag); ok {
			d.usage, d.env = dg.GetUsage(), dg.GetEnvVars()
			if m := placeholderRE.FindStringSubmatch(d.usage); m != nil {
				d.value = m[1]
				d.usage = strings.Replace(d.usage, m[0], m[1], 1)
			}
			if dg.TakesValue() {
				if d.value == "" {
					d.value = placeholder(f)
				}
				d.def = strings.Trim(dg.GetDefaultText(), `"`)
			}
		}
		docs = append(docs, d)
	}
	if !app.HideHelp {
		docs = append(docs, flagDoc{names: []string{"help", "h"}, usage: "show help"})
	}
	if !app.HideVersion && app.Version != "" {
		docs = append(docs, flagDoc{names: []string{"version", "v"}, usage: "print the version and the commit"})
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].names[0] < docs[j].names[0] })
	return docs
}

func placeholder(f cli.Flag) string {
	switch f.(type) {
	case *cli.DurationFlag:
		return "DURATION"
	case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag:
		return "N"
	}
	return "VALUE"
}

// manMarkdown is the man page in the Markdown dialect go-md2man reads
// (withTitle adds its title line).
func manMarkdown(app *cli.App, withTitle bool) string {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	if withTitle {
		p("%% %s 1 \"\" \"dl %s\"", strings.ToUpper(app.Name), Version)
		p("")
	}
	p("# NAME")
	p("")
	p("%s - %s", app.Name, app.Usage)
	p("")
	p("# SYNOPSIS")
	p("")
	synopsis, example, _ := strings.Cut(app.UsageText, "\n\nExample:\n")
	for _, l := range strings.Split(synopsis, "\n") {
		p("    %s", strings.TrimSpace(l))
	}
	p("")
	if app.Description != "" {
		p("# DESCRIPTION")
		p("")
		p("%s", app.Description)
		p("")
	}
	p("# OPTIONS")
	p("")
	var env []flagDoc
	for _, f := range flags(app) {
		var names []string
		for _, n := range f.dashed() {
			names = append(names, "**"+mdEscape(n)+"**")
		}
		head := strings.Join(names, ", ")
		if f.value != "" {
			head += " *" + mdEscape(f.value) + "*"
		}
		p("%s", head)
		var notes []string
		if f.def != "" {
			notes = append(notes, "default: "+f.def)
		}
		if len(f.env) > 0 {
			notes = append(notes, "environment: "+strings.Join(f.env, ", "))
			env = append(env, f)
		}
		text := mdEscape(f.usage)
		if len(notes) > 0 {
			text += " (" + mdEscape(strings.Join(notes, "; ")) + ")"
		}
		p(": %s", text)
		p("")
	}
	if len(app.Commands) > 0 {
		p("# COMMANDS")
		p("")
		for _, c := range app.Commands {
			if c.Hidden {
				continue
			}
			p("**%s**", mdEscape(c.Name))
			p(": %s", mdEscape(c.Usage))
			p("")
		}
	}
	if len(env) > 0 {
		p("# ENVIRONMENT")
		p("")
		p("Every option above that names a variable reads it when the option is not given, so one environment file (`/etc/dl/dl.env`) configures the shell, the scripts and the systemd units alike.")
		p("")
		for _, f := range env {
			for _, e := range f.env {
				p("**%s**", mdEscape(e))
				p(": %s", mdEscape(f.dashed()[0]))
				p("")
			}
		}
	}
	if example != "" {
		p("# EXAMPLES")
		p("")
		for _, l := range strings.Split(example, "\n") {
			p("    %s", strings.TrimSpace(l))
		}
		p("")
	}
	p("# EXIT STATUS")
	p("")
	p("0 on success, including a stop asked for by a signal or the exit flag. Otherwise non-zero, with one line on standard error saying why. A first SIGINT or SIGTERM stops taking new work and finishes what is in flight; a second one abandons it.")
	p("")
	p("# SEE ALSO")
	p("")
	var see []string
	for _, t := range family {
		if t != app.Name {
			see = append(see, "**"+t+"**(1)")
		}
	}
	p("%s", strings.Join(see, ", "))
	return b.String()
}

var mdSpecial = strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "<", `\<`, ">", `\>`, "[", `\[`, "]", `\]`)

func mdEscape(s string) string { return mdSpecial.Replace(s) }

// fileValue tells whether a flag's value names a file or a directory, for
// completion.
func fileValue(f flagDoc) (file, dir bool) {
	v := strings.ToLower(f.value)
	return strings.Contains(v, "file"), strings.Contains(v, "dir")
}

// bashCompletion completes the flags, the values that are files or
// directories, and the subcommands.
func bashCompletion(app *cli.App) string {
	fn := "_" + strings.ReplaceAll(app.Name, "-", "_")
	var all, valued, files, dirs []string
	for _, f := range flags(app) {
		all = append(all, f.dashed()...)
		switch file, dir := fileValue(f); {
		case dir:
			dirs = append(dirs, f.dashed()...)
		case file:
			files = append(files, f.dashed()...)
		case f.value != "":
			valued = append(valued, f.dashed()...)
		}
	}
	var cmds []string
	for _, c := range app.Commands {
		if !c.Hidden {
			cmds = append(cmds, c.Name)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# bash completion for %s (generated by %s %s bash)\n", app.Name, app.Name, argCompletion)
	fmt.Fprintf(&b, "%s() {\n", fn)
	b.WriteString("  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n")
	b.WriteString("  COMPREPLY=()\n")
	b.WriteString("  case \"$prev\" in\n")
	if len(dirs) > 0 {
		fmt.Fprintf(&b, "    %s) COMPREPLY=($(compgen -d -- \"$cur\")); return ;;\n", strings.Join(dirs, "|"))
	}
	if len(files) > 0 {
		fmt.Fprintf(&b, "    %s) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n", strings.Join(files, "|"))
	}
	if len(valued) > 0 {
		fmt.Fprintf(&b, "    %s) return ;;\n", strings.Join(valued, "|"))
	}
	b.WriteString("  esac\n")
	fmt.Fprintf(&b, "  if [[ \"$cur\" == -* ]]; then\n    COMPREPLY=($(compgen -W %q -- \"$cur\"))\n", strings.Join(all, " "))
	if len(cmds) > 0 {
		fmt.Fprintf(&b, "  else\n    COMPREPLY=($(compgen -W %q -- \"$cur\"))\n", strings.Join(cmds, " "))
	} else {
		b.WriteString("  else\n    COMPREPLY=($(compgen -f -- \"$cur\"))\n")
	}
	b.WriteString("  fi\n}\n")
	fmt.Fprintf(&b, "complete -o bashdefault -o default -F %s %s\n", fn, app.Name)
	return b.String()
}

// zshCompletion is an _arguments specification: flags with their
// descriptions, file and directory values, and the subcommands.
func zshCompletion(app *cli.App) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#compdef %s\n# zsh completion for %s (generated by %s %s zsh)\n\n", app.Name, app.Name, app.Name, argCompletion)
	b.WriteString("_arguments -s \\\n")
	for _, f := range flags(app) {
		names := f.dashed()
		desc := zshQuote("[" + zshBracket(f.usage) + "]")
		action := ""
		if f.value != "" {
			act := ""
			switch file, dir := fileValue(f); {
			case dir:
				act = "_files -/"
			case file:
				act = "_files"
			}
			action = zshQuote(":" + zshColon(f.value) + ":" + act)
		}
		if len(names) == 1 {
			fmt.Fprintf(&b, "  %s%s%s \\\n", zshQuote(names[0]), desc, action)
			continue
		}
		excl := zshQuote("(" + strings.Join(names, " ") + ")")
		fmt.Fprintf(&b, "  %s{%s}%s%s \\\n", excl, strings.Join(names, ","), desc, action)
	}
	var cmds []string
	for _, c := range app.Commands {
		if !c.Hidden {
			cmds = append(cmds, zshColon(c.Name)+`\:`+`"`+strings.NewReplacer(`"`, `\"`, `\`, `\\`).Replace(zshColon(c.Usage))+`"`)
		}
	}
	if len(cmds) > 0 {
		fmt.Fprintf(&b, "  %s\n", zshQuote("1:command:(("+strings.Join(cmds, " ")+"))"))
	} else {
		b.WriteString("  '*:argument:_files'\n")
	}
	return b.String()
}

// zshQuote single-quotes s for zsh.
func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// zshBracket escapes what would end an option's [description].
func zshBracket(s string) string { return strings.NewReplacer("[", `\[`, "]", `\]`).Replace(s) }

// zshColon escapes the separator of _arguments' fields.
func zshColon(s string) string { return strings.ReplaceAll(s, ":", `\:`) }
