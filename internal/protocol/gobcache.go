package protocol

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"reflect"
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

// Encoding mirrors it: a fresh gob.Encoder sends the value's type
// definitions, then the value; an encoder kept per type sends the
// definitions once, after which it writes the value message alone, and the
// definitions it sent first are put in front. For a type with no interface
// in it the definitions depend on the type only, so the result is what a
// fresh encoder writes, byte for byte (map entries aside, in gob's random
// order either way). A type with an interface in it is encoded fresh: gob
// defines the concrete types it meets there as it meets them.

// gobEncoders caches an encoder per Go type (reflect.Type keys).
var gobEncoders sync.Map

// cacheable reports, once per type, whether gobMarshal may use an encoder
// kept for t.
var cacheable sync.Map // reflect.Type → bool

type cachedEncoder struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	enc    *gob.Encoder
	prefix []byte // the definitions sent with the first value; nil until then
}

// gobMarshal encodes v as a gob stream of its own.
func gobMarshal(v any) ([]byte, error) {
	t := reflect.TypeOf(v)
	if t == nil || !gobCacheable(t) {
		return gobFresh(v)
	}
	c, _ := gobEncoders.Load(t)
	ce, _ := c.(*cachedEncoder)
	if ce == nil {
		ce = &cachedEncoder{}
		ce.enc = gob.NewEncoder(&ce.buf)
		if c, loaded := gobEncoders.LoadOrStore(t, ce); loaded {
			ce = c.(*cachedEncoder)
		}
	}
	ce.mu.Lock()
	defer ce.mu.Unlock()
	ce.buf.Reset()
	err := gobEncode(ce.enc, v)
	b := ce.buf.Bytes()
	split, ok := gobValueStart(b)
	if err != nil || !ok || (ce.prefix != nil && split != 0) || ce.buf.Cap() > maxCachedValue {
		// An error, or not the one value message expected, or a buffer
		// grown big: this encoder goes, and a fresh one answers.
		gobEncoders.CompareAndDelete(t, ce)
		return gobFresh(v)
	}
	if ce.prefix == nil {
		ce.prefix = bytes.Clone(b[:split])
		return bytes.Clone(b), nil
	}
	out := make([]byte, len(ce.prefix)+len(b))
	copy(out, ce.prefix)
	copy(out[len(ce.prefix):], b)
	return out, nil
}

func gobFresh(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := gobEncode(gob.NewEncoder(&b), v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// gobEncode is enc.Encode(v), with the panics of gob (a nil pointer, for
// one) as errors.
func gobEncode(enc *gob.Encoder, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return enc.Encode(v)
}

// gobCacheable reports whether t has no interface type in it.
func gobCacheable(t reflect.Type) bool {
	if ok, found := cacheable.Load(t); found {
		return ok.(bool)
	}
	ok := !hasInterface(t, map[reflect.Type]bool{})
	cacheable.Store(t, ok)
	return ok
}

func hasInterface(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return hasInterface(t.Elem(), seen)
	case reflect.Map:
		return hasInterface(t.Key(), seen) || hasInterface(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if hasInterface(t.Field(i).Type, seen) {
				return true
			}
		}
	case reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return true // gob refuses them: let a fresh encoder say so
	}
	return false
}
