package worker

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the capture's reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestCapture: End returns exactly what was written between Begin and
// End, however much (more than a pipe holds) and however written; output
// between calls is forwarded but belongs to no call; the limit drops the
// excess and counts it.
func TestCapture(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	var fwd lockedBuffer
	c := NewCapture(pr, pw, &fwd, 1<<20)
	for i := range 20 {
		c.Begin()
		var want bytes.Buffer
		for j := range 50 {
			line := strings.Repeat(string(rune('a'+j%26)), 100*i+j) + "\n"
			want.WriteString(line)
			if _, err := pw.WriteString(line); err != nil {
				t.Fatal(err)
			}
		}
		got, dropped := c.End()
		if !bytes.Equal(got, want.Bytes()) || dropped != 0 {
			t.Fatalf("call %d: captured %d bytes (dropped %d), want the %d written", i, len(got), dropped, want.Len())
		}
		pw.WriteString("between calls\n")
	}
	c.Begin()
	pw.WriteString("last")
	if got, _ := c.End(); string(got) != "last" {
		t.Fatalf("captured %q, want %q: output between calls leaked in", got, "last")
	}
	if n := strings.Count(fwd.String(), "between calls\n"); n != 20 {
		t.Fatalf("forwarded %d of 20 lines written between calls", n)
	}

	pr2, pw2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw2.Close()
	small := NewCapture(pr2, pw2, &fwd, 10)
	small.Begin()
	pw2.WriteString(strings.Repeat("x", 100))
	if got, dropped := small.End(); len(got) != 10 || dropped != 90 {
		t.Fatalf("limit 10: captured %d bytes, dropped %d; want 10 and 90", len(got), dropped)
	}
}

// TestCaptureUnderFlood: output that never stops (a stray goroutine's)
// does not hold End: it reads what the pipe held when it was called.
func TestCaptureUnderFlood(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	c := NewCapture(pr, pw, io.Discard, 1<<20)
	stop := make(chan struct{})
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		line := []byte(strings.Repeat("flood ", 100) + "\n")
		for {
			select {
			case <-stop:
				return
			default:
				pw.Write(line)
			}
		}
	}()
	defer func() { close(stop); <-flooded }()
	for i := range 5 {
		done := make(chan struct{})
		go func() {
			c.Begin()
			c.End()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Begin/End %d did not return within 10 s while output kept coming", i)
		}
	}
}
