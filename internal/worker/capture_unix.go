//go:build unix

package worker

import (
	"os"

	"golang.org/x/sys/unix"
)

// start reads the pipe: a goroutine drains it whenever it is readable, and
// sync drains it at once; both under c.mu, so once sync returns every byte
// in the pipe when it was called has been emitted.
func (c *Capture) start(*os.File) {
	rc, err := c.r.SyscallConn()
	if err != nil {
		c.sync = func() {}
		go c.readPlain()
		return
	}
	scratch := make([]byte, 32<<10)
	drain := func(fd uintptr) (ended bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for {
			n, err := unix.Read(int(fd), scratch)
			switch {
			case n > 0:
				c.emitLocked(scratch[:n])
			case err == unix.EINTR:
			case err == unix.EAGAIN:
				return false
			default:
				return true // end of the stream, or it broke
			}
		}
	}
	c.sync = func() {
		_ = rc.Control(func(fd uintptr) { drain(fd) })
	}
	go func() {
		for {
			ended := false
			// Read calls the function again whenever the pipe turns
			// readable, until it returns true.
			err := rc.Read(func(fd uintptr) bool {
				ended = drain(fd)
				return ended
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
