// Package layout decides where in the download directory a task's file goes.
//
// Two rules shape every path it makes. First, two different tasks — a
// different URL or a different id — never share a file: the seed named files
// after the URL's basename alone, so the second of two URLs ending in
// "/index.html" was marked done with the first one's bytes. Second, the path
// is a plain relative path below the download directory whatever the URL,
// the task's name or the server's Content-Disposition say.
//
// Both layouts name a file "<key>-<name>", where key is the first 24 hex
// digits of sha256(id + "\x00" + url) and name is the sanitised file name
// (task.Name, else the URL path's basename, else "file_<id>"). The key makes
// the name unique per (id, url): 96 bits keep the chance of any collision
// among a billion files below 1e-11, and URLs cannot contain a NUL byte, so
// the hashed string is unambiguous. An operator can recompute it with
// `printf '%s\0%s' "$id" "$url" | sha256sum`. The name stays visible so a
// person listing the directory sees what each file is.
//
// Sharded (the default) puts the file into one of 4,096 directories named by
// the key's first three hex digits, "abc/<key>-<name>": ten million files
// make directories of about 2,400 entries, a hundred million of 24,000, rather
// than one directory that every ls and every lookup has to wade through. One
// level of 4,096 rather than git-style 256 keeps directories small at that
// scale; not two levels (65,536 directories), because then a job of fewer
// than a hundred thousand files pays a mkdir (and with fsync a directory
// sync) for nearly every file, and a full tree holds 256 MiB of directory
// blocks. Flat puts "<key>-<name>" straight into the download directory, the
// seed's single directory, for small jobs. Switching layouts only moves
// files; their names stay the same.
package layout

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"net/url"
	"strings"

	"github.com/dlkit/dl/internal/record"
)

// Layout is how files are arranged in the download directory.
type Layout int

// The layouts. The zero value is Sharded, the safe choice for large jobs.
const (
	Sharded Layout = iota
	Flat
)

// KeyLen is the number of hex digits of the task key in every file name.
const KeyLen = 24

// ShardLen is the number of the key's hex digits that name the shard
// directory in the Sharded layout.
const ShardLen = 3

// SuffixRoom is how many bytes Path leaves free in the file name component,
// so that the downloader can add ".part" and ".part.meta" to it without
// passing the filesystem's 255-byte limit.
const SuffixRoom = 16

// Parse reads a layout name as given on a command line or in the
// environment.
func Parse(s string) (Layout, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "sharded", "":
		return Sharded, nil
	case "flat":
		return Flat, nil
	}
	return Sharded, fmt.Errorf("unknown layout %q (want sharded or flat)", s)
}

// String returns the name Parse accepts.
func (l Layout) String() string {
	switch l {
	case Sharded:
		return "sharded"
	case Flat:
		return "flat"
	}
	return fmt.Sprintf("layout(%d)", int(l))
}

// UnmarshalText lets a Layout be a configuration or flag value.
func (l *Layout) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// MarshalText is the inverse of UnmarshalText.
func (l Layout) MarshalText() ([]byte, error) {
	return []byte(l.String()), nil
}

// Key is the hex task key that starts every file name of the task.
func Key(t record.Task) string {
	sum := sha256.Sum256([]byte(t.ID + "\x00" + t.URL))
	return hex.EncodeToString(sum[:])[:KeyLen]
}

// Path returns the task's file, relative to the download directory, with
// slashes as separators on every system (the tools run on Unix). It is
// always local (filepath.IsLocal), its last component leaves SuffixRoom
// bytes below the 255-byte limit, and it depends only on the task's id, URL
// and name.
func (l Layout) Path(t record.Task) string {
	key := Key(t)
	name := clean(t.Name)
	if name == "" {
		name = clean(URLName(t.URL))
	}
	if name == "" {
		name = clean("file_" + t.ID)
	}
	file := key + "-" + fit(name, MaxName-SuffixRoom-len(key)-1)
	if l == Flat {
		return file
	}
	return key[:ShardLen] + "/" + file
}

// URLName returns the percent-decoded last segment of the URL's path, or ""
// when the path has none (as in "https://host/" or "https://host/dir/"). The
// segment is split off before decoding so that an encoded slash ("%2F") stays
// part of the name rather than becoming a directory.
func URLName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	p := u.EscapedPath()
	seg := p[strings.LastIndexByte(p, '/')+1:]
	if dec, err := url.PathUnescape(seg); err == nil {
		seg = dec
	}
	return seg
}

// DispositionName returns the file name a server suggested with a
// Content-Disposition header (RFC 6266, including the RFC 8187 filename*
// form, which takes precedence over filename), reduced to its last path
// segment, or "" when it suggested none. A filename* in UTF-8 or in
// ISO-8859-1, the two charsets RFC 8187 requires, comes out in UTF-8; one in
// any other charset is ignored, and filename serves. It is not sanitised: it
// goes through Path (as a task's Name) like any other name.
func DispositionName(header string) string {
	if header == "" {
		return ""
	}
	_, params, err := mime.ParseMediaType(header)
	if err != nil {
		return ""
	}
	// ParseMediaType decodes a filename* in UTF-8 (or US-ASCII) into
	// filename, and drops one in any other charset.
	name := params["filename"]
	if latin1, ok := latin1Param(header, "filename*"); ok {
		name = latin1
	}
	// Browsers keep only the last segment of a path-like suggestion; a server
	// has no business choosing our directories.
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	return name
}

// latin1Param decodes the RFC 8187 ext-value of the parameter name (an
// ASCII name, matched without regard to case) when its charset is
// ISO-8859-1, whose bytes are the code points U+0000 to U+00FF. header is
// one that mime.ParseMediaType accepted, so its parameters are well formed:
// split at the semicolons outside quoted strings.
func latin1Param(header, name string) (string, bool) {
	_, rest, _ := strings.Cut(header, ";")
	for rest != "" {
		var param string
		param, rest = cutParam(rest)
		k, v, ok := strings.Cut(param, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), name) {
			continue
		}
		charset, v, ok := strings.Cut(strings.TrimSpace(v), "'")
		if !ok || !strings.EqualFold(charset, "iso-8859-1") {
			return "", false
		}
		if _, v, ok = strings.Cut(v, "'"); !ok { // the language tag
			return "", false
		}
		raw, err := url.PathUnescape(v)
		if err != nil {
			return "", false
		}
		var b strings.Builder
		for i := range len(raw) {
			b.WriteRune(rune(raw[i]))
		}
		return b.String(), true
	}
	return "", false
}

// cutParam splits s at its first semicolon outside a quoted string.
func cutParam(s string) (param, rest string) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++ // the escaped character
		case c == '"':
			quoted = !quoted
		case !quoted && c == ';':
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}
