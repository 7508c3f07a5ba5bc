// Package faultproxy is a loopback TCP proxy that injects network faults
// between the framework and a storage service (Azurite) in tests: latency,
// connection resets, dropped connections, and outages.
package faultproxy

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards connections from its listener to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	down       atomic.Bool
	latency    atomic.Int64 // nanoseconds added before each chunk forwarded
	resetEvery atomic.Int64 // reset every nth connection (0: never)
	dropEvery  atomic.Int64 // drop every nth connection mid-stream (0: never)
	count      atomic.Int64
	held       atomic.Int64 // chunks the latency holds back right now

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Start listens on 127.0.0.1 (a free port) and forwards to target.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDown starts (true) or ends an outage: during one, every connection,
// open or new, is cut at once.
func (p *Proxy) SetDown(down bool) {
	p.down.Store(down)
	if down {
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	}
}

// SetLatency delays every forwarded chunk by d.
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// Held is the number of forwarded chunks the latency holds back right now:
// a test waits for it to know that a request is stuck in the proxy.
func (p *Proxy) Held() int { return int(p.held.Load()) }

// SetResetEvery resets every nth new connection before any byte (0: never).
func (p *Proxy) SetResetEvery(n int) { p.resetEvery.Store(int64(n)) }

// SetDropEvery cuts every nth connection after its first response bytes
// (0: never).
func (p *Proxy) SetDropEvery(n int) { p.dropEvery.Store(int64(n)) }

// Close stops the proxy and cuts every connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.SetDown(true)
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		n := p.count.Add(1)
		if p.down.Load() {
			c.Close()
			continue
		}
		if r := p.resetEvery.Load(); r > 0 && n%r == 0 {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST instead of FIN
			}
			c.Close()
			continue
		}
		drop := false
		if d := p.dropEvery.Load(); d > 0 && n%d == 0 {
			drop = true
		}
		p.wg.Add(1)
		go p.serve(c, drop)
	}
}

func (p *Proxy) serve(c net.Conn, drop bool) {
	defer p.wg.Done()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.track(c, true)
	p.track(up, true)
	defer func() {
		c.Close()
		up.Close()
		p.track(c, false)
		p.track(up, false)
	}()
	done := make(chan struct{}, 2)
	go func() { p.pipe(up, c, false); done <- struct{}{} }()
	go func() { p.pipe(c, up, drop); done <- struct{}{} }()
	<-done
}

// pipe copies src to dst with the configured latency; with drop it cuts
// the connection after the first chunk.
func (p *Proxy) pipe(dst, src net.Conn, drop bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(p.latency.Load()); d > 0 {
				p.held.Add(1)
				time.Sleep(d)
				p.held.Add(-1)
			}
			if p.down.Load() {
				return
			}
			if drop {
				dst.Write(buf[:n/2])
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}
