//go:build linux

package worker

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/lithops-go/lithops/internal/quietsys"
)

// start reads the pipe: a goroutine reads it, a chunk at a time under
// c.mu, whenever it is readable; sync, under c.mu, reads the bytes the pipe
// holds when it is called (FIONREAD, TIOCINQ on Linux), so once it returns every byte written
// before it has been emitted, and output that never stops (a stray
// goroutine's) cannot hold it.
func (c *Capture) start(*os.File) {
	rc, err := c.r.SyscallConn()
	if err != nil || !quietsys.Pollable(c.r) {
		// Not a non-blocking pipe: its reads could block, which a raw
		// read must not.
		c.sync = func() {}
		go c.readPlain()
		return
	}
	scratch := make([]byte, 32<<10)
	// chunk reads at most max bytes; c.mu is held.
	chunk := func(fd uintptr, max int) (n int, ended bool) {
		for {
			n, err := quietsys.Read(int(fd), scratch[:min(max, len(scratch))])
			switch {
			case n > 0:
				c.emitLocked(scratch[:n])
				return n, false
			case err == unix.EINTR:
			case err == unix.EAGAIN:
				return 0, false
			default:
				return 0, true // end of the stream, or it broke
			}
		}
	}
	c.sync = func() {
		_ = rc.Control(func(fd uintptr) {
			c.mu.Lock()
			defer c.mu.Unlock()
			avail, err := quietsys.IoctlGetInt(int(fd), unix.TIOCINQ)
			if err != nil {
				avail = 1 << 20 // bounded all the same
			}
			for avail > 0 {
				n, ended := chunk(fd, avail)
				if n == 0 || ended {
					return
				}
				avail -= n
			}
		})
	}
	go func() {
		for {
			ended := false
			// Read calls the function again whenever the pipe turns
			// readable, until it returns true.
			err := rc.Read(func(fd uintptr) bool {
				for {
					c.mu.Lock()
					n, end := chunk(fd, len(scratch))
					c.mu.Unlock()
					if end {
						ended = true
						return true
					}
					if n == 0 {
						return false // empty: wait until readable
					}
				}
			})
			if err != nil || ended {
				return
			}
		}
	}()
}

// readPlain reads a stream that is not a pollable pipe.
func (c *Capture) readPlain() {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.r.Read(buf)
		c.mu.Lock()
		c.emitLocked(buf[:n])
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}
