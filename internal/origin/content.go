package origin

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// The wyrand constants. Each 8-byte word of content is a pure function of
// (key, word index), so any offset can be produced without generating what
// comes before it: that is what makes the stream seekable and Range cheap.
const (
	wyP0 = 0xa0761d6478bd642f
	wyP1 = 0xe7037ed1a0b428db
)

// blockSize is the unit Sum and GzipSum read in; the server's copies use the
// same size through io.Copy.
const blockSize = 32 << 10

// Content returns the size bytes that the origin serves for name. The bytes
// depend only on name, so Content(name, n) is a prefix of Content(name, m)
// for n <= m. The returned reader also implements io.Seeker and io.ReaderAt.
func Content(name string, size int64) io.Reader {
	return newStream(name, size)
}

// Sum returns the lowercase hex sha256 of Content(name, size).
func Sum(name string, size int64) string {
	h := sha256.New()
	if _, err := io.CopyBuffer(h, newStream(name, size), make([]byte, blockSize)); err != nil {
		panic(fmt.Sprintf("origin: hashing generated content: %v", err)) // cannot happen: neither side fails
	}
	return hex.EncodeToString(h.Sum(nil))
}

// GzipSum returns the lowercase hex sha256 of what the origin sends for
// name with gzip=1: the gzip encoding of Content(name, size). A downloader
// must store those bytes as they are, so this is the hash it must report.
func GzipSum(name string, size int64) string {
	h := sha256.New()
	if err := writeGzip(h, name, size); err != nil {
		panic(fmt.Sprintf("origin: hashing gzip content: %v", err)) // cannot happen: sha256 never fails
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writeGzip is the one encoder both the handler and GzipSum use, so the
// bytes are identical for a given Go release: fixed level, empty header.
func writeGzip(w io.Writer, name string, size int64) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return fmt.Errorf("create gzip writer: %w", err)
	}
	if _, err := io.CopyBuffer(zw, newStream(name, size), make([]byte, blockSize)); err != nil {
		return fmt.Errorf("write gzip body: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("finish gzip body: %w", err)
	}
	return nil
}

// stream generates content at any offset.
type stream struct {
	key  uint64
	size int64
	off  int64
}

func newStream(name string, size int64) *stream {
	sum := sha256.Sum256([]byte(name))
	return &stream{key: binary.LittleEndian.Uint64(sum[:8]), size: max(size, 0)}
}

func (s *stream) Read(p []byte) (int, error) {
	n, err := s.ReadAt(p, s.off)
	s.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil // io.Reader convention: report EOF on the next call
	}
	return n, err
}

func (s *stream) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= s.size {
		return 0, io.EOF
	}
	var err error
	if rest := s.size - off; int64(len(p)) > rest {
		p, err = p[:rest], io.EOF
	}
	fill(s.key, off, p)
	return len(p), err
}

func (s *stream) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += s.off
	case io.SeekEnd:
		offset += s.size
	default:
		return 0, fmt.Errorf("invalid whence %d", whence)
	}
	if offset < 0 {
		return 0, errors.New("seek to a negative offset")
	}
	s.off = offset
	return offset, nil
}

func word(key, i uint64) uint64 {
	x := key + (i+1)*wyP0
	hi, lo := bits.Mul64(x, x^wyP1)
	return hi ^ lo
}

// fill writes the content bytes [off, off+len(p)) into p.
func fill(key uint64, off int64, p []byte) {
	i := uint64(off) / 8
	if head := int(off % 8); head != 0 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], word(key, i))
		n := copy(p, b[head:])
		p = p[n:]
		i++
	}
	full := len(p) &^ 7
	for j := 0; j < full; j += 8 {
		binary.LittleEndian.PutUint64(p[j:j+8], word(key, i))
		i++
	}
	if tail := p[full:]; len(tail) > 0 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], word(key, i))
		copy(tail, b[:])
	}
}
