package layout

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	long := strings.Repeat("a", 300)
	longUTF8 := strings.Repeat("é", 200) // 400 bytes, 2 per rune
	tests := []struct {
		name, in, want string
	}{
		{"plain", "report.pdf", "report.pdf"},
		{"empty", "", "file"},
		{"dot", ".", "file"},
		{"dotdot", "..", "file"},
		{"dots only", "....", "file"},
		{"hidden", ".bashrc", "bashrc"},
		{"leading dots and spaces", " . .x", "x"},
		{"slash", "a/b", "a_b"},
		{"backslash", `a\b`, "a_b"},
		{"traversal", "../../etc/passwd", "_.._etc_passwd"},
		{"nul", "a\x00b", "a_b"},
		{"newline", "a\nb\r", "a_b_"},
		{"del", "a\x7fb", "a_b"},
		{"c1 control", "a\u0085b", "a_b"},
		{"bidi override", "gpj\u202eexe.js", "gpj_exe.js"},
		{"line separator", "a\u2028b", "a_b"},
		{"invalid utf8", "a\xffb", "a\uFFFDb"},
		{"trailing space", "name.txt  ", "name.txt"},
		{"spaces only", "   ", "file"},
		{"unicode kept", "日本語 ファイル.txt", "日本語 ファイル.txt"},
		{"inner dots kept", "a..b", "a..b"},
		{"long keeps extension", long + ".tar", strings.Repeat("a", 251) + ".tar"},
		{"long without extension", long, strings.Repeat("a", 255)},
		{"long extension not kept", "a." + long, "a." + strings.Repeat("a", 253)},
		{"cut on rune boundary", longUTF8 + ".txt", strings.Repeat("é", 125) + ".txt"},
		{"cut odd rune boundary", "x" + longUTF8, "x" + strings.Repeat("é", 127)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Sanitize(tt.in)
			if got != tt.want {
				t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
			}
			checkName(t, got, MaxName)
		})
	}
}

// checkName asserts the invariants every sanitised name keeps.
func checkName(t *testing.T, s string, max int) {
	t.Helper()
	if s == "" {
		t.Fatalf("empty name")
	}
	if len(s) > max {
		t.Errorf("%q is %d bytes, more than %d", s, len(s), max)
	}
	if !utf8.ValidString(s) {
		t.Errorf("%q is not valid UTF-8", s)
	}
	if strings.ContainsAny(s, `/\`) {
		t.Errorf("%q contains a separator", s)
	}
	if s[0] == '.' {
		t.Errorf("%q starts with a dot", s)
	}
	if !filepath.IsLocal(s) {
		t.Errorf("%q is not local", s)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			t.Errorf("%q contains control character %U", s, r)
		}
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"", ".", "..", "a/b", "../x", "\x00", "\xff\xfe", ".a", " .", strings.Repeat("é", 200) + ".txt", strings.Repeat("x", 260)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := Sanitize(in)
		checkName(t, got, MaxName)
		if again := Sanitize(got); again != got {
			t.Errorf("not idempotent: %q -> %q -> %q", in, got, again)
		}
	})
}
