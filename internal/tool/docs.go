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
	docs := docFlags(app.VisibleFlags())
	if !app.HideHelp {
		docs = append(docs, flagDoc{names: []string{"help", "h"}, usage: "show help"})
	}
	if !app.HideVersion && app.Version != "" {
		docs = append(docs, flagDoc{names: []string{"version", "v"}, usage: "print the version and the commit"})
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].names[0] < docs[j].names[0] })
	return docs
}

// commands are app's visible subcommands.
func commands(app *cli.App) []*cli.Command {
	var out []*cli.Command
	for _, c := range app.Commands {
		if !c.Hidden {
			out = append(out, c)
		}
	}
	return out
}

// docFlags documents a list of flags, in their order.
func docFlags(list []cli.Flag) []flagDoc {
	var docs []flagDoc
	for _, f := range list {
		if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
			continue
		}
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
		p("%s", manFlag(f))
		if len(f.env) > 0 {
			env = append(env, f)
		}
	}
	if cmds := commands(app); len(cmds) > 0 {
		p("# COMMANDS")
		p("")
		for _, c := range cmds {
			p("## %s", mdEscape(c.Name))
			p("")
			if c.UsageText != "" {
				usage, _, _ := strings.Cut(c.UsageText, "\n\nExample:\n")
				p("    %s", strings.TrimSpace(usage))
				p("")
			}
			p("%s", mdEscape(c.Usage))
			p("")
			for _, f := range docFlags(c.Flags) {
				p("%s", manFlag(f))
			}
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
	p("0 on success, including a stop asked for by a signal or the exit flag. 2 for a command line the tool cannot run (an unknown option, an argument it does not take, a value out of range), before doing anything and with nothing on standard output. Otherwise non-zero, with one line on standard error saying why. A first SIGINT or SIGTERM stops taking new work and finishes what is in flight; a second one (or, for dl-fetch, the end of --stop-timeout) abandons it.")
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

// manFlag is one flag as a definition-list entry.
func manFlag(f flagDoc) string {
	var names []string
	for _, n := range f.dashed() {
		names = append(names, "**"+mdEscape(n)+"**")
	}
	head := strings.Join(names, ", ")
	if f.value != "" {
		head += " *" + mdEscape(f.value) + "*"
	}
	var notes []string
	if f.def != "" && f.def != "0s" {
		notes = append(notes, "default: "+f.def)
	}
	if len(f.env) > 0 {
		notes = append(notes, "environment: "+strings.Join(f.env, ", "))
	}
	text := mdEscape(f.usage)
	if len(notes) > 0 {
		text += " (" + mdEscape(strings.Join(notes, "; ")) + ")"
	}
	return head + "\n: " + text + "\n"
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
// directories, the subcommands and their flags.
func bashCompletion(app *cli.App) string {
	fn := "_" + strings.ReplaceAll(app.Name, "-", "_")
	cmds := commands(app)
	var b strings.Builder
	fmt.Fprintf(&b, "# bash completion for %s (generated by %s %s bash)\n", app.Name, app.Name, argCompletion)
	fmt.Fprintf(&b, "%s() {\n", fn)
	b.WriteString("  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\" cmd=\"\" i\n")
	b.WriteString("  COMPREPLY=()\n")
	if len(cmds) > 0 {
		var names []string
		for _, c := range cmds {
			names = append(names, c.Names()...)
		}
		b.WriteString("  for ((i = 1; i < COMP_CWORD; i++)); do\n")
		fmt.Fprintf(&b, "    case \"${COMP_WORDS[i]}\" in %s) cmd=\"${COMP_WORDS[i]}\"; break ;; esac\n", strings.Join(names, "|"))
		b.WriteString("  done\n")
		b.WriteString("  case \"$cmd\" in\n")
		for _, c := range cmds {
			fmt.Fprintf(&b, "    %s)\n", strings.Join(c.Names(), "|"))
			sub := append(docFlags(c.Flags), flagDoc{names: []string{"help", "h"}})
			bashFlags(&b, "      ", sub, "")
			b.WriteString("      return ;;\n")
		}
		b.WriteString("  esac\n")
		var words []string
		for _, c := range cmds {
			words = append(words, c.Name)
		}
		bashFlags(&b, "  ", flags(app), fmt.Sprintf("COMPREPLY=($(compgen -W %q -- \"$cur\"))", strings.Join(words, " ")))
	} else {
		bashFlags(&b, "  ", flags(app), "COMPREPLY=($(compgen -f -- \"$cur\"))")
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, "complete -o bashdefault -o default -F %s %s\n", fn, app.Name)
	return b.String()
}

// bashFlags completes a flag's value (files, directories or nothing), or a
// flag name, or else runs words.
func bashFlags(b *strings.Builder, indent string, list []flagDoc, words string) {
	var all, valued, files, dirs []string
	for _, f := range list {
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
	if len(dirs)+len(files)+len(valued) > 0 {
		fmt.Fprintf(b, "%scase \"$prev\" in\n", indent)
		if len(dirs) > 0 {
			fmt.Fprintf(b, "%s  %s) COMPREPLY=($(compgen -d -- \"$cur\")); return ;;\n", indent, strings.Join(dirs, "|"))
		}
		if len(files) > 0 {
			fmt.Fprintf(b, "%s  %s) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n", indent, strings.Join(files, "|"))
		}
		if len(valued) > 0 {
			fmt.Fprintf(b, "%s  %s) return ;;\n", indent, strings.Join(valued, "|"))
		}
		fmt.Fprintf(b, "%sesac\n", indent)
	}
	fmt.Fprintf(b, "%sif [[ \"$cur\" == -* ]]; then\n%s  COMPREPLY=($(compgen -W %q -- \"$cur\"))\n", indent, indent, strings.Join(all, " "))
	if words != "" {
		fmt.Fprintf(b, "%selse\n%s  %s\n", indent, indent, words)
	}
	fmt.Fprintf(b, "%sfi\n", indent)
}

// zshCompletion is an _arguments specification: flags with their
// descriptions, file and directory values, the subcommands and their flags.
func zshCompletion(app *cli.App) string {
	fn := "_" + strings.ReplaceAll(app.Name, "-", "_")
	cmds := commands(app)
	var b strings.Builder
	fmt.Fprintf(&b, "#compdef %s\n# zsh completion for %s (generated by %s %s zsh)\n\n", app.Name, app.Name, app.Name, argCompletion)
	fmt.Fprintf(&b, "%s() {\n", fn)
	if len(cmds) == 0 {
		b.WriteString("  _arguments -s \\\n")
		zshFlags(&b, "    ", flags(app))
		b.WriteString("    '*:argument:_files'\n}\n")
		fmt.Fprintf(&b, "\n%s \"$@\"\n", fn)
		return b.String()
	}
	b.WriteString("  local curcontext=\"$curcontext\" state line\n")
	b.WriteString("  _arguments -C -s \\\n")
	zshFlags(&b, "    ", flags(app))
	var items []string
	for _, c := range cmds {
		desc := zshColon(strings.NewReplacer(`"`, `\"`, `\`, `\\`).Replace(c.Usage))
		items = append(items, zshColon(c.Name)+`\:"`+desc+`"`)
	}
	fmt.Fprintf(&b, "    %s \\\n", zshQuote("1:command:(("+strings.Join(items, " ")+"))"))
	b.WriteString("    '*::argument:->args'\n")
	b.WriteString("  case $state in\n  args)\n    case $words[1] in\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "    %s)\n      _arguments -s \\\n", strings.Join(c.Names(), "|"))
		zshFlags(&b, "        ", append(docFlags(c.Flags), flagDoc{names: []string{"help", "h"}, usage: "show help"}))
		b.WriteString("        '*:argument:_files' ;;\n")
	}
	b.WriteString("    esac ;;\n  esac\n}\n")
	fmt.Fprintf(&b, "\n%s \"$@\"\n", fn)
	return b.String()
}

// zshFlags writes one _arguments spec per flag, each ending a continued line.
func zshFlags(b *strings.Builder, indent string, list []flagDoc) {
	for _, f := range list {
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
			fmt.Fprintf(b, "%s%s%s%s \\\n", indent, zshQuote(names[0]), desc, action)
			continue
		}
		excl := zshQuote("(" + strings.Join(names, " ") + ")")
		fmt.Fprintf(b, "%s%s{%s}%s%s \\\n", indent, excl, strings.Join(names, ","), desc, action)
	}
}

// zshQuote single-quotes s for zsh.
func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// zshBracket escapes what would end an option's [description].
func zshBracket(s string) string { return strings.NewReplacer("[", `\[`, "]", `\]`).Replace(s) }

// zshColon escapes the separator of _arguments' fields.
func zshColon(s string) string { return strings.ReplaceAll(s, ":", `\:`) }
