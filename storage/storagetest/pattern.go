package storagetest

import (
	"encoding/binary"
	"io"
)

// patternReader yields n deterministic pseudo-random bytes starting at
// position off of the stream named by seed. Byte i of a stream depends only
// on (seed, i), so any range of a large object can be regenerated without
// keeping the object anywhere.
type patternReader struct {
	seed     uint64
	off, end int64
}

// newPattern returns a reader of bytes [off, off+n) of stream seed.
func newPattern(seed uint64, off, n int64) *patternReader {
	return &patternReader{seed: seed, off: off, end: off + n}
}

// word is the 8-byte word at index i of stream seed (splitmix64).
func word(seed, i uint64) uint64 {
	z := seed*0x9e3779b97f4a7c15 + i*0xbf58476d1ce4e5b9 + 1
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.end {
		return 0, io.EOF
	}
	if rem := p.end - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	n := 0
	var buf [8]byte
	for n < len(b) {
		w := uint64(p.off) / 8
		skip := int(p.off % 8)
		if skip == 0 && len(b)-n >= 8 {
			binary.LittleEndian.PutUint64(b[n:], word(p.seed, w))
			n += 8
			p.off += 8
			continue
		}
		binary.LittleEndian.PutUint64(buf[:], word(p.seed, w))
		c := copy(b[n:], buf[skip:])
		n += c
		p.off += int64(c)
	}
	return n, nil
}

// pattern returns bytes [off, off+n) of stream seed.
func pattern(seed uint64, off, n int64) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(newPattern(seed, off, n), b); err != nil {
		panic(err) // cannot happen: the reader yields exactly n bytes
	}
	return b
}
