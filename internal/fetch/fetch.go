// Package fetch downloads one task's URL into the download directory, for
// dl-fetch.
//
// A result of "done" means the file at Result.Path is complete and its bytes
// hash to Result.SHA256: bytes go to "<final>.part" first and reach the final
// name only by a rename after the byte count matched the announced length
// (and the expected checksum, when the task has one), so a crash or a cut
// connection can never leave a short file under the final name — the seed's
// worst bug. That is also why a file already at the final path is trusted as
// complete. A transfer that failed for a passing reason leaves its .part file
// (with the server's validators in "<final>.part.meta") for the next attempt
// to resume with a Range request.
//
// One Fetcher is shared by all of a process's concurrent transfers: its
// single HTTP client keeps connections to the origin alive between tasks,
// and its optional limits (transfers per host, bytes per second) hold for
// all of them together. An Observer sees every transfer's bytes as they
// arrive, for progress bars and metrics.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/time/rate"

	"github.com/dlkit/dl/internal/groupsync"
	"github.com/dlkit/dl/internal/layout"
	"github.com/dlkit/dl/internal/record"
)

// Options configure a Fetcher. Zero durations and counts take the defaults
// named below, except where zero is said to mean "none".
type Options struct {
	Dir    string        // download directory; default "."
	Layout layout.Layout // how files are arranged in Dir
	// Fsync makes a done result durable before it is reported: on the
	// local filesystems where syncfs(2) is a real sync, by one syncfs of
	// the filesystem shared by every transfer finishing meanwhile (see
	// fsSyncs); elsewhere, and with FsyncEach, by an fsync of the file
	// before its rename and of its directory after it. The CLI turns it on
	// by default.
	Fsync bool
	// FsyncEach syncs each file and its directory even where a syncfs of
	// the filesystem would do: for a filesystem shared with programs that
	// leave much unsynced data, which every syncfs would write back too.
	FsyncEach bool

	// ExpectNew says the tasks have no finished file yet (queue rows that
	// are not done), so a transfer does not look for one at the final path
	// before it downloads. A file that is there anyway (a worker crashed
	// between its rename and the row's mark) is found when the download is
	// renamed into place, and reported instead: one download too many in
	// that rare case, one path lookup less for every other file. Off, a
	// re-run of a list skips the files it already has.
	ExpectNew bool

	UserAgent string      // default UserAgent("")
	Header    http.Header // extra request headers, sent with every request

	ConnectTimeout time.Duration // TCP connect and TLS handshake; default 30s
	// StallTimeout cuts a transfer that receives less than 1 KiB in any
	// window this long, from the first connect on: a silent server and one
	// that trickles a byte a second alike. Default 60s.
	StallTimeout time.Duration
	MaxTime      time.Duration // whole Fetch call, retries included; 0 = none

	MaxSize      int64 // largest file accepted, in bytes; 0 = no limit
	MaxRedirects int   // default 10; negative = follow none

	// MinFree is the free space, in bytes, to leave on Dir's filesystem: a
	// task that starts below it fails as on a full disk (Local), before it
	// writes anything. 0 = none.
	MinFree int64

	// Retries is how many times a transient failure is retried in process,
	// after an exponential backoff with jitter (first retry within a
	// second), or after the server's Retry-After when that is at most a
	// minute. 0 = none: the failure goes back to the queue as retryable.
	Retries int
	// MaxAttempts caps the attempts of a task in total, counting those
	// before this call (Task.Attempt): in-process retries stop there, so
	// the row's attempt budget is never overdrawn. 0 = no cap.
	MaxAttempts int

	// Transfers is the most transfers talking to servers at once, across
	// all Fetch calls; 0 = no limit. A transfer gives its place back as soon
	// as its body is on disk, before the file is synced and renamed into
	// place, so a caller may run more Fetch calls than Transfers: the extra
	// ones finish files while the network stays busy, and a slow disk sync
	// does not leave a connection idle.
	Transfers int

	// PerHost is the most transfers at a time to one host (the task URL's
	// host and port); 0 = no limit. It is off by default because many jobs
	// fetch everything from one CDN or object store, which wants many
	// connections.
	PerHost int
	// LimitRate caps the bytes per second received by all transfers
	// together; 0 = no limit.
	LimitRate int64

	// Observer, when set, is told of every transfer's progress.
	Observer Observer
	Logger   *slog.Logger // default: discard
}

const (
	defaultConnectTimeout = 30 * time.Second
	defaultStallTimeout   = 60 * time.Second
	defaultMaxRedirects   = 10
	// maxRetryAfter bounds how long a worker slot waits for a server that
	// asked for patience; longer requests give the task back to the queue
	// instead, where another worker (or a later round) picks it up.
	maxRetryAfter = time.Minute
)

// Fetcher downloads tasks. It is safe for concurrent use.
type Fetcher struct {
	o         Options
	client    *http.Client
	transport *http.Transport
	log       *slog.Logger
	// firstBackoff is the mean delay before the first retry; tests shorten it.
	firstBackoff time.Duration
	dirs         sync.Map                 // directories known to exist
	shards       sync.Map                 // shard name -> whether something other than a directory holds it
	syncer       *groupsync.Group[string] // group commit of directory fsyncs
	fss          *fsSyncs                 // group commit of syncfs; nil: per-file syncs only
	transfers    chan struct{}            // nil: no limit on transfers at once
	hosts        *hostLimit               // nil: no per-host limit
	limit        *rate.Limiter            // nil: no bandwidth limit
	large        largeCopies              // copies of large bodies in progress
	room         *room                    // nil: no floor of free space
}

// New checks o and builds the Fetcher and its HTTP client.
func New(o Options) (*Fetcher, error) {
	switch {
	case o.ConnectTimeout < 0, o.StallTimeout < 0, o.MaxTime < 0:
		return nil, errors.New("timeouts must not be negative")
	case o.MaxSize < 0:
		return nil, errors.New("max size must not be negative")
	case o.MinFree < 0:
		return nil, errors.New("min free must not be negative")
	case o.Retries < 0:
		return nil, errors.New("retries must not be negative")
	case o.Transfers < 0:
		return nil, errors.New("transfer limit must not be negative")
	case o.PerHost < 0:
		return nil, errors.New("per-host limit must not be negative")
	case o.LimitRate < 0:
		return nil, errors.New("rate limit must not be negative")
	case o.Layout != layout.Sharded && o.Layout != layout.Flat:
		return nil, fmt.Errorf("unknown layout %d", int(o.Layout))
	}
	o.Dir = filepath.Clean(o.Dir) // "" becomes "."; ensureDir compares paths
	if o.UserAgent == "" {
		o.UserAgent = UserAgent("")
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = defaultConnectTimeout
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = defaultStallTimeout
	}
	if o.MaxRedirects == 0 {
		o.MaxRedirects = defaultMaxRedirects
	}
	o.Header = o.Header.Clone()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	tr := NewTransport(o.ConnectTimeout)
	var fss *fsSyncs
	if o.Fsync && !o.FsyncEach {
		fss = newFSSyncs(o.Logger)
	}
	return &Fetcher{
		o:            o,
		client:       &http.Client{Transport: checkLocation{tr}, CheckRedirect: checkRedirect(o.MaxRedirects)},
		transport:    tr,
		log:          o.Logger,
		firstBackoff: 500 * time.Millisecond,
		syncer:       groupsync.New(syncDir),
		fss:          fss,
		transfers:    newTransferLimit(o.Transfers),
		hosts:        newHostLimit(o.PerHost),
		limit:        newRateLimit(o.LimitRate),
		room:         newRoom(o.Dir, o.MinFree, o.Logger),
	}, nil
}

// Close releases idle connections and the descriptors held for syncing
// filesystems. Fetches in flight are not affected.
func (f *Fetcher) Close() {
	f.transport.CloseIdleConnections()
	f.fss.close()
}

// UserAgent is the default User-Agent header: it names the tool honestly so
// an origin's operator can see who is downloading and find the project. An
// empty version is taken from the build.
func UserAgent(version string) string {
	if version == "" {
		version = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
	}
	return "dl/" + version + " (+https://github.com/dlkit/dl)"
}

// paths are the files of one task, and its URL, parsed once.
type paths struct {
	url   *url.URL
	final string // where the complete file goes
	part  string // the bytes so far
	meta  string // the validators of those bytes, for resuming
	err   error  // the shard's name holds a link (errShardLink): nothing may be done at these paths
}

func (f *Fetcher) paths(t record.Task) paths {
	final, err := f.final(t)
	return paths{final: final, part: final + ".part", meta: final + ".part.meta", err: err}
}

// final is where the task's finished file goes: its layout's path in the
// download directory, unless its shard's name is held by a file. dl may share
// the original design's download directory (README, migration), where that
// saved files under the URL's basename: "123" for ".../items/123" holds the
// name of shard 123, and URLs ending in three-digit numbers could hold a
// quarter of all shards, every task of which would fail. Those tasks go into
// the download directory itself, under the name --layout flat gives them.
// A symbolic link at the shard's name is no such file but an error
// (shardTaken), returned with the path it would have led into.
func (f *Fetcher) final(t record.Task) (string, error) {
	rel := f.o.Layout.Path(t)
	if f.o.Layout == layout.Sharded {
		taken, err := f.shardTaken(path.Dir(rel))
		if err != nil {
			return filepath.Join(f.o.Dir, rel), err
		}
		if taken {
			rel = layout.Flat.Path(t)
		}
	}
	return filepath.Join(f.o.Dir, rel), nil
}

// shardTaken tells whether something other than a directory holds the
// shard's name. The answer is remembered once the name exists, so it costs
// one lstat per shard and process; a missing shard is looked at again, as
// the first task in it will make the directory. A symbolic link there is
// errShardLink, not followed and not remembered, so that the shard's tasks
// go ahead once someone has removed it.
func (f *Fetcher) shardTaken(shard string) (bool, error) {
	if v, ok := f.shards.Load(shard); ok {
		return v.(bool), nil
	}
	dir := filepath.Join(f.o.Dir, shard)
	fi, err := os.Lstat(dir)
	if err != nil {
		return false, nil // missing, or trouble that making the directory reports
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return false, shardLinkError(dir)
	}
	taken := !fi.IsDir()
	f.shards.Store(shard, taken)
	return taken, nil
}

// Fetch downloads t and reports what happened. It never panics and always
// returns a result: done with the file's path, size and sha256, or failed
// with one line of error and whether trying again later may help. Transient
// failures are retried in process up to Options.Retries times first; a
// failure of the local disk (full, read-only, not ours to write) is not, and
// is marked Local.
func (f *Fetcher) Fetch(ctx context.Context, t record.Task) record.Result {
	res, _ := f.FetchUnlessStopped(ctx, ctx, t)
	return res
}

// FetchUnlessStopped is Fetch for a caller that stops in two steps, as
// dl-fetch does on a first and a second signal. ctx ends everything, the
// transfer in flight included. stop, ctx or a context derived from it (so
// that ctx ends it too), ends only the waiting. A task still waiting for
// its host's slot or a transfer slot when stop ends is not started: nothing
// of it was asked of the origin, and started is false, so that the caller
// gives the task back instead of reporting res. A transfer that failed is
// not tried again after stop: its retryable failure is returned, for the
// queue's backoff. A transfer under way when stop ends runs to its end.
func (f *Fetcher) FetchUnlessStopped(stop, ctx context.Context, t record.Task) (res record.Result, started bool) {
	start := time.Now()
	ob := &observed{f: f, t: t}
	res = record.Result{ID: t.ID, URL: t.URL, Token: t.Token, Outcome: record.Failed, Attempt: t.Attempt}
	defer func() {
		if p := recover(); p != nil {
			f.log.Error("fetch panicked", "id", record.RedactURL(t.ID), "panic", p, "stack", string(debug.Stack()))
			res = record.Result{ID: t.ID, URL: t.URL, Token: t.Token, Outcome: record.Failed,
				Attempt: t.Attempt + 1, Error: oneLine(fmt.Sprintf("internal error: %v", p)), Retryable: true}
			started = true // a task that crashes Fetch is reported, never handed out again untried
		}
		res.Duration = time.Since(start).Seconds()
		if started || ob.tr != nil {
			ob.begin().End(res)
		}
	}()

	u, err := record.ParseURL(t.URL)
	if err != nil {
		res.Attempt++
		res.Error = oneLine(err.Error())
		return res, true
	}
	// Waiting (for a slot, or before a retry) ends with stop, and so with
	// ctx, from which stop derives: at once, so that a task that gets its
	// slot just after the stop is not started.
	wait := stop
	if f.o.MaxTime > 0 {
		// The max time counts the waits too.
		deadline := time.Now().Add(f.o.MaxTime)
		var cancel, cancelWait context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, deadline, errMaxTime)
		defer cancel()
		wait, cancelWait = context.WithDeadlineCause(stop, deadline, errMaxTime)
		defer cancelWait()
	}
	p := f.paths(t)
	if p.err != nil {
		// Only the download directory's owner can remove the link, and
		// until then every try would end the same: the task fails for
		// good, naming the link, before it asks the origin anything.
		res.Attempt++
		res.Error = oneLine(p.err.Error())
		return res, true
	}
	p.url = u
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(f.firstBackoff),
		backoff.WithMultiplier(2),
		backoff.WithMaxInterval(30*time.Second),
		backoff.WithMaxElapsedTime(0),
	)
	for failures := 0; ; {
		o := f.politeAttempt(wait, ctx, t, p, ob)
		if o.unstarted && stop.Err() != nil {
			if failures > 0 {
				// A retry the stop came before: the failure before it
				// stands, and this one, which never asked, is not charged.
				return res, true
			}
			started = false
		} else {
			started = true
		}
		res.HTTP = o.status
		if o.err == nil {
			res.Outcome, res.Path, res.Bytes, res.SHA256 = record.Done, o.path, o.bytes, o.sum
			res.Error, res.Retryable = "", false
			res.Attempt = t.Attempt + failures
			return res, true
		}
		if f.diskRefused(o.err) {
			// Our disk's failure, not the task's: it is not charged an
			// attempt (the failures before it in this call are), and
			// waiting here would not free any space.
			res.Attempt = t.Attempt + failures
			res.Error, res.Retryable, res.Local = oneLine(o.err.Error()), true, true
			return res, started
		}
		failures++
		res.Attempt = t.Attempt + failures
		res.Error, res.Retryable = oneLine(o.err.Error()), o.retryable
		spent := f.o.MaxAttempts > 0 && res.Attempt >= f.o.MaxAttempts
		// After a stop a failed transfer goes back to the queue, whose
		// backoff retries it, rather than holding up the process's exit.
		if !o.retryable || failures > f.o.Retries || spent || wait.Err() != nil || o.retryAfter > maxRetryAfter {
			return res, started
		}
		delay := max(bo.NextBackOff(), o.retryAfter)
		if d, ok := ctx.Deadline(); ok && time.Until(d) < delay {
			return res, started
		}
		f.log.Info("retrying", "id", record.RedactURL(t.ID), "url", redact(t.URL), "error", res.Error, "after", delay, "failures", failures)
		ob.begin().Retry(res.Error, delay)
		timer := time.NewTimer(delay)
		select {
		case <-wait.Done():
			timer.Stop()
			return res, true
		case <-timer.C:
		}
	}
}

// politeAttempt is one attempt inside the transfer and per-host limits.
// The slots are held for the transfer only: not through the backoff before
// a retry, nor while the finished body is synced and renamed. wait ends the
// wait for the slots, ctx the transfer; an attempt whose wait ended, or
// that got its slots only as wait ended, is unstarted: it asked nothing.
func (f *Fetcher) politeAttempt(wait, ctx context.Context, t record.Task, p paths, ob *observed) outcome {
	waitErr := func(err error) outcome {
		if errors.Is(err, context.Canceled) {
			err = errors.New("canceled")
		}
		o := failure(true, fmt.Errorf("GET %s: waiting for a connection to %s: %w", redact(t.URL), hostOf(t.URL), err))
		o.unstarted = true
		return o
	}
	// The host's slot first: a transfer waiting for a busy host must not
	// hold one of the transfer slots that others could use meanwhile.
	releaseHost, err := f.hosts.acquire(wait, t.URL)
	if err != nil {
		return waitErr(err)
	}
	if f.transfers != nil {
		select {
		case f.transfers <- struct{}{}:
		case <-wait.Done():
			releaseHost()
			return waitErr(context.Cause(wait))
		}
	}
	bodyDone := sync.OnceFunc(func() {
		releaseHost()
		if f.transfers != nil {
			<-f.transfers
		}
	})
	defer bodyDone()
	// A slot and the stop may come at once, and select picks either: a
	// stop that came first must win, or a task could start after it.
	if wait.Err() != nil {
		return waitErr(context.Cause(wait))
	}
	return f.attempt(ctx, t, p, ob.begin(), bodyDone)
}

func newTransferLimit(n int) chan struct{} {
	if n <= 0 {
		return nil
	}
	return make(chan struct{}, n)
}
