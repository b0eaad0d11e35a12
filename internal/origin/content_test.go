package origin

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"testing"
)

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func TestContentIsDeterministicPrefixAndNamed(t *testing.T) {
	long := readAll(t, Content("a.bin", 5001))
	if len(long) != 5001 {
		t.Fatalf("got %d bytes, want 5001", len(long))
	}
	if again := readAll(t, Content("a.bin", 5001)); !bytes.Equal(again, long) {
		t.Fatal("same name and size gave different bytes")
	}
	if short := readAll(t, Content("a.bin", 999)); !bytes.Equal(short, long[:999]) {
		t.Fatal("a shorter file is not a prefix of a longer one")
	}
	if other := readAll(t, Content("b.bin", 5001)); bytes.Equal(other, long) {
		t.Fatal("different names gave the same bytes")
	}
	if n := len(readAll(t, Content("a.bin", 0))); n != 0 {
		t.Fatalf("size 0 gave %d bytes", n)
	}
}

func TestSumMatchesContent(t *testing.T) {
	for _, size := range []int64{0, 1, 7, 8, 9, blockSize - 1, blockSize, 3*blockSize + 5} {
		h := sha256.Sum256(readAll(t, Content("f", size)))
		if got, want := Sum("f", size), hex.EncodeToString(h[:]); got != want {
			t.Errorf("size %d: Sum = %s, want %s", size, got, want)
		}
	}
}

func TestGzipSumMatchesAGzipOfContent(t *testing.T) {
	var buf bytes.Buffer
	if err := writeGzip(&buf, "g", 100_000); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(buf.Bytes())
	if got, want := GzipSum("g", 100_000), hex.EncodeToString(h[:]); got != want {
		t.Fatalf("GzipSum = %s, want %s", got, want)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, zr), readAll(t, Content("g", 100_000))) {
		t.Fatal("gunzipped body differs from Content")
	}
}

// The server serves ranges by seeking, so every offset and length must give
// the same bytes as reading from the start.
func TestStreamSeekAndReadAtAgreeWithSequentialRead(t *testing.T) {
	const size = 10_007
	full := readAll(t, Content("s", size))
	rng := rand.New(rand.NewPCG(1, 2))
	s := Content("s", size).(io.ReadSeeker)
	ra := Content("s", size).(io.ReaderAt)
	for range 500 {
		off := rng.Int64N(size + 10)
		n := rng.IntN(100)
		want := full[min(off, size):min(off+int64(n), size)]

		p := make([]byte, n)
		got, err := ra.ReadAt(p, off)
		if !bytes.Equal(p[:got], want) {
			t.Fatalf("ReadAt(%d, %d) = wrong bytes", n, off)
		}
		if got < n && err != io.EOF {
			t.Fatalf("ReadAt(%d, %d) short without io.EOF: %v", n, off, err)
		}

		if _, err := s.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if seq := readAll(t, io.LimitReader(s, int64(n))); !bytes.Equal(seq, want) {
			t.Fatalf("Seek(%d)+Read(%d) = wrong bytes", off, n)
		}
	}
	if pos, err := s.Seek(-3, io.SeekEnd); err != nil || pos != size-3 {
		t.Fatalf("Seek(-3, SeekEnd) = %d, %v", pos, err)
	}
	if _, err := s.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("Seek to a negative offset succeeded")
	}
}

// BenchmarkContent must stay well above 1 GB/s so that a 1 GiB benchmark
// measures the downloader, not the origin.
func BenchmarkContent(b *testing.B) {
	buf := make([]byte, blockSize)
	r := newStream("bench", 1<<62)
	b.SetBytes(blockSize)
	for b.Loop() {
		if _, err := r.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}
