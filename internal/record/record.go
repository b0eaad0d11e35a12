// Package record defines the two lines that flow between the dl tools — the
// task line (what to download) and the result line (what happened) — and the
// one way to read and write them as JSON lines.
//
// A task line is the seed's queue payload {"id": ..., "url": ...}; every other
// field is optional so that the original Python distributor's payloads decode
// and the original worker can consume ours.
package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Task is one file to download. ID and URL are the seed's payload; Token is
// the claim token that fences a late worker (empty for tasks pushed by the
// original distributor); Attempt counts failed attempts so far (it lives in
// the row, so retries are counted across workers and restarts).
type Task struct {
	ID      string `json:"id"`
	URL     string `json:"url"`
	Token   string `json:"token,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	// SHA256 is an expected checksum (hex); a mismatch fails the task.
	SHA256 string `json:"sha256,omitempty"`
	// Name overrides the file name taken from the URL.
	Name string `json:"name,omitempty"`
}

// Outcome is what became of a task.
type Outcome string

// The outcomes a result line can carry.
const (
	Done   Outcome = "done"
	Failed Outcome = "failed"
)

// Result is one task's outcome, written by dl-fetch and recorded by dl-mark.
type Result struct {
	ID       string  `json:"id"`
	URL      string  `json:"url"`
	Outcome  Outcome `json:"outcome"`
	Path     string  `json:"path,omitempty"`
	Bytes    int64   `json:"bytes"`
	SHA256   string  `json:"sha256,omitempty"`
	HTTP     int     `json:"http_status,omitempty"`
	Duration float64 `json:"duration"` // seconds
	Attempt  int     `json:"attempt"`  // failed attempts before this result, plus this one if it failed, unless Local
	Error    string  `json:"error,omitempty"`
	// Retryable marks a failure worth another attempt later (5xx, timeouts,
	// resets); dl-mark puts such a row back to pending until attempts run out.
	Retryable bool `json:"retryable,omitempty"`
	// Local marks a failure of the worker's own disk (full, over quota or
	// read-only), not of the task: it costs the task no attempt, and dl-mark
	// puts the row back to pending at once for any worker to take.
	Local bool   `json:"local,omitempty"`
	Token string `json:"token,omitempty"`
}

// MaxLine is the longest line any tool accepts; longer lines are rejected
// with a message rather than buffered without bound.
const MaxLine = 64 << 10

// MaxURL bounds a task's URL (browsers and servers rarely accept more).
const MaxURL = 16 << 10

// ErrEmpty reports a blank line, which readers skip silently.
var ErrEmpty = errors.New("empty line")

// ParseTask decodes one task line. A line that is not a JSON object but a bare
// http(s) URL is accepted too (for `dl-fetch -` fed by `cat urls.txt`); its id
// is the URL itself.
func ParseTask(line []byte) (Task, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return Task{}, ErrEmpty
	}
	var t Task
	if line[0] != '{' {
		t = Task{ID: string(line), URL: string(line)}
	} else {
		var raw struct {
			ID      json.RawMessage `json:"id"`
			URL     *string         `json:"url"`
			Token   string          `json:"token"`
			Attempt int             `json:"attempt"`
			SHA256  string          `json:"sha256"`
			Name    string          `json:"name"`
		}
		if err := json.Unmarshal(line, &raw); err != nil {
			return Task{}, fmt.Errorf("not a JSON task line: %w", err)
		}
		id, err := parseID(raw.ID)
		if err != nil {
			return Task{}, err
		}
		if raw.URL == nil {
			return Task{}, errors.New(`task line has no "url"`)
		}
		t = Task{ID: id, URL: *raw.URL, Token: raw.Token, Attempt: raw.Attempt, SHA256: raw.SHA256, Name: raw.Name}
	}
	if err := t.Check(); err != nil {
		return Task{}, err
	}
	return t, nil
}

// Check refuses a task no worker can carry out, and writes its checksum in
// lower case. Task lines pass it as they are read, and so do the rows
// dl-select turns into task lines, whose expected checksum an operator may
// have written by hand.
func (t *Task) Check() error {
	if err := CheckURL(t.URL); err != nil {
		return err
	}
	t.SHA256 = strings.ToLower(t.SHA256)
	if t.SHA256 != "" && !isHex(t.SHA256, 64) {
		return fmt.Errorf("task %q: sha256 %q is not 64 hex digits", t.ID, truncate(t.SHA256, 80))
	}
	if t.Attempt < 0 {
		return fmt.Errorf("task %q: negative attempt %d", t.ID, t.Attempt)
	}
	return nil
}

// parseID accepts a string or an integer id: the seed's column is VARCHAR, but
// hand-written lines often carry numbers.
func parseID(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", errors.New(`task line has no "id"`)
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("bad id: %w", err)
		}
	} else {
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return "", fmt.Errorf("id %s is neither a string nor an integer", raw)
		}
		s = strconv.FormatInt(n, 10)
	}
	if s == "" {
		return "", errors.New(`task line has an empty "id"`)
	}
	if len(s) > 255 {
		return "", errors.New("id longer than 255 bytes (the column is VARCHAR(255))")
	}
	return s, nil
}

// CheckURL accepts only absolute http and https URLs with a host.
func CheckURL(raw string) error {
	_, err := ParseURL(raw)
	return err
}

// ParseURL is CheckURL that also returns the parsed URL.
func ParseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("empty url")
	}
	if len(raw) > MaxURL {
		return nil, fmt.Errorf("url longer than %d bytes", MaxURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes the whole URL, password and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("bad url: parse %q: %w", truncate(RedactURL(raw), 200), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url %q: scheme must be http or https", truncate(RedactURL(raw), 200))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("url %q has no host", truncate(RedactURL(raw), 200))
	}
	return u, nil
}

// RedactURL returns s for messages and logs: a URL with its password and
// the values of its query replaced by "xxxxx", since a query often carries
// the token of a signed URL; anything that is no URL is returned as it is,
// so that ids read as given. A task's id is its URL when the task is a bare
// URL, and a URL that no parser accepts still holds its secrets.
//
// A user name without a password, or with an empty one ("tok:@"), is
// hidden whole (https://xxxxx@h/), as a query part without a name is: it
// is as often an access token (GitHub's, an API key) as a name.
func RedactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		if !u.IsAbs() || !RedactUser(u) && u.RawQuery == "" {
			return s
		}
		u.RawQuery = maskQuery(u.RawQuery)
		return u.String()
	}
	// Unparseable: the userinfo is what precedes the last "@" of the
	// authority, as a parser would read it, and the query follows the
	// first "?".
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	rest, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery {
		query = "?" + maskQuery(query)
	}
	end := strings.IndexAny(rest, "/#")
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
		if user, pass, ok := strings.Cut(rest[:at], ":"); ok && (user == "" || pass != "") {
			rest = user + ":xxxxx@" + rest[at+1:]
		} else if at > 0 {
			rest = "xxxxx@" + rest[at+1:]
		}
	}
	return scheme + "://" + rest + query
}

// RedactUser hides the secrets of u's user information in place and
// reports whether it had any: a password becomes "xxxxx", and a user name
// without a password, or with an empty one ("tok@", "tok:@"), is hidden
// whole, since it is as often an access token as a name. Every URL that
// dl prints (a task's, a Redis server's) goes through it.
func RedactUser(u *url.URL) bool {
	pass, pw := u.User.Password()
	switch {
	case u.User.Username() != "" && pass == "":
		u.User = url.User("xxxxx")
	case pw:
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	default:
		return false
	}
	return true
}

// maskQuery keeps a query's names and hides its values; a part without a
// name (a bare token) is hidden whole.
func maskQuery(q string) string {
	if q == "" {
		return q
	}
	parts := strings.Split(q, "&")
	for i, p := range parts {
		if name, _, ok := strings.Cut(p, "="); ok {
			parts[i] = name + "=xxxxx"
		} else if p != "" {
			parts[i] = "xxxxx"
		}
	}
	return strings.Join(parts, "&")
}

// ParseResult decodes one result line.
func ParseResult(line []byte) (Result, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return Result{}, ErrEmpty
	}
	var r Result
	if err := json.Unmarshal(line, &r); err != nil {
		return Result{}, fmt.Errorf("not a JSON result line: %w", err)
	}
	if r.ID == "" {
		return Result{}, errors.New(`result line has no "id"`)
	}
	switch r.Outcome {
	case Done, Failed:
	default:
		return Result{}, fmt.Errorf("result %q: outcome %q is neither %q nor %q", r.ID, r.Outcome, Done, Failed)
	}
	if r.Outcome == Done && r.Path == "" {
		return Result{}, fmt.Errorf("result %q: done without a path", r.ID)
	}
	if r.Outcome == Done && r.Local {
		return Result{}, fmt.Errorf("result %q: done, yet marked as a failure of the local disk", r.ID)
	}
	// What the table's columns cannot hold is refused here, line by line:
	// in the database it would fail the whole batch the line came in.
	r.SHA256 = strings.ToLower(r.SHA256)
	switch {
	case len(r.ID) > 255:
		return Result{}, errors.New("result id longer than 255 bytes (the column is VARCHAR(255))")
	case r.SHA256 != "" && !isHex(r.SHA256, 64):
		return Result{}, fmt.Errorf("result %q: sha256 %q is not 64 hex digits", r.ID, truncate(r.SHA256, 80))
	case r.HTTP < 0 || r.HTTP > 999:
		return Result{}, fmt.Errorf("result %q: http_status %d is not an HTTP status", r.ID, r.HTTP)
	case r.Attempt < 0 || r.Attempt > math.MaxInt32:
		return Result{}, fmt.Errorf("result %q: attempt %d out of range", r.ID, r.Attempt)
	case r.Bytes < 0:
		return Result{}, fmt.Errorf("result %q: negative bytes %d", r.ID, r.Bytes)
	case r.Duration < 0 || r.Duration > maxDuration:
		return Result{}, fmt.Errorf("result %q: duration %g s out of range", r.ID, r.Duration)
	}
	return r, nil
}

// maxDuration bounds a result's duration in seconds: far beyond any
// download, and well inside the FLOAT column that stores it.
const maxDuration = 1e9

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Not inside a character: %q would show its first bytes as \x escapes.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
