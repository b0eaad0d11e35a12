package layout

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxName is the longest file name component Linux filesystems accept, in
// bytes.
const MaxName = 255

// maxExt bounds what fit treats as an extension worth keeping: anything
// longer is more likely part of the name than a type suffix.
const maxExt = 16

// Sanitize turns a name from an untrusted source (a URL's basename, a task's
// name, a server's Content-Disposition) into one safe file name component:
// valid UTF-8, no path separators, no control or bidirectional-override
// characters, not hidden or "." or "..", not empty, and at most MaxName bytes
// with its extension kept. A name with nothing left becomes "file".
func Sanitize(name string) string {
	if s := clean(name); s != "" {
		return s
	}
	return "file"
}

// clean is Sanitize without the fallback, so Path can pick a better one.
func clean(name string) string {
	s := strings.ToValidUTF8(name, "\uFFFD")
	s = strings.Map(safeRune, s)
	// A leading dot hides the file from ls and globs, and "." or ".." name
	// directories; dropping leading dots handles all three.
	s = strings.TrimLeftFunc(s, func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
	s = strings.TrimRightFunc(s, unicode.IsSpace)
	return fit(s, MaxName)
}

// safeRune replaces what would let a name escape its directory or mislead
// the person reading a listing: separators, control characters (including
// NUL and newline, which break line-oriented tools) and the Unicode controls
// that reorder text ("gpj.exe" shown as "exe.jpg").
func safeRune(r rune) rune {
	switch {
	case r == '/' || r == '\\':
		return '_'
	case unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r),
		unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r):
		return '_'
	}
	return r
}

// fit cuts s to at most max bytes on a UTF-8 boundary, keeping a short
// extension so the file still opens with the right program.
func fit(s string, max int) string {
	if len(s) <= max {
		return s
	}
	ext := ""
	if i := strings.LastIndexByte(s, '.'); i > 0 && len(s)-i <= maxExt {
		ext = s[i:]
	}
	stem := cut(s[:len(s)-len(ext)], max-len(ext))
	return strings.TrimRightFunc(stem, unicode.IsSpace) + ext
}

// cut returns the longest prefix of s of at most n bytes that ends on a rune
// boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
