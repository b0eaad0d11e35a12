package fetch

import (
	"bytes"
	"encoding/hex"
	"errors"
	"path/filepath"
	"runtime"
	"testing"
	"testing/iotest"
)

// TestLargeCopiesPipelineOnlyIdleCores: a small body is copied serially and
// not counted; large ones (or of unknown size) are pipelined while they are
// at most half the cores, serial beyond that, and a finished copy makes room.
func TestLargeCopiesPipelineOnlyIdleCores(t *testing.T) {
	limit := max(runtime.GOMAXPROCS(0)/2, 1)
	var c largeCopies
	if p, done := c.start(pipelineMin - 1); p {
		t.Fatal("a small body is pipelined")
	} else {
		done()
	}
	var dones []func()
	for i := range limit {
		expect := int64(pipelineMin)
		if i%2 == 1 {
			expect = -1 // unknown size counts as large
		}
		p, done := c.start(expect)
		if !p {
			t.Fatalf("large copy %d of %d allowed is not pipelined", i+1, limit)
		}
		dones = append(dones, done)
	}
	p, done := c.start(1 << 30)
	if p {
		t.Fatalf("copy %d is pipelined with %d cores", limit+1, runtime.GOMAXPROCS(0))
	}
	done()
	dones[0]()
	if p, done := c.start(1 << 30); !p {
		t.Fatal("no pipelining after a large copy ended")
	} else {
		done()
	}
	for _, done := range dones[1:] {
		done()
	}
	if n := c.n.Load(); n != 0 {
		t.Errorf("%d copies still counted after all ended", n)
	}
}

// TestWriteBothWays: the serial and the pipelined copy write the same bytes
// and hash, also from a reader that returns short reads, and both stop
// before the part file passes the limit.
func TestWriteBothWays(t *testing.T) {
	body := content(3<<20+777, 9)
	for _, tc := range []struct {
		name      string
		pipelined bool
		limit     int64
		wantErr   error
	}{
		{"serial", false, -1, nil},
		{"pipelined", true, -1, nil},
		{"serial over limit", false, 2 << 20, errTooBig},
		{"pipelined over limit", true, 2 << 20, errTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p, err := openPart(filepath.Join(dir, "x.part"), filepath.Join(dir, "x.part.meta"))
			if err != nil {
				t.Fatal(err)
			}
			defer p.close()
			buf := make([]byte, bufSize)
			err = p.write(iotest.HalfReader(bytes.NewReader(body)), tc.limit, tc.pipelined, buf)
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
