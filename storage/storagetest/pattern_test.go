package storagetest

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// Any window of a stream, read in any chunk sizes, equals the same window
// of the whole stream; different seeds give different streams.
func TestPattern(t *testing.T) {
	whole := pattern(42, 0, 1000)
	for _, c := range []struct{ off, n int64 }{{0, 1000}, {1, 7}, {3, 500}, {8, 8}, {999, 1}, {500, 0}} {
		if got := pattern(42, c.off, c.n); !bytes.Equal(got, whole[c.off:c.off+c.n]) {
			t.Errorf("pattern(42, %d, %d) differs from the whole stream", c.off, c.n)
		}
	}
	if err := iotest.TestReader(newPattern(42, 13, 600), whole[13:613]); err != nil {
		t.Error(err)
	}
	b, _ := io.ReadAll(iotest.OneByteReader(newPattern(42, 5, 50)))
	if !bytes.Equal(b, whole[5:55]) {
		t.Error("one-byte reads differ")
	}
	if bytes.Equal(pattern(1, 0, 64), pattern(2, 0, 64)) {
		t.Error("seeds 1 and 2 give the same stream")
	}
}
