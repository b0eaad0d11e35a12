package testenv

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// MySQLProxy sits on loopback between a client and the test's MySQL server
// and can cut the connection at a COMMIT, the one moment at which a client
// cannot know what happened to its transaction.
type MySQLProxy struct {
	mode atomic.Int32 // what to do with the next COMMIT: see LoseCommit
	cuts atomic.Int32
}

const (
	proxyPass       = iota
	proxyLoseAnswer // forward the COMMIT, drop the server's answer
	proxyLoseCommit // drop the COMMIT itself
	proxyInterrupt  // forward the COMMIT, answer it with error 1317
)

// NewMySQLProxy starts a proxy to the server of dsn and returns it with a
// DSN that reaches the same database through it (without TLS, which the
// proxy must read through).
func NewMySQLProxy(t testing.TB, dsn string) (*MySQLProxy, string) {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("testenv: proxy DSN: %v", err)
	}
	network, addr := cfg.Net, cfg.Addr
	p := &MySQLProxy{}
	base := TCPServer(t, func(c net.Conn, _ <-chan struct{}) { p.serve(c, network, addr) })
	cfg = cfg.Clone()
	cfg.Net, cfg.Addr = "tcp", strings.TrimPrefix(base, "http://")
	cfg.TLS, cfg.TLSConfig = nil, "false"
	return p, cfg.FormatDSN()
}

// LoseCommit makes the proxy cut the connection that next sends a COMMIT.
// landed: after forwarding it and reading the server's answer, so the
// transaction is committed and the client never hears so; otherwise
// without forwarding it, so the server rolls the transaction back.
func (p *MySQLProxy) LoseCommit(landed bool) {
	if landed {
		p.mode.Store(proxyLoseAnswer)
	} else {
		p.mode.Store(proxyLoseCommit)
	}
}

// InterruptCommit makes the proxy forward the next COMMIT and answer it
// with error 1317 (Query execution was interrupted) in place of the
// server's answer, as a KILL QUERY that reaches a COMMIT while it waits
// (for a replica's acknowledgement) may: the transaction is committed and
// the client is told it was interrupted. The connection stays open.
func (p *MySQLProxy) InterruptCommit() { p.mode.Store(proxyInterrupt) }

// Cuts counts the connections cut at a COMMIT, and the COMMITs
// interrupted.
func (p *MySQLProxy) Cuts() int { return int(p.cuts.Load()) }

// serve forwards one connection. The client's packets are read one by one
// to find a COMMIT (a COM_QUERY of that text, as the driver sends it); the
// server's bytes are passed on as they come. The client waits for each
// answer before its next command, so once a COMMIT is forwarded, the next
// bytes from the server are its answer.
func (p *MySQLProxy) serve(c net.Conn, network, addr string) {
	s, err := net.Dial(network, addr)
	if err != nil {
		return
	}
	defer s.Close()
	var committing, interrupting atomic.Bool
	answers := make(chan struct{})
	go func() {
		defer close(answers)
		defer c.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := s.Read(buf)
			if n > 0 && committing.Load() {
				p.cuts.Add(1)
				return
			}
			if n >= 4 && interrupting.Swap(false) {
				// The whole answer came in this read (an OK packet is
				// small): it is replaced, under its sequence number.
				p.cuts.Add(1)
				msg := "\xff\x25\x05#70100Query execution was interrupted"
				pkt := append([]byte{byte(len(msg)), 0, 0, buf[3]}, msg...)
				if _, werr := c.Write(pkt); werr != nil || err != nil {
					return
				}
				continue
			}
			if n > 0 {
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() { <-answers }()
	defer s.Close() // ends the server's side, so the goroutine above
	r := bufio.NewReader(c)
	for {
		pkt := make([]byte, 4)
		if _, err := io.ReadFull(r, pkt); err != nil {
			return
		}
		n := int(pkt[0]) | int(pkt[1])<<8 | int(pkt[2])<<16
		pkt = append(pkt, make([]byte, n)...)
		if _, err := io.ReadFull(r, pkt[4:]); err != nil {
			return
		}
		if string(pkt[4:]) == "\x03COMMIT" {
			switch p.mode.Swap(proxyPass) {
			case proxyLoseAnswer:
				committing.Store(true)
			case proxyInterrupt:
				interrupting.Store(true)
			case proxyLoseCommit:
				p.cuts.Add(1)
				c.Close()
				return
			}
		}
		if _, err := s.Write(pkt); err != nil {
			return
		}
	}
}
