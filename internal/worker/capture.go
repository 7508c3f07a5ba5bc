package worker

import (
	"bytes"
	"io"
	"os"
	"sync"
)

// Capture collects what a worker process writes to its stdout and stderr
// while one call runs, and passes everything on to the original stream.
// Begin and End bracket a call; End returns once every byte written before
// it has been seen, so nothing leaks into the next call's output.
//
// The stream is a pipe this process reads. On Linux End reads what the
// pipe holds when it is called, under the lock the reader holds while it
// reads a chunk: usually one ioctl that finds the pipe empty, not a round
// trip through it. Elsewhere End writes a marker into the stream and waits
// for the reader to see it.
type Capture struct {
	limit int
	fwd   io.Writer
	r     *os.File
	// sync returns once every byte written to the stream before it was
	// called has been emitted.
	sync func()

	mu        sync.Mutex
	capturing bool
	buf       bytes.Buffer
	dropped   int64
}

// NewCapture reads the captured stream from r (the read end of a pipe
// whose write end w the program writes to), forwards it to fwd and keeps
// at most limit bytes per call.
func NewCapture(r, w *os.File, fwd io.Writer, limit int) *Capture {
	c := &Capture{limit: limit, fwd: fwd, r: r}
	c.start(w)
	return c
}

// emitLocked forwards p and keeps what fits of it; c.mu is held.
func (c *Capture) emitLocked(p []byte) {
	if len(p) == 0 {
		return
	}
	c.fwd.Write(p)
	if !c.capturing {
		return
	}
	room := c.limit - c.buf.Len()
	if room < len(p) {
		c.dropped += int64(len(p) - max(room, 0))
		p = p[:max(room, 0)]
	}
	c.buf.Write(p)
}

// Begin starts capturing a call's output.
func (c *Capture) Begin() {
	c.sync() // what earlier calls' stray goroutines wrote is not this call's
	c.mu.Lock()
	c.capturing, c.dropped = true, 0
	c.buf.Reset()
	c.mu.Unlock()
}

// End stops capturing and returns the call's output and how many bytes
// over the limit were dropped.
func (c *Capture) End() ([]byte, int64) {
	c.sync()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.capturing = false
	out := append([]byte(nil), c.buf.Bytes()...)
	return out, c.dropped
}
