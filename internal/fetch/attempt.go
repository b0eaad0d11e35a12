package fetch

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/dlkit/dl/internal/layout"
	"github.com/dlkit/dl/internal/record"
)

// maxDrain is how much of an unwanted body is read so the connection can be
// reused; past it, closing the connection is cheaper.
const maxDrain = 64 << 10

// attempt makes one try at the task: it recognises a finished file, locks and
// prepares the part file, and transfers. bodyDone is called once the body is
// on disk, before the file is finished.
func (f *Fetcher) attempt(ctx context.Context, t record.Task, ps paths, tr Transfer, bodyDone func()) outcome {
	bufp := bufPool.Get().(*[]byte)
	putBuf := sync.OnceFunc(func() { bufPool.Put(bufp) })
	defer putBuf()
	buf := *bufp
	// A file being finished needs no copy buffer: it goes back with the
	// transfer's slot, so tasks finishing files cost no buffer memory.
	done := func() { bodyDone(); putBuf() }

	if !f.o.ExpectNew {
		if o, ok := f.complete(ps.final, t, buf); ok {
			return o
		}
	}
	if err := f.room.check(); err != nil {
		return failure(true, err)
	}
	p, err := f.openPart(ps)
	if errors.Is(err, errBusy) {
		f.log.Debug("part file busy; downloading into a private one", "id", record.RedactURL(t.ID), "path", ps.part)
		p, err = openPrivatePart(ps.final)
	}
	if err != nil {
		return failure(!errors.Is(err, errShardLink), fmt.Errorf("%s: %w", ps.part, err))
	}
	defer p.close()
	p.progress = tr
	p.writeBehind = f.o.Fsync
	// Another transfer of the task may have finished between the check
	// above and the lock. A part file we created ourselves needs no second
	// look: if that happened, the rename at the end finds the final file
	// and reports it.
	if !p.fresh {
		if o, ok := f.complete(ps.final, t, buf); ok {
			p.remove()
			return o
		}
	}
	if err := p.prepare(t, buf); err != nil {
		p.remove()
		return failure(true, err)
	}
	if p.size > 0 {
		f.log.Debug("resuming", "id", record.RedactURL(t.ID), "path", ps.part, "from", p.size)
	}
	o, restart := f.transfer(ctx, t, ps, p, buf, done)
	if restart {
		f.log.Info("resume refused; starting over", "id", record.RedactURL(t.ID), "error", o.err)
		o, _ = f.transfer(ctx, t, ps, p, buf, done)
	}
	// Keep the bytes only for a failure that a later attempt may resume.
	if o.err != nil && (!o.retryable || !p.resumable(t)) {
		p.remove()
	}
	return o
}

// openPart opens the task's part file, creating its directory the first
// time; the Fetcher remembers directories it made so that a small file costs
// no extra stat. A directory removed behind its back is made again.
func (f *Fetcher) openPart(ps paths) (*part, error) {
	dir := filepath.Dir(ps.part)
	for try := 0; ; try++ {
		if err := f.knownDir(dir); err != nil {
			return nil, err
		}
		p, err := openPart(ps.part, ps.meta)
		if errors.Is(err, fs.ErrNotExist) && try == 0 {
			f.dirs.Delete(dir)
			continue
		}
		return p, err
	}
}

// knownDir makes sure dir exists, once per directory: the Fetcher remembers
// the directories it has made or found.
func (f *Fetcher) knownDir(dir string) error {
	if _, ok := f.dirs.Load(dir); ok {
		return nil
	}
	if err := f.ensureDir(dir); err != nil {
		return err
	}
	f.dirs.Store(dir, struct{}{})
	return nil
}

// complete recognises a file already at its final path. Only our rename
// puts a file there, after all checks, so it is complete by construction and
// only needs hashing for the result, unless a power cut took its bytes
// before their sync: its seal (sealName) then tells, and it is downloaded
// again. When the task expects another checksum
// the file is removed and downloaded again (the origin or the expectation
// changed since). ok is false when there is nothing to report.
//
// With durable writes the file is synced before it is reported: the
// transfer that renamed it there (another worker given the same task, or a
// process that died before its sync) may not have synced it yet, and a done
// row must not outlive its file in a power cut. A failed sync does not
// remove the file, unlike finish with a file of its own whose sync alone
// fails too: this one may be an old file whose origin has gone, and the
// error, which syncfs reports for the whole filesystem, may be another
// file's; the failure is retryable and the retry syncs again.
func (f *Fetcher) complete(final string, t record.Task, buf []byte) (o outcome, ok bool) {
	file, fi, err := openRegular(final)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return outcome{}, false
	case errors.Is(err, errNotRegular):
		// Not a file of ours: only a rename of a checked part file puts
		// one there. It is left as it is, for whoever planted it to
		// answer for, and the task fails until someone removes it.
		return failure(false, err), true
	case err != nil:
		return failure(true, fmt.Errorf("open existing file: %w", err)), true
	}
	defer file.Close()
	sum, n, err := hashFile(file, buf)
	if err != nil {
		return failure(true, fmt.Errorf("%s: %w", final, err)), true
	}
	if sealed := sealOf(file); sealed != "" && sealed != sum {
		f.log.Warn("file in place lost bytes since it was published (a power cut before its sync?); downloading it again",
			"id", record.RedactURL(t.ID), "path", final, "sha256", sum, "published", sealed)
		if err := removeFound(final, fi); err != nil {
			return failure(true, fmt.Errorf("remove file that lost bytes: %w", err)), true
		}
		return outcome{}, false
	}
	if t.SHA256 != "" && !strings.EqualFold(sum, t.SHA256) {
		f.log.Warn("existing file does not match the expected sha256; downloading it again",
			"id", record.RedactURL(t.ID), "path", final, "sha256", sum, "expected", t.SHA256)
		if err := removeFound(final, fi); err != nil {
			return failure(true, fmt.Errorf("remove mismatching file: %w", err)), true
		}
		return outcome{}, false
	}
	if err := f.settle(final, file, fi); err != nil {
		return failure(true, fmt.Errorf("%s: %w", final, err)), true
	}
	return outcome{path: final, bytes: n, sum: sum}, true
}

// removeFound removes the file complete found and hashed, fi, if its path
// still holds it. Anything else there now (another transfer's file, or what
// someone put there meanwhile) is left: the download goes ahead, and its
// rename, which replaces nothing, finds that and looks at it again.
func removeFound(path string, fi os.FileInfo) error {
	now, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !os.SameFile(fi, now) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// settle makes a file found in place durable, as finish does for one of
// ours: a syncfs of its filesystem where that serves, or an fsync of the
// file, through the descriptor it was hashed with, and of its directory.
func (f *Fetcher) settle(path string, file *os.File, fi os.FileInfo) error {
	if !f.o.Fsync {
		return nil
	}
	dir := filepath.Dir(path)
	if err := f.knownDir(dir); err != nil { // registers its filesystem
		return err
	}
	if dev, ok := f.fss.covers(fi); ok {
		return f.fss.sync(dev)
	}
	if err := file.Sync(); err != nil {
		return fmt.Errorf("sync existing file: %w", err)
	}
	return f.syncer.Sync(dir)
}

// transfer sends one request and streams its body into the part file.
// bodyDone is called when the body is in, before finishing; buf must not be
// used after it.
// restart asks the caller for one more request from byte 0: the server
// answered a resume in a way that voids the bytes we had.
func (f *Fetcher) transfer(ctx context.Context, t record.Task, ps paths, p *part, buf []byte, bodyDone func()) (o outcome, restart bool) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := watchStall(ctx, f.o.StallTimeout, cancel, f.limit)
	defer stall.stop()

	req := newRequest(ctx, ps.url)
	f.setHeaders(req, p)
	resp, err := f.client.Do(req)
	if err != nil {
		o := f.transportFailure(ctx, stall, t.URL, err)
		if resp != nil { // a redirect the policy refused
			o.status = resp.StatusCode
		}
		return o, false
	}
	defer resp.Body.Close()
	defer func() {
		if o.status == 0 {
			o.status = resp.StatusCode
		}
	}()
	stall.r = resp.Body
	body := stall
	// Only failures name the request; most transfers never need it.
	where := func() string { return "GET " + redact(t.URL) }

	from := p.size
	expect := resp.ContentLength // body bytes to come, -1 if not announced
	total := expect              // the whole file's size, -1 if not known
	// The name the server suggests for a task that names no file. A resume
	// keeps the one the response that began the part file suggested, which
	// its sidecar carries: the file ends at the same name however its
	// download went.
	name := f.dispositionName(t, resp)
	if from > 0 && p.meta.Name != "" {
		name = p.meta.Name
	}
	switch code := resp.StatusCode; {
	case code == http.StatusPartialContent:
		first, last, tot, err := contentRange(resp.Header.Get("Content-Range"))
		switch {
		case err != nil || first != from:
			drain(body)
			if from == 0 {
				return failure(true, fmt.Errorf("%s: partial content %q for a request of the whole file", where(), resp.Header.Get("Content-Range"))), false
			}
			if err := p.reset(); err != nil {
				return failure(true, err), false
			}
			return failure(true, fmt.Errorf("%s: asked to resume at byte %d, got %q", where(), from, resp.Header.Get("Content-Range"))), true
		case from == 0 && (tot < 0 || last+1 != tot):
			drain(body)
			return failure(true, fmt.Errorf("%s: partial content %q for a request of the whole file", where(), resp.Header.Get("Content-Range"))), false
		case expect >= 0 && expect != last-first+1:
			drain(body)
			return failure(true, fmt.Errorf("%s: content-length %d does not match content-range %q", where(), expect, resp.Header.Get("Content-Range"))), false
		}
		if from > 0 && p.meta.changed(resp.Header) {
			// The range of another version of the file: an origin that
			// ignores If-Range (as some object stores do) answers with
			// whatever it holds now, and the bytes we have are of the
			// version the part file began with.
			drain(body)
			was := p.meta.validator()
			if err := p.reset(); err != nil {
				return failure(true, err), false
			}
			return failure(true, fmt.Errorf("%s: asked to resume a file whose validator was %s, got a range of %s", where(), was, respValidator(resp.Header))), true
		}
		expect, total = last-first+1, tot
		if from > 0 && p.meta.Size >= 0 {
			switch {
			case total < 0:
				// "bytes N-M/*" may stop short of the end; the end is
				// where the answer that began the part file put it.
				total = p.meta.Size
			case total != p.meta.Size:
				// Another size is another file: the bytes we have
				// belong to an earlier one.
				drain(body)
				if err := p.reset(); err != nil {
					return failure(true, err), false
				}
				return failure(true, fmt.Errorf("%s: resumed a file of %d bytes, got %q", where(), p.meta.Size, resp.Header.Get("Content-Range"))), true
			}
		}
		if from == 0 {
			if err := p.begin(metaFrom(t.URL, resp.Header, total, name)); err != nil {
				return failure(true, err), false
			}
		}
	case code >= 200 && code < 300:
		if from > 0 {
			// The whole file came back: the server ignores ranges, or the
			// file changed and If-Range said so.
			if err := p.reset(); err != nil {
				return failure(true, err), false
			}
			from = 0
		}
		if tooBig(f.o.MaxSize, total) {
			return failure(false, fmt.Errorf("%s: size %d exceeds max size %d", where(), total, f.o.MaxSize)), false
		}
		name = f.dispositionName(t, resp) // a new file: the sidecar's name was the old one's
		if err := p.begin(metaFrom(t.URL, resp.Header, total, name)); err != nil {
			return failure(true, err), false
		}
	case code == http.StatusRequestedRangeNotSatisfiable && from > 0:
		drain(body)
		// Nothing left to send means the part file already holds the whole
		// file (we died between its last byte and the rename). It is the
		// same version, or the server would have ignored the range because
		// of If-Range and sent it all; prepare resumes without a validator
		// only when the expected sha256 checks the result.
		if _, _, tot, err := contentRange(resp.Header.Get("Content-Range")); err == nil && tot == from {
			final, o, found := f.namedFinal(t, ps, p, name, buf)
			if found {
				return o, false
			}
			bodyDone()
			return f.finish(t, final, p), false
		}
		if err := p.reset(); err != nil {
			return failure(true, err), false
		}
		return statusFailure(t.URL, resp), true
	default:
		drain(body)
		return statusFailure(t.URL, resp), false
	}
	size := total
	if expect >= 0 {
		size = max(size, from+expect)
	}
	if tooBig(f.o.MaxSize, size) {
		return failure(false, fmt.Errorf("%s: size %d exceeds max size %d", where(), size, f.o.MaxSize)), false
	}

	final, o, found := f.namedFinal(t, ps, p, name, buf)
	if found {
		return o, false
	}

	limit := int64(-1)
	if f.o.MaxSize > 0 {
		limit = f.o.MaxSize
	}
	p.progress.Body(from, size)
	way, copied := f.large.start(expect, runtime.GOMAXPROCS(0))
	err = p.write(body, limit, way, buf)
	copied()
	got := p.size - from
	var local *localError
	switch {
	case expect >= 0 && got > expect:
		// More than the range announced (a 206 with no Content-Length):
		// which bytes are the file's is unknown, so none is kept for a
		// resume, whatever ended the body.
		if err := p.reset(); err != nil {
			return failure(true, err), false
		}
		return failure(true, fmt.Errorf("%s: body longer than announced: got %d of %d bytes", where(), got, expect)), false
	case errors.Is(err, errTooBig):
		return failure(false, fmt.Errorf("%s: body exceeds max size %d", where(), f.o.MaxSize)), false
	case errors.As(err, &local):
		return failure(true, err), false
	case errors.Is(err, io.ErrUnexpectedEOF) && expect >= 0:
		return failure(true, fmt.Errorf("%s: short body: got %d of %d bytes", where(), got, expect)), false
	case err != nil:
		return f.transportFailure(ctx, stall, t.URL, fmt.Errorf("read body after %d bytes: %w", got, err)), false
	case expect >= 0 && got != expect:
		return failure(true, fmt.Errorf("%s: short body: got %d of %d bytes", where(), got, expect)), false
	case total >= 0 && p.size != total:
		return failure(true, fmt.Errorf("%s: partial content ended at byte %d of %d", where(), p.size, total)), false
	}
	bodyDone()
	return f.finish(t, final, p), false
}

// newRequest is http.NewRequestWithContext for a GET of a URL parsed
// already: an empty URL parses for free, and the parsed one takes its place.
func newRequest(ctx context.Context, u *url.URL) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "", nil) // cannot fail: valid method, empty URL
	u2 := *u
	u2.Host = strings.TrimSuffix(u2.Host, ":") // as NewRequest does: "host:" means the default port
	req.URL, req.Host = &u2, u2.Host
	return req
}

// setHeaders builds the request's headers: the configured ones, then ours,
// which must win. Accept-Encoding is fixed to identity because the file must
// hold the resource's bytes, not a compressed transfer of them.
func (f *Fetcher) setHeaders(req *http.Request, p *part) {
	for k, v := range f.o.Header {
		req.Header[k] = append([]string(nil), v...)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", f.o.UserAgent)
	}
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Del("Range")
	req.Header.Del("If-Range")
	if p.size > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(p.size, 10)+"-")
		if v := p.meta.validator(); v != "" {
			req.Header.Set("If-Range", v)
		}
	}
}

// namedFinal is where the task's file goes when the server suggested name
// for it ("" for none): the task's final path under that name, unless
// that is the task's own part file or sidecar, which would have one
// published onto the other; the default name serves then, as without one.
// Only the default name was looked at before the download: a file found
// at the suggested one is reported (found) as complete reports it, and the
// part file goes. So is a link found now at the shard's name (shardTaken),
// as a final failure.
func (f *Fetcher) namedFinal(t record.Task, ps paths, p *part, name string, buf []byte) (final string, o outcome, found bool) {
	if name == "" {
		return ps.final, outcome{}, false
	}
	named := t
	named.Name = name
	final, err := f.final(named)
	if err != nil {
		return final, failure(false, err), true
	}
	if final == ps.part || final == ps.meta {
		return ps.final, outcome{}, false
	}
	if o, ok := f.complete(final, t, buf); ok {
		if o.err == nil {
			p.remove()
		}
		return final, o, true
	}
	return final, outcome{}, false
}

// dispositionName is the server's suggested name, used only when neither the
// task nor the URL names the file.
func (f *Fetcher) dispositionName(t record.Task, resp *http.Response) string {
	h := resp.Header.Get("Content-Disposition")
	if h == "" || t.Name != "" || layout.URLName(t.URL) != "" {
		return ""
	}
	return layout.DispositionName(h)
}

// finish checks and publishes a complete part file: sync, compare the
// expected checksum, rename into place (still holding the lock, so no other
// transfer can touch the bytes in between), sync the directory; or, where a
// syncfs serves, rename and then wait for a syncfs of the filesystem.
func (f *Fetcher) finish(t record.Task, final string, p *part) outcome {
	dev, viaFS := f.fss.covers(p.info)
	if f.o.Fsync && !viaFS {
		if err := p.f.Sync(); err != nil {
			return failure(true, fmt.Errorf("sync part file: %w", err))
		}
	}
	sum := hex.EncodeToString(p.h.Sum(nil))
	if t.SHA256 != "" && !strings.EqualFold(sum, t.SHA256) {
		// Nothing looked for a finished file before the download: the one
		// the task expects may be in place already.
		if f.o.ExpectNew {
			if o, ok := f.complete(final, t, make([]byte, 64<<10)); ok && o.err == nil {
				p.remove()
				p.path = ""
				return o
			}
		}
		if p.resumed {
			// The bytes came from two responses: the origin may have
			// changed the file between them (resuming without a validator
			// relies on this very check), so only a whole download can
			// tell a wrong file. The part goes, and the retry starts over.
			if err := p.reset(); err != nil {
				return failure(true, err)
			}
			return failure(true, fmt.Errorf("GET %s: sha256 %s of a resumed download does not match the expected %s; downloading it whole again", redact(t.URL), sum, t.SHA256))
		}
		return failure(false, fmt.Errorf("GET %s: sha256 %s does not match the expected %s", redact(t.URL), sum, t.SHA256))
	}
	// The sidecar goes first: a crash after the rename must not leave it
	// next to a finished file forever.
	if p.sidecar {
		if err := os.Remove(p.metaPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return failure(true, fmt.Errorf("remove part meta: %w", err))
		}
	}
	if viaFS {
		seal(p.f, sum)
	}
	// A file in place is never replaced: if another transfer of the task
	// (a worker whose claim was given away, say) published first, its file
	// stands and ours is dropped, so a done file only changes by removal.
	err := renameNoReplace(p.path, final)
	if errors.Is(err, fs.ErrExist) {
		if o, ok := f.complete(final, t, make([]byte, 64<<10)); ok {
			p.remove()
			p.path = ""
			return o
		}
		// It was not the file the task expects (complete removed it), or
		// it is gone already: ours takes its place.
		err = renameNoReplace(p.path, final)
	}
	if errors.Is(err, fs.ErrExist) {
		p.remove()
		p.path = ""
		return failure(true, fmt.Errorf("%s: published again by another transfer while it was checked", final))
	}
	if err != nil {
		return failure(true, fmt.Errorf("rename part file: %w", err))
	}
	// The part file is gone; nothing may remove p.path from here on, it
	// could be a new transfer's.
	p.path = ""
	// The descriptor stays open until the file is durable: should the
	// syncfs fail, an fsync of it, open since before this attempt wrote its
	// first byte, tells whether the error was this file's.
	switch {
	case viaFS:
		if err := f.fss.sync(dev); err != nil {
			if aerr := f.syncAlone(final, p.f); aerr != nil {
				// The file may not be on disk: take it away, so that the
				// retry downloads it again instead of trusting it as
				// complete.
				os.Remove(final)
				return failure(true, fmt.Errorf("%w; %w", err, aerr))
			}
		}
	case f.o.Fsync:
		if err := f.syncer.Sync(filepath.Dir(final)); err != nil {
			return failure(true, err)
		}
	}
	err = p.f.Close()
	p.f = nil
	if err != nil {
		os.Remove(final)
		return failure(true, fmt.Errorf("close %s: %w", final, err))
	}
	return outcome{path: final, bytes: p.size, sum: sum}
}

// syncAlone makes one published file durable by itself after the syncfs
// that should have done it failed: that error is the whole filesystem's,
// possibly another file's, so each file it served asks again for itself. It
// fsyncs the file through file, the descriptor it was written with, which
// reports any writeback error of the bytes written through it, and every
// directory from the file's own up to the download directory's parent: the
// entries that the syncfs would have made durable (a new shard directory, a
// new download directory). The directory syncs are group-committed.
func (f *Fetcher) syncAlone(path string, file *os.File) error {
	if err := file.Sync(); err != nil {
		return fmt.Errorf("sync file alone: %w", err)
	}
	for dir := filepath.Dir(path); ; {
		if err := f.syncer.Sync(dir); err != nil {
			return err
		}
		parent := filepath.Dir(dir)
		if !f.inDownloadDir(dir) || parent == dir {
			return nil
		}
		dir = parent
	}
}

func tooBig(limit, n int64) bool {
	return limit > 0 && n > limit
}

func drain(r io.Reader) {
	io.CopyN(io.Discard, r, maxDrain)
}

// renameNoReplace renames old to new unless new exists (fs.ErrExist). It uses
// renameat2(RENAME_NOREPLACE), or link and unlink where the filesystem lacks
// it; both are atomic.
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		if err = os.Link(old, new); err == nil {
			return os.Remove(old)
		}
	}
	if errors.Is(err, unix.EEXIST) {
		return fs.ErrExist
	}
	if err != nil {
		// With its paths, so that the error names the file and diskRefused
		// can tell a denied rename in the download directory.
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
	return nil
}
