package origin

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultSize is the body size of /files/<name> when the URL has no size.
const DefaultSize = 1024

// knobs is a parsed query string. A negative byte count means "not set".
type knobs struct {
	size       int64
	delay      time.Duration
	status     int
	fail       int
	retryAfter int
	short      int64
	reset      int64
	trickle    time.Duration
	endless    bool
	gzip       bool
	redirect   int
	loop       bool
	bigHeader  bool
	cl         int64
	noRange    bool
	cd         string
	noETag     bool
}

// parseKnobs rejects unknown or malformed knobs: a typo in a test URL must
// fail loudly rather than silently test the happy path.
func parseKnobs(q url.Values) (knobs, error) {
	k := knobs{size: DefaultSize, short: -1, reset: -1, cl: -1, retryAfter: -1}
	for name, vals := range q {
		v := vals[len(vals)-1]
		var err error
		switch name {
		case "size":
			k.size, err = parseBytes(v)
		case "delay":
			k.delay, err = parseDuration(v)
		case "status":
			k.status, err = parseInt(v, 300, 599)
		case "fail":
			k.fail, err = parseInt(v, 0, 1<<30)
		case "retry_after":
			k.retryAfter, err = parseInt(v, 0, 1<<30)
		case "short":
			k.short, err = parseBytes(v)
		case "reset":
			k.reset, err = parseBytes(v)
		case "trickle":
			k.trickle, err = parseDuration(v)
			if err == nil && k.trickle <= 0 {
				err = fmt.Errorf("must be positive")
			}
		case "endless":
			k.endless, err = strconv.ParseBool(v)
		case "gzip":
			k.gzip, err = strconv.ParseBool(v)
		case "redirect":
			k.redirect, err = parseInt(v, 0, 1000)
		case "loop":
			k.loop, err = strconv.ParseBool(v)
		case "bigheader":
			k.bigHeader, err = strconv.ParseBool(v)
		case "cl":
			k.cl, err = parseBytes(v)
		case "norange":
			k.noRange, err = strconv.ParseBool(v)
		case "cd":
			k.cd = v
		case "noetag":
			k.noETag, err = strconv.ParseBool(v)
		default:
			return k, fmt.Errorf("unknown knob %q", name)
		}
		if err != nil {
			return k, fmt.Errorf("knob %s=%q: %w", name, v, err)
		}
	}
	return k, nil
}

func parseInt(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("not an integer")
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("out of range [%d, %d]", lo, hi)
	}
	return n, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("not a duration like 100ms")
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration")
	}
	return d, nil
}

// parseBytes accepts a byte count with an optional binary suffix (k, m, g),
// so scripts can ask for size=1g instead of counting digits.
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(strings.ToLower(s), "k"):
		mult = 1 << 10
	case strings.HasSuffix(strings.ToLower(s), "m"):
		mult = 1 << 20
	case strings.HasSuffix(strings.ToLower(s), "g"):
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a byte count like 1024 or 4k")
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("too large")
	}
	return n * mult, nil
}
