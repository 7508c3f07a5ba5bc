// Package shuffle is the data path of lithops.MapShuffle: streams of
// key/value pairs encoded with the job's codec, a mapper's buffer that
// sorts its pairs into R partitions and spills sorted runs to local disk
// when it is full, and the k-way merge with which reducers (and the client)
// read sorted segments back.
//
// Format. A segment is one stream of the codec (gob: one gob stream, so
// type information is sent once per segment; json: newline-separated JSON
// values) of Pair values in key order, or, when the keys are strings and
// the values strings or byte slices (Raw), length-prefixed raw bytes; pairs of equal keys keep the order
// in which the mapper emitted them. A mapper's object is its R segments end
// to end, followed by a footer: the JSON of the R+1 segment offsets and,
// in the last 8 bytes, the footer's length (big endian). The mapper's
// result carries the same offsets, so reducers need no extra read.
//
// Keys are cmp.Ordered and compared decoded, with cmp.Compare: the
// encoding need not preserve order, and every codec works.
package shuffle

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"reflect"
	"slices"
	"unsafe"
)

// Pair is one key/value pair as it is encoded in a segment.
type Pair[K cmp.Ordered, V any] struct {
	K K
	V V
}

// Writer writes pairs to one segment.
type Writer[K cmp.Ordered, V any] struct {
	enc     interface{ Encode(any) error }
	raw     io.Writer // raw framing (Raw)
	scratch []byte
}

// Raw reports whether pairs of K and V are framed raw, whatever the codec:
// when the key is a string and the value a string or a byte slice (of any
// named types), a pair is uvarint(len(key)), key, uvarint(len(value)),
// value. No reflection, no type information: a sort's records cost their
// bytes and two lengths.
func Raw[K cmp.Ordered, V any]() bool {
	return reflect.TypeFor[K]().Kind() == reflect.String && rawValue[V]()
}

func rawValue[V any]() bool {
	t := reflect.TypeFor[V]()
	return t.Kind() == reflect.String || t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8
}

// NewWriter starts a segment on w in the named codec ("gob" or "json").
func NewWriter[K cmp.Ordered, V any](codec string, w io.Writer) (*Writer[K, V], error) {
	switch codec {
	case "", "gob", "json":
	default:
		return nil, fmt.Errorf("shuffle: unknown codec %q", codec)
	}
	switch {
	case Raw[K, V]():
		return &Writer[K, V]{raw: w}, nil
	case codec == "json":
		return &Writer[K, V]{enc: json.NewEncoder(w)}, nil
	}
	return &Writer[K, V]{enc: gob.NewEncoder(w)}, nil
}

// Write appends one pair.
func (w *Writer[K, V]) Write(k K, v V) error {
	if w.raw == nil {
		return w.enc.Encode(&Pair[K, V]{K: k, V: v})
	}
	ks := *(*string)(unsafe.Pointer(&k))
	var vb []byte
	if reflect.TypeFor[V]().Kind() == reflect.String {
		vs := *(*string)(unsafe.Pointer(&v))
		vb = unsafe.Slice(unsafe.StringData(vs), len(vs))
	} else {
		vb = *(*[]byte)(unsafe.Pointer(&v))
	}
	b := binary.AppendUvarint(w.scratch[:0], uint64(len(ks)))
	b = append(b, ks...)
	b = binary.AppendUvarint(b, uint64(len(vb)))
	b = append(b, vb...)
	w.scratch = b
	_, err := w.raw.Write(b)
	return err
}

// Source is a stream of pairs in key order; Next returns io.EOF at its end.
type Source[K cmp.Ordered, V any] interface {
	Next() (K, V, error)
}

// Reader reads the pairs of one segment.
type Reader[K cmp.Ordered, V any] struct {
	dec interface{ Decode(any) error }
	raw *bufio.Reader // raw framing (Raw)
	buf []byte
}

// NewReader reads a segment written by a Writer of the same codec.
func NewReader[K cmp.Ordered, V any](codec string, r io.Reader) (*Reader[K, V], error) {
	switch codec {
	case "", "gob", "json":
	default:
		return nil, fmt.Errorf("shuffle: unknown codec %q", codec)
	}
	if Raw[K, V]() {
		br, ok := r.(*bufio.Reader)
		if !ok {
			br = bufio.NewReaderSize(r, 64<<10)
		}
		return &Reader[K, V]{raw: br}, nil
	}
	if _, ok := r.(io.ByteReader); !ok {
		r = bufio.NewReaderSize(r, 64<<10)
	}
	if codec == "json" {
		return &Reader[K, V]{dec: json.NewDecoder(r)}, nil
	}
	return &Reader[K, V]{dec: gob.NewDecoder(r)}, nil
}

// rawField reads one length-prefixed field.
func (r *Reader[K, V]) rawField(first bool) ([]byte, error) {
	n, err := binary.ReadUvarint(r.raw)
	if err != nil {
		if err == io.EOF && first {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("shuffle: segment cut short: %w", io.ErrUnexpectedEOF)
	}
	if n > 1<<31 {
		return nil, fmt.Errorf("shuffle: corrupt segment: a field of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.raw, b); err != nil {
		return nil, fmt.Errorf("shuffle: segment cut short: %w", io.ErrUnexpectedEOF)
	}
	return b, nil
}

// Next returns the next pair, or io.EOF.
func (r *Reader[K, V]) Next() (K, V, error) {
	if r.raw != nil {
		var k K
		var v V
		kb, err := r.rawField(true)
		if err != nil {
			return k, v, err
		}
		vb, err := r.rawField(false)
		if err != nil {
			return k, v, err
		}
		ks := unsafe.String(unsafe.SliceData(kb), len(kb)) // kb is this key's own
		k = *(*K)(unsafe.Pointer(&ks))
		if reflect.TypeFor[V]().Kind() == reflect.String {
			vs := unsafe.String(unsafe.SliceData(vb), len(vb))
			v = *(*V)(unsafe.Pointer(&vs))
		} else {
			v = *(*V)(unsafe.Pointer(&vb))
		}
		return k, v, nil
	}
	var p Pair[K, V] // fresh: gob leaves absent (zero) fields alone
	err := r.dec.Decode(&p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("shuffle: segment cut short: %w", err)
	}
	return p.K, p.V, err
}

// sliceSource is a Source over sorted pairs in memory.
type sliceSource[K cmp.Ordered, V any] struct {
	ps []Pair[K, V]
	i  int
}

func (s *sliceSource[K, V]) Next() (K, V, error) {
	if s.i >= len(s.ps) {
		var k K
		var v V
		return k, v, io.EOF
	}
	p := s.ps[s.i]
	s.ps[s.i] = Pair[K, V]{} // let the values go as they are written
	s.i++
	return p.K, p.V, nil
}

// Slice returns a Source over pairs, which must be sorted by key.
func Slice[K cmp.Ordered, V any](ps []Pair[K, V]) Source[K, V] {
	return &sliceSource[K, V]{ps: ps}
}

// Merger merges sorted sources into one sorted stream; among equal keys,
// pairs of an earlier source come first.
type Merger[K cmp.Ordered, V any] struct {
	srcs   []Source[K, V]
	heap   []cursor[K, V]
	primed bool
	err    error
}

type cursor[K cmp.Ordered, V any] struct {
	k   K
	v   V
	src int
}

// NewMerger merges srcs.
func NewMerger[K cmp.Ordered, V any](srcs []Source[K, V]) *Merger[K, V] {
	return &Merger[K, V]{srcs: srcs}
}

func (m *Merger[K, V]) less(i, j int) bool {
	a, b := &m.heap[i], &m.heap[j]
	if c := cmp.Compare(a.k, b.k); c != 0 {
		return c < 0
	}
	return a.src < b.src
}

func (m *Merger[K, V]) down(i int) {
	n := len(m.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		s := l
		if r := l + 1; r < n && m.less(r, l) {
			s = r
		}
		if !m.less(s, i) {
			return
		}
		m.heap[i], m.heap[s] = m.heap[s], m.heap[i]
		i = s
	}
}

func (m *Merger[K, V]) prime() {
	m.primed = true
	for i, s := range m.srcs {
		k, v, err := s.Next()
		if err == io.EOF {
			continue
		}
		if err != nil {
			m.err = err
			return
		}
		m.heap = append(m.heap, cursor[K, V]{k, v, i})
	}
	for i := len(m.heap)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
}

// Peek returns the key of the next pair; ok is false at the end or after
// an error.
func (m *Merger[K, V]) Peek() (k K, ok bool) {
	if !m.primed {
		m.prime()
	}
	if m.err != nil || len(m.heap) == 0 {
		return k, false
	}
	return m.heap[0].k, true
}

// Next returns the next pair, or io.EOF at the end, or the first error of
// a source.
func (m *Merger[K, V]) Next() (K, V, error) {
	var k K
	var v V
	if _, ok := m.Peek(); !ok {
		if m.err != nil {
			return k, v, m.err
		}
		return k, v, io.EOF
	}
	top := &m.heap[0]
	k, v = top.k, top.v
	nk, nv, err := m.srcs[top.src].Next()
	switch {
	case err == io.EOF:
		last := len(m.heap) - 1
		m.heap[0] = m.heap[last]
		m.heap = m.heap[:last]
	case err != nil:
		m.err = err
		return k, v, nil // this pair is good; the next call reports the error
	default:
		top.k, top.v = nk, nv
	}
	m.down(0)
	return k, v, nil
}

// Err returns the first error of a source.
func (m *Merger[K, V]) Err() error { return m.err }

// Groups calls fn once per key of m, in key order, with an iterator over
// the key's values that streams them from m: a key with more values than
// fit in memory is never held whole. Values fn does not consume are
// skipped. It stops at fn's first error, or m's.
func Groups[K cmp.Ordered, V any](m *Merger[K, V], fn func(k K, vs func(yield func(V) bool)) error) error {
	for {
		k, v, err := m.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		first := true
		vs := func(yield func(V) bool) {
			if first {
				first = false
				if !yield(v) {
					return
				}
			}
			for {
				nk, ok := m.Peek()
				if !ok || nk != k {
					return
				}
				_, nv, err := m.Next()
				if err != nil || !yield(nv) {
					return
				}
			}
		}
		if err := fn(k, vs); err != nil {
			return err
		}
		for { // what fn left of this key
			nk, ok := m.Peek()
			if !ok || nk != k {
				break
			}
			if _, _, err := m.Next(); err != nil {
				return err
			}
		}
		if m.err != nil {
			return m.err
		}
	}
}

// Hasher returns a hash of keys of type K that is the same in every
// process of one platform: the partition of a key must not depend on which
// mapper saw it.
func Hasher[K cmp.Ordered]() func(K) uint64 {
	var zero K
	if reflect.TypeFor[K]().Kind() == reflect.String {
		return func(k K) uint64 {
			s := *(*string)(unsafe.Pointer(&k))
			h := fnv.New64a()
			io.WriteString(h, s)
			return h.Sum64()
		}
	}
	return func(k K) uint64 {
		if k == zero {
			k = zero // +0 and -0 are one key
		}
		b := unsafe.Slice((*byte)(unsafe.Pointer(&k)), unsafe.Sizeof(k))
		var x uint64
		for _, c := range b {
			x = x<<8 | uint64(c)
			x ^= x >> 29
			x *= 0x9e3779b97f4a7c15
		}
		return x ^ x>>32
	}
}

// RangePartition returns the partition of k among len(bounds)+1 key ranges:
// partition i holds the keys k with bounds[i-1] <= k < bounds[i].
func RangePartition[K cmp.Ordered](bounds []K, k K) int {
	i, found := slices.BinarySearch(bounds, k)
	if found {
		for i < len(bounds) && bounds[i] == k {
			i++
		}
	}
	return i
}

// Bounds picks the r-1 keys that cut a sorted sample into r ranges of
// equal size; duplicates are dropped, so there may be fewer.
func Bounds[K cmp.Ordered](sample []K, r int) []K {
	slices.SortFunc(sample, cmp.Compare[K])
	var b []K
	if len(sample) == 0 {
		return nil
	}
	for i := 1; i < r; i++ {
		k := sample[int(math.Round(float64(i)*float64(len(sample))/float64(r)))%len(sample)]
		if len(b) == 0 || cmp.Less(b[len(b)-1], k) {
			b = append(b, k)
		}
	}
	return b
}

// Footer appends the index footer of an object whose segments end at
// offsets (offs[0] = 0, offs[R] = end of the last segment).
func Footer(offs []int64) []byte {
	j, _ := json.Marshal(offs)
	return binary.BigEndian.AppendUint64(j, uint64(len(j)))
}
