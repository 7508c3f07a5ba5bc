package usage

import (
	"runtime"
	"testing"
	"time"
)

// CPU grows while the process computes.
func TestCPU(t *testing.T) {
	before := CPU()
	x := 0
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
		x++
	}
	if after := CPU(); after <= before {
		t.Fatalf("CPU time %v after 50 ms of work, %v before (%d rounds)", after, before, x)
	}
}

// PeakRSS is at least what this test holds.
func TestPeakRSS(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("not read on Windows")
	}
	b := make([]byte, 64<<20)
	for i := range b {
		b[i] = 1
	}
	if got := PeakRSS(); got < int64(len(b)) {
		t.Fatalf("peak RSS %d bytes while holding %d", got, len(b))
	}
	runtime.KeepAlive(b)
}
