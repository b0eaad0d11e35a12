package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dlkit/dl/internal/record"
)

// outcome is what one attempt came to: a complete file (err nil) or a
// failure with its class.
type outcome struct {
	path   string
	bytes  int64
	sum    string
	status int // last HTTP status seen, 0 for none

	err        error
	retryable  bool
	retryAfter time.Duration // the server's Retry-After, on 429 and 503
	// unstarted: the attempt ended while it waited for a slot, before it
	// touched the disk or the network.
	unstarted bool
}

// Causes a request's context is cancelled with, so that a failed read can
// say which limit ended it rather than "context canceled".
var (
	errStalled = errors.New("stalled")
	errMaxTime = errors.New("max time exceeded")
)

// Errors the redirect policy stops a request with; neither is worth a retry.
var (
	errRedirects = errors.New("too many redirects")
	errScheme    = errors.New("scheme must be http or https")
)

func failure(retryable bool, err error) outcome {
	return outcome{err: err, retryable: retryable}
}

// diskRefused tells whether err is the local filesystem refusing to store
// anything more: full, over quota, read-only or failing, or not ours to write (the
// download directory, or a parent it needs, denies us: a service user never
// given it), or not a directory where one must be (the download directory,
// a parent of it or a shard's name is a file, or the download directory or
// a parent of it is a symbolic link to a directory that does not exist).
// That is no fault of the task, and while it lasts no retry of it, nor any
// other task, can succeed on this machine. A link at a shard's name
// (errShardLink) is not such a failure: it holds up only the tasks of that
// shard, one in 4,096, and fails each of them.
//
// No network error carries the codes of a full disk, so they count from
// anywhere. Permission errors do come from the network too (a firewall
// makes connect or send fail with EPERM or EACCES), so they count only as
// the error of a filesystem operation on a path of the download directory,
// and ENOTDIR, which no task's name can cause (names never hold a slash),
// counts the same way. So does EIO, a disk that fails to read or write: a
// worker on a failing disk that went on taking tasks would fail each at
// once and charge it an attempt, and so use up the attempts of the whole
// table within minutes, while other hosts could have downloaded them.
func (f *Fetcher) diskRefused(err error) bool {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS) ||
		errors.Is(err, errDanglingDir) { // only ever about the download directory or its parents
		return true
	}
	if !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.ENOTDIR) &&
		!errors.Is(err, syscall.EIO) {
		return false
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return f.downloadPath(pe.Path)
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return f.downloadPath(le.Old) && f.downloadPath(le.New)
	}
	return false
}

// downloadPath tells whether path is in the download directory or is one of
// the parents that ensureDir may have to create for it.
func (f *Fetcher) downloadPath(path string) bool {
	path = filepath.Clean(path)
	if f.inDownloadDir(path) {
		return true
	}
	rel, err := filepath.Rel(path, f.o.Dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// transportFailure classifies an error from sending the request or reading
// the body. ctx is the request's context, whose cause names a stall or the
// max time; stall tells how slow the stall was. Only what certainly repeats is final: a redirect the policy
// refused or whose Location does not parse, and a certificate that does not verify. Everything else on the
// network — refused connections, resets, timeouts, DNS — passes, so it is
// retryable.
func (f *Fetcher) transportFailure(ctx context.Context, stall *stallWatch, rawURL string, err error) outcome {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if ctx.Err() != nil {
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, errStalled):
			err = fmt.Errorf("stalled: %d bytes in %s", stall.got.Load(), f.o.StallTimeout)
		case errors.Is(cause, errMaxTime):
			err = fmt.Errorf("max time %s exceeded", f.o.MaxTime)
		case errors.Is(cause, context.Canceled):
			err = errors.New("canceled")
		}
	}
	retryable := true
	var (
		certErr    *tls.CertificateVerificationError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		locErr     *locationError
	)
	if errors.Is(err, errRedirects) || errors.Is(err, errScheme) || errors.As(err, &locErr) ||
		errors.As(err, &certErr) || errors.As(err, &unknownCA) ||
		errors.As(err, &hostErr) || errors.As(err, &invalidErr) {
		retryable = false
	}
	o := failure(retryable, fmt.Errorf("GET %s: %w", redact(rawURL), err))
	if locErr != nil {
		o.status = locErr.status
	}
	return o
}

// statusFailure classifies an HTTP error status: the server may do better
// later on 5xx, 408 (it timed out waiting for us) and 429 (rate limit);
// other statuses describe the resource and will not change by asking again.
func statusFailure(rawURL string, resp *http.Response) outcome {
	code := resp.StatusCode
	o := failure(code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests,
		fmt.Errorf("GET %s: status %s", redact(rawURL), statusText(code)))
	o.status = code
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		o.retryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
		if o.retryAfter > maxRetryAfter {
			o.err = fmt.Errorf("%w (retry after %s)", o.err, o.retryAfter)
		}
	}
	return o
}

// statusText uses Go's reason phrase, not the server's, which is untrusted
// text that would end up in the database.
func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// retryAfter reads a Retry-After header: seconds or an HTTP date. Garbage
// and past dates mean no wait beyond the backoff.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		// Cap before multiplying so a huge value cannot overflow into a
		// negative duration.
		return time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// redact hides a URL's password and query values: error lines end up in the
// database and in logs, and the query of a signed URL holds its token.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		raw = u.String() // escaped, so that a space does not split the URL (dl-stat cuts URLs at one)
	}
	return record.RedactURL(raw)
}

// oneLine keeps a result's error to a single line whatever an error's text
// holds.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// errDanglingDir is ensureDir's report of a directory it needs (the download
// directory or a parent of it) that is a symbolic link to nothing: the disk
// it pointed to is not mounted, say. A shard's name is never followed
// (errShardLink).
var errDanglingDir = errors.New("a symbolic link to a directory that does not exist")
