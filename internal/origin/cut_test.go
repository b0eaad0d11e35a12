package origin

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rawGet reads everything the server sends on one connection and the error
// that ended it, which is where FIN (io.EOF) and RST (ECONNRESET) differ.
func rawGet(t *testing.T, base, path string) (header *http.Response, body []byte, end error) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: origin\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response header: %v", err)
	}
	var buf bytes.Buffer
	_, end = io.Copy(&buf, br)
	if end == nil {
		end = io.EOF
	}
	return resp, buf.Bytes(), end
}

func TestShortClosesCleanlyAfterNBytes(t *testing.T) {
	o, base := start(t)
	resp, body, end := rawGet(t, base, "/files/s?size=100000&short=5000")
	if resp.ContentLength != 100_000 {
		t.Fatalf("announced %d, want the full 100000", resp.ContentLength)
	}
	if len(body) != 5000 || end != io.EOF {
		t.Fatalf("got %d bytes ending with %v, want 5000 then a clean EOF", len(body), end)
	}
	if string(body) != string(readAll(t, Content("s", 5000))) {
		t.Fatal("short body is not the content")
	}
	if o.Bytes(Path("s")) != 5000 {
		t.Fatalf("Bytes %d, want 5000", o.Bytes(Path("s")))
	}
}

func TestShortOnAChunkedBodyOmitsTheLastChunk(t *testing.T) {
	_, base := start(t)
	_, body, end := rawGet(t, base, "/files/s?endless=1&short=100")
	if end != io.EOF || bytes.HasSuffix(body, []byte("0\r\n\r\n")) {
		t.Fatalf("ended with %v after %q, want EOF without the final chunk", end, body[max(0, len(body)-10):])
	}
}

func TestResetSendsRST(t *testing.T) {
	o, base := start(t)
	_, body, end := rawGet(t, base, "/files/r?size=100000&reset=3000")
	if !errors.Is(end, syscall.ECONNRESET) {
		t.Fatalf("ended with %v, want ECONNRESET", end)
	}
	// The RST may overtake unread data in the client's kernel, so only an
	// upper bound holds on the client; the server counts exactly.
	if len(body) > 3000 || string(body) != string(readAll(t, Content("r", int64(len(body))))) {
		t.Fatalf("got %d bytes before the reset, want a prefix of at most 3000", len(body))
	}
	if o.Bytes(Path("r")) != 3000 {
		t.Fatalf("Bytes %d, want 3000", o.Bytes(Path("r")))
	}
}

// short=N must let a resuming client make progress N bytes at a time: that
// is how tests drive a downloader through many resumptions.
func TestShortWithRangesResumesToTheWholeFile(t *testing.T) {
	_, base := start(t)
	const size = 50_000
	u := URL(base, "resume", size, "short=7000")
	var got []byte
	for round := 0; len(got) < size; round++ {
		if round > 20 {
			t.Fatalf("no progress: %d of %d bytes", len(got), size)
		}
		resp, body, err := get(t, u, "Range", "bytes="+strconv.Itoa(len(got))+"-")
		if len(got) > 0 {
			wantStatus(t, resp, 206)
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			t.Fatalf("round %d: %v", round, err)
		}
		got = append(got, body...)
	}
	if sum(got) != Sum("resume", size) {
		t.Fatal("resumed file differs from the content")
	}
}

func TestResetIsSeenByHTTPClient(t *testing.T) {
	_, base := start(t)
	_, _, err := get(t, URL(base, "rc", 1<<20, "reset=1000"))
	if err == nil || !errors.Is(err, syscall.ECONNRESET) && err != io.ErrUnexpectedEOF {
		t.Fatalf("err %v, want a reset", err)
	}
}
