package worker

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCaptureBlockingPipe: a capture given a pipe that blocks reads it
// the runtime's way, never raw: output still reaches the real stream. With
// one processor a raw read that blocked would hold it, and this test would
// never wake from its sleep.
func TestCaptureBlockingPipe(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	pr, pw := os.NewFile(uintptr(p[0]), "blocking-r"), os.NewFile(uintptr(p[1]), "blocking-w")
	defer pw.Close()
	var fwd lockedBuffer
	NewCapture(pr, pw, &fwd, 1<<20)
	pw.WriteString("to the real stream\n")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(fwd.String(), "to the real stream") {
		if time.Now().After(deadline) {
			t.Fatalf("forwarded %q after 5 s", fwd.String())
		}
		time.Sleep(time.Millisecond)
	}
}
