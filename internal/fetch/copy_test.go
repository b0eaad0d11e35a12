package fetch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"testing/iotest"
)

// TestLargeCopiesWays: a small body is copied with the attempt's buffer and
// not counted; large ones (or of unknown size) are pipelined while they are
// at most half the cores, get a large buffer while an odd core is left (the
// one core of a single-core machine), and the small buffer beyond; a
// finished copy makes room.
func TestLargeCopiesWays(t *testing.T) {
	for _, tc := range []struct {
		procs int
		want  []copyWay // the ways of the 1st, 2nd, ... concurrent large copy, up to the first small
	}{
		{1, []copyWay{copyLarge, copySmall}},
		{2, []copyWay{copyPipelined, copySmall}},
		{3, []copyWay{copyPipelined, copyLarge, copySmall}},
		{4, []copyWay{copyPipelined, copyPipelined, copySmall}},
		{8, []copyWay{copyPipelined, copyPipelined, copyPipelined, copyPipelined, copySmall}},
	} {
		t.Run(strconv.Itoa(tc.procs), func(t *testing.T) {
			var c largeCopies
			if way, done := c.start(largeMin-1, tc.procs); way != copySmall {
				t.Fatalf("a small body is copied the way %d", way)
			} else {
				done()
			}
			var dones []func()
			for i, want := range tc.want {
				expect := int64(largeMin)
				if i%2 == 1 {
					expect = -1 // unknown size counts as large
				}
				way, done := c.start(expect, tc.procs)
				if way != want {
					t.Fatalf("large copy %d: way %d, want %d", i+1, way, want)
				}
				dones = append(dones, done)
			}
			// A copy's way follows the count in progress: with two
			// ended, a new copy takes the way of the last but one.
			last := len(dones) - 1
			dones[0]()
			dones[last]()
			if way, done := c.start(1<<30, tc.procs); way != tc.want[last-1] {
				t.Fatalf("after two copies ended: way %d, want %d", way, tc.want[last-1])
			} else {
				done()
			}
			for _, done := range dones[1:last] {
				done()
			}
			if n := c.n.Load(); n != 0 {
				t.Errorf("%d copies still counted after all ended", n)
			}
		})
	}
}

// TestWriteEveryWay: each way of copying writes the same bytes and hash,
// also from a reader that returns short reads, and stops before the part
// file passes the limit.
func TestWriteEveryWay(t *testing.T) {
	// Longer than the pipelined copy's buffers together, so that each is
	// handed round more than once.
	body := content(2*pipelineDepth*pipeBufSize+777, 9)
	for _, tc := range []struct {
		name    string
		way     copyWay
		limit   int64
		wantErr error
	}{
		{"small", copySmall, -1, nil},
		{"large", copyLarge, -1, nil},
		{"pipelined", copyPipelined, -1, nil},
		{"small over limit", copySmall, 2 << 20, errTooBig},
		{"large over limit", copyLarge, 2 << 20, errTooBig},
		{"pipelined over limit", copyPipelined, 2 << 20, errTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tempPart(t)
			buf := make([]byte, bufSize)
			err := p.write(iotest.HalfReader(bytes.NewReader(body)), tc.limit, tc.way, buf)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("write: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if p.size > tc.limit {
					t.Errorf("part file has %d bytes, past the limit %d", p.size, tc.limit)
				}
				return
			}
			if p.size != int64(len(body)) || hex.EncodeToString(p.h.Sum(nil)) != sha(body) {
				t.Errorf("wrote %d bytes hashing to %x, want %d bytes %s", p.size, p.h.Sum(nil), len(body), sha(body))
			}
		})
	}
}

// TestWriteBehind: with durable writes a large body has its writeback
// started every writeBehindStep bytes, a reset starts the count again, and a
// file that refuses the hint (here /dev/null) is written all the same.
func TestWriteBehind(t *testing.T) {
	body := content(2*writeBehindStep+writeBehindStep/2, 3)
	for _, tc := range []struct {
		name        string
		writeBehind bool
		want        int64
	}{
		{"durable", true, 2 * writeBehindStep},
		{"not durable", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tempPart(t)
			p.writeBehind = tc.writeBehind
			if err := p.write(bytes.NewReader(body), -1, copyLarge, nil); err != nil {
				t.Fatal(err)
			}
			if p.hinted != tc.want {
				t.Errorf("writeback started for %d bytes, want %d", p.hinted, tc.want)
			}
			if err := p.reset(); err != nil {
				t.Fatal(err)
			}
			if err := p.write(bytes.NewReader(body[:writeBehindStep]), -1, copyLarge, nil); err != nil {
				t.Fatal(err)
			}
			if want := min(tc.want, writeBehindStep); p.hinted != want {
				t.Errorf("after a reset, writeback started for %d bytes, want %d", p.hinted, want)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer null.Close()
		p := &part{f: null, h: sha256.New(), progress: nopTransfer{}, writeBehind: true}
		if err := p.write(bytes.NewReader(body), -1, copyLarge, nil); err != nil {
			t.Fatalf("write to a file that refuses the hint: %v", err)
		}
		if p.size != int64(len(body)) || p.writeBehind || p.hinted != 0 {
			t.Errorf("size %d, writeBehind %v, hinted %d; want %d, false, 0", p.size, p.writeBehind, p.hinted, len(body))
		}
	})
}

// tempPart opens a fresh part file in a directory of the test's own, closed
// when the test ends.
func tempPart(t *testing.T) *part {
	t.Helper()
	dir := t.TempDir()
	p, err := openPart(filepath.Join(dir, "x.part"), filepath.Join(dir, "x.part.meta"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return p
}
