package protocol

import (
	"bytes"
	"encoding/gob"
	"sync"
)

// Each encoded value is a gob stream of its own: the type definitions, then
// the value. A fresh gob.Decoder compiles a decoder for those types on
// every value, a fifth of the client's CPU a call on localhost. Values of
// the same type from the same process carry the same definitions, byte for
// byte, so a decoder that has read them once can decode the next value's
// last message alone: decoders are kept by the bytes of the definitions
// that precede the value.

// gobDecoders caches decoders by the definitions they have read.
var gobDecoders = struct {
	sync.Mutex
	m map[string]*cachedDecoder
}{m: map[string]*cachedDecoder{}}

// maxGobDecoders bounds the cache; past it the cache starts again (the
// programs that matter use a handful of types).
const maxGobDecoders = 256

// maxCachedValue is the largest stream decoded through the cache: a gob
// decoder keeps a buffer as large as the largest message it has read, and a
// cached one must not hold on to a big value's worth of memory. For values
// that large, compiling a decoder is noise anyway.
const maxCachedValue = 64 << 10

type cachedDecoder struct {
	mu  sync.Mutex
	r   *bytes.Reader
	dec *gob.Decoder
}

// gobUnmarshal decodes data into v, with a cached decoder when data is
// type definitions followed by one value.
func gobUnmarshal(data []byte, v any) error {
	split, ok := gobValueStart(data)
	if !ok || len(data) > maxCachedValue {
		return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
	}
	gobDecoders.Lock()
	cd := gobDecoders.m[string(data[:split])]
	gobDecoders.Unlock()
	if cd != nil {
		cd.mu.Lock()
		cd.r.Reset(data[split:])
		err := cd.dec.Decode(v)
		cd.r.Reset(nil) // the cache holds no reference to the caller's bytes
		cd.mu.Unlock()
		if err == nil {
			return nil
		}
		// The decoder's state is unknown now: drop it, and let a fresh one
		// decode (and say what is wrong, as it always did).
		gobDecoders.Lock()
		if gobDecoders.m[string(data[:split])] == cd {
			delete(gobDecoders.m, string(data[:split]))
		}
		gobDecoders.Unlock()
		return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
	}
	cd = &cachedDecoder{r: bytes.NewReader(data)}
	cd.dec = gob.NewDecoder(cd.r)
	err := cd.dec.Decode(v)
	cd.r.Reset(nil)
	if err != nil {
		return err
	}
	if split > 0 { // a value with no definitions before it needs no cache
		gobDecoders.Lock()
		if len(gobDecoders.m) >= maxGobDecoders {
			gobDecoders.m = map[string]*cachedDecoder{}
		}
		gobDecoders.m[string(data[:split])] = cd
		gobDecoders.Unlock()
	}
	return nil
}

// gobValueStart returns where the last message of a gob stream starts,
// when the stream is type definitions (negative type ids) followed by
// exactly one value message; ok is false for anything else.
func gobValueStart(data []byte) (int, bool) {
	pos := 0
	for pos < len(data) {
		n, w, ok := gobUint(data[pos:])
		if !ok || n == 0 || n > uint64(len(data)-pos-w) {
			return 0, false
		}
		body := data[pos+w : pos+w+int(n)]
		id, _, ok := gobUint(body)
		if !ok {
			return 0, false
		}
		// A gob int: the low bit is the sign.
		negative := id&1 == 1
		if !negative {
			if pos+w+int(n) != len(data) {
				return 0, false // more after the value: not one value
			}
			return pos, true
		}
		pos += w + int(n)
	}
	return 0, false
}

// gobUint reads a gob unsigned integer: one byte below 128, else a byte
// holding the negated count of big-endian bytes that follow.
func gobUint(b []byte) (v uint64, width int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	if b[0] < 0x80 {
		return uint64(b[0]), 1, true
	}
	n := -int(int8(b[0]))
	if n > 8 || len(b) < 1+n {
		return 0, 0, false
	}
	for _, c := range b[1 : 1+n] {
		v = v<<8 | uint64(c)
	}
	return v, 1 + n, true
}
