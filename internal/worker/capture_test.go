package worker

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
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
