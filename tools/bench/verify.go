package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/dlkit/dl/internal/origin"
	"github.com/dlkit/dl/internal/record"
)

// row is one file of a workload: its id, URL, origin name and size.
type row struct {
	id   string
	url  string
	name string
	size int64
}

// files makes n rows named <prefix>NNNNNN of size bytes, with extra knobs.
func files(base, prefix string, n int, size int64, knobs ...string) []row {
	rows := make([]row, n)
	for i := range rows {
		name := fmt.Sprintf("%s%06d", prefix, i)
		rows[i] = row{id: name, url: origin.URL(base, name, size, knobs...), name: name, size: size}
	}
	return rows
}

// sums caches the expected sha256 of each (name, size): origin.Sum generates
// the content, so nothing is stored to compare against.
type sums struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *sums) want(name string, size int64) string {
	k := fmt.Sprintf("%s\x00%d", name, size)
	s.mu.Lock()
	v, ok := s.m[k]
	s.mu.Unlock()
	if ok {
		return v
	}
	v = origin.Sum(name, size)
	s.mu.Lock()
	if s.m == nil {
		s.m = map[string]string{}
	}
	s.m[k] = v
	s.mu.Unlock()
	return v
}

// prime computes the expected sums of rows in parallel, before a timed run.
func (s *sums) prime(rows []row) {
	parallel(len(rows), func(i int) error { s.want(rows[i].name, rows[i].size); return nil })
}

// parallel calls fn(0..n-1) on every core and returns the errors joined (at
// most 10 of them, with the total).
func parallel(n int, fn func(i int) error) error {
	var mu sync.Mutex
	var errs []error
	bad := 0
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					bad++
					if len(errs) < 10 {
						errs = append(errs, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if bad > 0 {
		return fmt.Errorf("%d of %d wrong: %w", bad, n, errors.Join(errs...))
	}
	return nil
}

// hashFile returns the sha256 and size of the file at path.
func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, make([]byte, 256<<10))
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// checkFile verifies that path holds exactly the content of r.
func (s *sums) checkFile(path string, r row) error {
	got, n, err := hashFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", r.id, err)
	}
	if n != r.size || got != s.want(r.name, r.size) {
		return fmt.Errorf("%s: %s has %d bytes with sha256 %.12s…, want %d bytes with %.12s…", r.id, path, n, got, r.size, s.want(r.name, r.size))
	}
	return nil
}

// checkResults verifies dl-fetch's result lines in out: one done result per
// row (matched by URL), and each file's bytes on disk.
func (s *sums) checkResults(out string, rows []row) error {
	byURL := make(map[string]row, len(rows))
	for _, r := range rows {
		byURL[r.url] = r
	}
	f, err := os.Open(out)
	if err != nil {
		return err
	}
	defer f.Close()
	type hit struct {
		path string
		r    row
	}
	var hits []hit
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var res record.Result
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			return fmt.Errorf("result line %q: %w", sc.Text(), err)
		}
		r, ok := byURL[res.URL]
		if !ok {
			return fmt.Errorf("result for a URL that was not asked for: %s", res.URL)
		}
		if res.Outcome != record.Done {
			return fmt.Errorf("%s: %s: %s", r.id, res.Outcome, res.Error)
		}
		if seen[res.URL] {
			return fmt.Errorf("%s: two results", r.id)
		}
		seen[res.URL] = true
		if res.SHA256 != s.want(r.name, r.size) {
			return fmt.Errorf("%s: reported sha256 %s, want %s", r.id, res.SHA256, s.want(r.name, r.size))
		}
		hits = append(hits, hit{res.Path, r})
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(hits) != len(rows) {
		return fmt.Errorf("%d results for %d files", len(hits), len(rows))
	}
	return parallel(len(hits), func(i int) error { return s.checkFile(hits[i].path, hits[i].r) })
}

// checkDir verifies that dir holds exactly one correct file per row and
// nothing else, matching each file to its row by name(base name). It is for
// the peers, which name files after the URL.
func (s *sums) checkDir(dir string, rows []row, name func(base string) string) error {
	byName := make(map[string]row, len(rows))
	for _, r := range rows {
		byName[r.name] = r
	}
	type hit struct {
		path string
		r    row
	}
	var hits []hit
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		r, ok := byName[name(d.Name())]
		if !ok {
			return fmt.Errorf("stray file %s", p)
		}
		if seen[r.name] {
			return fmt.Errorf("two files for %s", r.id)
		}
		seen[r.name] = true
		hits = append(hits, hit{p, r})
		return nil
	})
	if err != nil {
		return err
	}
	if len(hits) != len(rows) {
		return fmt.Errorf("%d files for %d rows", len(hits), len(rows))
	}
	return parallel(len(hits), func(i int) error { return s.checkFile(hits[i].path, hits[i].r) })
}

// stripQuery maps wget's "name?size=4096" to "name".
func stripQuery(base string) string {
	name, _, _ := strings.Cut(base, "?")
	return name
}
