//go:build !linux

package worker

import (
	"bytes"
	"os"
)

// marker ends a call's output in the captured stream.
var marker = []byte("\x00lithops-end-of-call\x00")

// start reads the pipe in a goroutine; sync writes a marker into the
// stream through w and waits for the reader to see it.
func (c *Capture) start(w *os.File) {
	seen := make(chan struct{}, 1)
	c.sync = func() {
		select {
		case <-seen: // a stale signal
		default:
		}
		if _, err := w.Write(marker); err == nil {
			<-seen
		}
	}
	go func() {
		buf := make([]byte, 32<<10)
		var carry []byte
		emit := func(p []byte) {
			c.mu.Lock()
			c.emitLocked(p)
			c.mu.Unlock()
		}
		for {
			n, err := c.r.Read(buf)
			data := append(carry, buf[:n]...)
			carry = nil
			for {
				i := bytes.Index(data, marker)
				if i < 0 {
					break
				}
				emit(data[:i])
				data = data[i+len(marker):]
				select {
				case seen <- struct{}{}:
				default:
				}
			}
			// Hold back a tail that may be the start of a marker.
			hold := 0
			for k := min(len(marker)-1, len(data)); k > 0; k-- {
				if bytes.HasPrefix(marker, data[len(data)-k:]) {
					hold = k
					break
				}
			}
			emit(data[:len(data)-hold])
			carry = append([]byte(nil), data[len(data)-hold:]...)
			if err != nil {
				emit(carry)
				return
			}
		}
	}()
}
