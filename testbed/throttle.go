package testbed

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Throttle is a TCP proxy whose client-to-server direction can be slowed
// to a limit per connection: a slow uplink. It reads ahead from the client
// and delivers at the limit; a client that goes away with a request not
// yet delivered cuts the server's connection (reset) rather than handing
// it the rest, as a dropped uplink would.
type Throttle struct {
	ln    net.Listener
	to    string
	limit atomic.Int64 // bytes per second and connection; 0: unlimited
	up    atomic.Int64 // bytes delivered to the server

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// StartThrottle proxies a free 127.0.0.1 port to the address to; it stops
// with the test.
func StartThrottle(t testing.TB, to string) *Throttle {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Throttle{ln: ln, to: to, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.serve(c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *Throttle) Addr() string { return p.ln.Addr().String() }

// SetLimit sets the uplink in bytes per second and connection (0: none).
func (p *Throttle) SetLimit(n int64) { p.limit.Store(n) }

func (p *Throttle) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *Throttle) serve(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.to)
	if err != nil {
		return
	}
	defer s.Close()
	p.track(c, true)
	p.track(s, true)
	defer p.track(c, false)
	defer p.track(s, false)

	go func() { io.Copy(c, s); c.Close() }()

	chunks := make(chan []byte, 1<<14)
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for {
			b := make([]byte, 32<<10)
			n, err := c.Read(b)
			if n > 0 {
				chunks <- b[:n]
			}
			if err != nil {
				return
			}
		}
	}()
	cut := func() {
		if tc, ok := s.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	}
	for {
		select {
		case b := <-chunks:
			for len(b) > 0 {
				lim := p.limit.Load()
				n := len(b)
				if lim > 0 {
					n = min(n, max(int(lim/20), 1))
				}
				if _, err := s.Write(b[:n]); err != nil {
					return
				}
				p.up.Add(int64(n))
				b = b[n:]
				if lim > 0 {
					select {
					case <-gone:
						if len(b) > 0 || len(chunks) > 0 {
							cut()
						}
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		case <-gone:
			if len(chunks) > 0 {
				cut()
				return
			}
			s.(*net.TCPConn).CloseWrite()
			return
		}
	}
}

// Delivered is how many bytes reached the server so far.
func (p *Throttle) Delivered() int64 { return p.up.Load() }
