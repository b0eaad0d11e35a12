package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/fetch"
	"github.com/dlkit/dl/internal/queue"
	"github.com/dlkit/dl/internal/record"
	"github.com/dlkit/dl/internal/store"
	"github.com/dlkit/dl/internal/testenv"
	"github.com/dlkit/dl/internal/tool"
)

// trickleOrigin serves one resumable file (strong ETag, ranges): each
// request gets one chunk of the file from where its Range starts, then
// waits until the client goes away, or until release, after which the rest
// follows. So a download is cut at a known byte, however slow the machine.
type trickleOrigin struct {
	*httptest.Server
	body    []byte
	chunk   int
	sent    chan int64 // the offset of each request, once its chunk is out
	release chan struct{}
	mu      sync.Mutex
	from    []int64 // the offset each request asked for
}

func newTrickleOrigin(t *testing.T, size, chunk int) *trickleOrigin {
	o := &trickleOrigin{body: make([]byte, size), chunk: chunk, sent: make(chan int64, 16), release: make(chan struct{})}
	for i := range o.body {
		o.body[i] = byte(i % 251)
	}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var from int64
		if rg := r.Header.Get("Range"); rg != "" {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"), 10, 64)
			if err != nil || n >= int64(size) {
				http.Error(w, "bad range "+rg, http.StatusRequestedRangeNotSatisfiable)
				return
			}
			from = n
		}
		o.mu.Lock()
		o.from = append(o.from, from)
		o.mu.Unlock()
		h := w.Header()
		h.Set("ETag", `"the-file"`)
		h.Set("Accept-Ranges", "bytes")
		h.Set("Content-Length", strconv.Itoa(size-int(from)))
		if from > 0 {
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, size-1, size))
			w.WriteHeader(http.StatusPartialContent)
		}
		end := min(int(from)+chunk, size)
		w.Write(o.body[from:end])
		w.(http.Flusher).Flush()
		o.sent <- from
		select {
		case <-o.release:
			w.Write(o.body[end:])
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		select {
		case <-o.release:
		default:
			close(o.release)
		}
		o.Close()
	})
	return o
}

func (o *trickleOrigin) offsets() []int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.from)
}

// stopMidDownload runs a worker on the queue, as dl-fetch does under a
// first and a second signal, until the origin has sent the chunk that
// starts at from and the .part under dir holds it; then it stops the worker
// with both signals and returns what the worker wrote.
func stopMidDownload(t *testing.T, f Fetcher, st *store.Store, q *queue.Queue, o *trickleOrigin, dir string, from int64) string {
	t.Helper()
	hard, abort := context.WithCancel(context.Background())
	defer abort()
	ctx, stop := context.WithCancel(tool.WithHard(hard, hard))
	defer stop()
	out := new(testenv.SyncBuffer)
	done := make(chan error, 1)
	go func() {
		qo := QueueOptions{Options: Options{Concurrency: 1}, Mode: Forever, Lease: time.Minute, Worker: "w", Poll: 50 * time.Millisecond}
		done <- RunQueue(ctx, f, st, q, qo, out)
	}()
	if got := receive(t, o.sent, "request"); got != from {
		t.Fatalf("the worker asked for the file from byte %d, want %d", got, from)
	}
	waitPart(t, dir, min(from+int64(o.chunk), int64(len(o.body))))
	stop()
	abort()
	if err := receive(t, done, "end of the run"); err != nil {
		t.Errorf("run: %v; want nil, for a stop asked for", err)
	}
	return out.String()
}

// partSize is the size of the one .part file under dir, -1 if there is none.
func partSize(t *testing.T, dir string) int64 {
	t.Helper()
	size := int64(-1)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".part") {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		size = fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return size
}

// waitPart waits until the .part file under dir holds want bytes.
func waitPart(t *testing.T, dir string, want int64) {
	t.Helper()
	for deadline := time.Now().Add(within); partSize(t, dir) != want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the .part file holds %d bytes after %s, want %d", partSize(t, dir), within, want)
		}
	}
}

// bigTask adds the row of a file served by a trickle origin, large enough
// for fetch to resume it, and returns a Fetcher into a directory of its own.
func bigTask(t *testing.T, db *sql.DB) (*trickleOrigin, record.Task, *fetch.Fetcher, string) {
	t.Helper()
	o := newTrickleOrigin(t, 2<<20, 64<<10) // above fetch's least size worth resuming
	task := record.Task{ID: "big", URL: o.URL + "/big.iso"}
	if _, err := db.Exec("INSERT INTO files (id, url) VALUES (?, ?)", task.ID, task.URL); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f, err := fetch.New(fetch.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return o, task, f, dir
}

// claimAndPush does a distributor's round for the row of task, as one
// whose lease ran out would be: it must be claimable.
func claimAndPush(ctx context.Context, t *testing.T, db *sql.DB, st *store.Store, q *queue.Queue, task record.Task) {
	t.Helper()
	if _, err := db.Exec("UPDATE files SET lease_until = NOW(3) - INTERVAL 1 SECOND WHERE id = ? AND status = 2", task.ID); err != nil {
		t.Fatal(err)
	}
	got, err := st.Claim(ctx, []record.Task{task}, store.ClaimOptions{QueueLease: time.Minute, Stale: time.Minute, MaxDeliveries: maxDeliveries})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		var status int
		var msg sql.NullString
		db.QueryRow("SELECT status, error_message FROM files WHERE id = ?", task.ID).Scan(&status, &msg)
		t.Fatalf("row not claimable: status %d, error %q", status, msg.String)
	}
	if err := q.Push(ctx, got); err != nil {
		t.Fatal(err)
	}
}

// maxDeliveries is the distributor's default poison limit.
const maxDeliveries = 5

// TestAbandonedTransferIsGivenBack: a transfer abandoned by a stop that
// would not wait (a second signal) writes no result, keeps its .part, and
// its row is pending again at once, its delivery not counted. It used to
// stay held until its lease ran out, with the delivery counted, so that
// every deploy that cut a long download brought the row nearer the poison
// limit.
func TestAbandonedTransferIsGivenBack(t *testing.T) {
	ctx := context.Background()
	db, st, q := openQueue(ctx, t)
	o, task, f, dir := bigTask(t, db)
	claimAndPush(ctx, t, db, st, q, task)

	if out := stopMidDownload(t, f, st, q, o, dir, 0); out != "" {
		t.Errorf("results %q; want none for an abandoned transfer", out)
	}
	checkGivenBack(t, db, task, dir, int64(o.chunk))
}

// checkGivenBack checks that the row of an abandoned transfer is pending
// again, with nothing counted and held by nobody, and that its .part holds
// what was received (part bytes), for the next delivery to resume.
func checkGivenBack(t *testing.T, db *sql.DB, task record.Task, dir string, part int64) {
	t.Helper()
	var status, attempts, deliveries int
	var token sql.NullString
	if err := db.QueryRow("SELECT status, attempts, deliveries, claim_token FROM files WHERE id = ?", task.ID).Scan(&status, &attempts, &deliveries, &token); err != nil {
		t.Fatal(err)
	}
	if status != 0 || attempts != 0 || deliveries != 0 || token.Valid {
		t.Errorf("row: status %d, attempts %d, deliveries %d, token %v; want pending, nothing counted, held by nobody", status, attempts, deliveries, token)
	}
	if n := partSize(t, dir); n != part {
		t.Errorf("the .part file holds %d bytes, want the %d received", n, part)
	}
}

// TestStopsBeyondThePoisonLimitDoNotFailALongDownload: a download cut by
// more stops than the poison limit, as a long one is by a week of deploys,
// is not failed, and resumes from its .part each time until it is done.
func TestStopsBeyondThePoisonLimitDoNotFailALongDownload(t *testing.T) {
	ctx := context.Background()
	db, st, q := openQueue(ctx, t)
	const stops = maxDeliveries + 2
	o, task, f, dir := bigTask(t, db)
	chunk := o.chunk

	for i := range stops {
		claimAndPush(ctx, t, db, st, q, task)
		if out := stopMidDownload(t, f, st, q, o, dir, int64(i*chunk)); out != "" {
			t.Fatalf("stop %d: results %q; want none for an abandoned transfer", i+1, out)
		}
	}

	claimAndPush(ctx, t, db, st, q, task)
	close(o.release)
	out := new(testenv.SyncBuffer)
	hard := context.Background()
	qo := QueueOptions{Options: Options{Concurrency: 1}, Mode: Batch, Lease: time.Minute, Worker: "w", Poll: 50 * time.Millisecond}
	if err := RunQueue(tool.WithHard(hard, hard), f, st, q, qo, out); err != nil {
		t.Fatalf("run: %v", err)
	}
	r, err := record.ParseResult(bytes.TrimSpace([]byte(out.String())))
	if err != nil {
		t.Fatalf("result %q: %v", out.String(), err)
	}
	sum := sha256.Sum256(o.body)
	if r.Outcome != record.Done || r.SHA256 != hex.EncodeToString(sum[:]) || r.Attempt != 0 {
		t.Errorf("result %+v; want done with the file's sha256, no attempt charged", r)
	}
	if b, err := os.ReadFile(r.Path); err != nil || !bytes.Equal(b, o.body) {
		t.Errorf("%s does not hold the file (%v)", r.Path, err)
	}
	var want []int64
	for i := range stops + 1 {
		want = append(want, int64(i*chunk))
	}
	if got := o.offsets(); !slices.Equal(got, want) {
		t.Errorf("requests from bytes %v; want each delivery to resume where the last one was cut: %v", got, want)
	}
	var deliveries int
	if err := db.QueryRow("SELECT deliveries FROM files WHERE id = ?", task.ID).Scan(&deliveries); err != nil || deliveries != 1 {
		t.Errorf("deliveries %d (%v); want 1, the one that finished", deliveries, err)
	}
}

// TestExitFlagStopIsBoundedByStopTimeout: the exit flag's stop waits for a
// transfer in flight no longer than StopTimeout, as a first signal's does;
// then the transfer is abandoned as on a second signal: no result, its
// .part kept, its row pending again at once with nothing counted. It used
// to wait for ever, since only a signal started the timeout; and in once
// mode (batch too, once the queue is empty) the flag was not even read once
// the feed had ended, with the transfers still in flight.
func TestExitFlagStopIsBoundedByStopTimeout(t *testing.T) {
	for _, mode := range []Mode{Forever, Once, Batch} {
		t.Run(string(mode), func(t *testing.T) {
			ctx := context.Background()
			db, st, q := openQueue(ctx, t)
			o, task, f, dir := bigTask(t, db)
			claimAndPush(ctx, t, db, st, q, task)

			// No signal comes: only the exit flag stops the worker.
			out, done := runQueue(f, st, q, QueueOptions{Options: Options{Concurrency: 1, StopTimeout: 100 * time.Millisecond},
				Mode: mode, Lease: time.Minute, Worker: "w", Poll: 50 * time.Millisecond})
			receive(t, o.sent, "request")
			waitPart(t, dir, int64(o.chunk))
			if err := q.SetExitFlag(ctx, true); err != nil {
				t.Fatal(err)
			}
			if err := receive(t, done, "end of the run"); err != nil {
				t.Errorf("run: %v; want nil, for a stop asked for", err)
			}
			if s := out.String(); s != "" {
				t.Errorf("results %q; want none for an abandoned transfer", s)
			}
			checkGivenBack(t, db, task, dir, int64(o.chunk))
		})
	}
}
