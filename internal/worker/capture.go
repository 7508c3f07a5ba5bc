package worker

import (
	"bytes"
	"io"
	"sync"
)

// Capture collects what a worker process writes to its stdout and stderr
// while one call runs, and passes everything on to the original stream.
// Begin and End bracket a call; End returns once every byte written before
// it has been seen, so nothing leaks into the next call's output.
type Capture struct {
	limit  int
	fwd    io.Writer
	marker []byte
	writeM func() error // writes the marker into the captured stream

	mu        sync.Mutex
	capturing bool
	buf       bytes.Buffer
	dropped   int64
	seen      chan struct{}
}

// NewCapture reads the captured stream from r, forwards it to fwd, keeps at
// most limit bytes per call, and uses writeMarker to flush the stream.
func NewCapture(r io.Reader, fwd io.Writer, limit int, writeMarker func([]byte) error) *Capture {
	c := &Capture{limit: limit, fwd: fwd, marker: []byte("\x00lithops-end-of-call\x00"), seen: make(chan struct{}, 1)}
	c.writeM = func() error { return writeMarker(c.marker) }
	go c.read(r)
	return c
}

func (c *Capture) read(r io.Reader) {
	buf := make([]byte, 32<<10)
	var carry []byte
	for {
		n, err := r.Read(buf)
		data := append(carry, buf[:n]...)
		carry = nil
		for {
			i := bytes.Index(data, c.marker)
			if i < 0 {
				break
			}
			c.emit(data[:i])
			data = data[i+len(c.marker):]
			select {
			case c.seen <- struct{}{}:
			default:
			}
		}
		// Hold back a tail that may be the start of a marker.
		hold := 0
		for k := min(len(c.marker)-1, len(data)); k > 0; k-- {
			if bytes.HasPrefix(c.marker, data[len(data)-k:]) {
				hold = k
				break
			}
		}
		c.emit(data[:len(data)-hold])
		carry = append([]byte(nil), data[len(data)-hold:]...)
		if err != nil {
			c.emit(carry)
			return
		}
	}
}

func (c *Capture) emit(p []byte) {
	if len(p) == 0 {
		return
	}
	c.fwd.Write(p)
	c.mu.Lock()
	defer c.mu.Unlock()
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
	c.mu.Lock()
	c.capturing, c.dropped = true, 0
	c.buf.Reset()
	c.mu.Unlock()
}

// End stops capturing and returns the call's output and how many bytes
// over the limit were dropped.
func (c *Capture) End() ([]byte, int64) {
	select {
	case <-c.seen: // a stale signal
	default:
	}
	if c.writeM() == nil {
		<-c.seen
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.capturing = false
	out := append([]byte(nil), c.buf.Bytes()...)
	return out, c.dropped
}
