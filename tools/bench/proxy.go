package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// proxy forwards TCP connections to a server and counts what clients send:
// MySQL commands (by the statement's first word) or Redis commands (by
// name), and request bursts (reads from the client that carried at least one
// command: with no pipelining, one per round trip). It exists for the
// profile run only: the timed runs talk to the servers directly.
type proxy struct {
	ln     net.Listener
	target string
	kind   string // "mysql" or "redis"

	mu     sync.Mutex
	counts map[string]int64
	bursts int64
	conns  int64
	wg     sync.WaitGroup
}

func startProxy(kind, target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	p := &proxy{ln: ln, target: target, kind: kind, counts: map[string]int64{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(c)
			}()
		}
	}()
	return p, nil
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// close stops accepting and waits for the connections, which end when the
// tools (already exited) have closed them.
func (p *proxy) close() {
	p.ln.Close()
	p.wg.Wait()
}

func (p *proxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		logf("proxy: dial %s: %v", p.target, err)
		return
	}
	defer server.Close()
	p.mu.Lock()
	p.conns++
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(client, server)
		client.(*net.TCPConn).CloseWrite()
	}()
	// What the client sends is forwarded as it is read; the parser follows
	// the same bytes through a pipe.
	pr, pw := io.Pipe()
	parsed := make(chan struct{})
	go func() {
		defer close(parsed)
		if p.kind == "mysql" {
			p.parseMySQL(bufio.NewReader(pr))
		} else {
			p.parseRedis(bufio.NewReader(pr))
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			p.mu.Lock()
			p.bursts++
			p.mu.Unlock()
			if _, werr := server.Write(buf[:n]); werr != nil {
				break
			}
			_, _ = pw.Write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	pw.Close()
	<-parsed
	server.(*net.TCPConn).CloseWrite()
	<-done
}

func (p *proxy) count(what string) {
	p.mu.Lock()
	p.counts[what]++
	p.mu.Unlock()
}

// parseMySQL reads client packets: a packet with sequence number 0 starts a
// command (the handshake response and auth packets have higher numbers).
func (p *proxy) parseMySQL(r *bufio.Reader) {
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		if hdr[3] != 0 || n == 0 {
			continue
		}
		switch body[0] {
		case 0x03: // COM_QUERY
			p.count(firstWord(body[1:]))
		case 0x16:
			p.count("PREPARE")
		case 0x17:
			p.count("EXECUTE")
		case 0x19:
			p.count("CLOSE_STMT")
		case 0x0e:
			p.count("PING")
		case 0x01:
			p.count("QUIT")
		case 0x1f:
			p.count("RESET_CONNECTION")
		default:
			p.count(fmt.Sprintf("COM_%#x", body[0]))
		}
	}
}

func firstWord(q []byte) string {
	q = bytes.TrimLeft(q, " \t\r\n(")
	i := bytes.IndexAny(q, " \t\r\n(")
	if i < 0 {
		i = len(q)
	}
	return strings.ToUpper(string(q[:i]))
}

// parseRedis reads RESP arrays of bulk strings (what every client sends)
// and counts each command by its name.
func (p *proxy) parseRedis(r *bufio.Reader) {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if !strings.HasPrefix(line, "*") {
			p.count("INLINE")
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
		if err != nil {
			return
		}
		name := ""
		for i := 0; i < n; i++ {
			l, err := r.ReadString('\n')
			if err != nil || !strings.HasPrefix(l, "$") {
				return
			}
			size, err := strconv.Atoi(strings.TrimSpace(l[1:]))
			if err != nil {
				return
			}
			arg := make([]byte, size+2)
			if _, err := io.ReadFull(r, arg); err != nil {
				return
			}
			if i == 0 {
				name = strings.ToUpper(string(arg[:size]))
			}
		}
		p.count(name)
	}
}

// snapshot returns the counts, the bursts and the connections.
func (p *proxy) snapshot() (map[string]int64, int64, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int64, len(p.counts))
	for k, v := range p.counts {
		m[k] = v
	}
	return m, p.bursts, p.conns
}

// describe formats counts per file: "UPDATE 0.004, SELECT 0.001 …".
func describe(m map[string]int64, files int) string {
	type kv struct {
		k string
		v int64
	}
	var l []kv
	for k, v := range m {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || l[i].v == l[j].v && l[i].k < l[j].k })
	var parts []string
	for _, e := range l {
		parts = append(parts, fmt.Sprintf("%s %d (%.4f/file)", e.k, e.v, float64(e.v)/float64(files)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
