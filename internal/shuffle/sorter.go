package shuffle

import (
	"bufio"
	"cmp"
	"io"
	"os"
	"slices"
)

// Sorter is a mapper's buffer: pairs go into one of Parts partitions; when
// the buffer holds more than Limit bytes (as SizeOf estimates them) it sorts
// each partition and spills them as one sorted run to a file under Dir.
// WriteSegments merges the runs and what is in memory into the final segments.
// A Sorter is not safe for concurrent use.
type Sorter[K cmp.Ordered, V any] struct {
	Parts     int
	Partition func(K) int
	Limit     int64  // bytes of buffered pairs before a spill; <= 0: never spill
	Dir       string // for runs; "": os.TempDir()
	Codec     string
	// Combine, if set, folds the values of one key into one value, when
	// a run is spilled and when the segments are written.
	Combine func(k K, vs func(yield func(V) bool)) (V, error)
	// SizeOf estimates the memory a pair holds.
	SizeOf func(K, V) int64

	buf  [][]Pair[K, V]
	size int64
	runs []run
	// comb holds the values of each key not yet folded, when Combine is
	// set: a key's values are folded every combineEvery values, so a key
	// seen a million times costs one value, not a million pairs to sort.
	comb map[K][]V
}

// combineEvery is how many values of one key the buffer holds before it
// folds them into one with Combine.
const combineEvery = 16

// mapEntry is the estimated overhead of a key in the combining map.
const mapEntry = 48

type run struct {
	f    *os.File
	offs []int64
}

// Add buffers one pair, spilling first if the buffer is full.
func (s *Sorter[K, V]) Add(k K, v V) error {
	if s.buf == nil {
		s.buf = make([][]Pair[K, V], s.Parts)
	}
	if s.Combine != nil {
		return s.addCombining(k, v)
	}
	p := 0
	if s.Parts > 1 {
		p = s.Partition(k)
	}
	s.buf[p] = append(s.buf[p], Pair[K, V]{k, v})
	s.size += s.SizeOf(k, v)
	if s.Limit > 0 && s.size > s.Limit {
		return s.spill()
	}
	return nil
}

func (s *Sorter[K, V]) addCombining(k K, v V) error {
	if s.comb == nil {
		s.comb = make(map[K][]V)
	}
	vs, seen := s.comb[k]
	if !seen {
		s.size += mapEntry
		vs = make([]V, 0, combineEvery)
	}
	vs = append(vs, v)
	s.size += s.SizeOf(k, v)
	if len(vs) == combineEvery {
		folded, err := s.fold(k, vs)
		if err != nil {
			return err
		}
		vs = append(vs[:0], folded)
	}
	s.comb[k] = vs
	if s.Limit > 0 && s.size > s.Limit {
		return s.spill()
	}
	return nil
}

// fold combines vs into one value and accounts for the memory it frees.
func (s *Sorter[K, V]) fold(k K, vs []V) (V, error) {
	for _, v := range vs {
		s.size -= s.SizeOf(k, v)
	}
	folded, err := s.Combine(k, slices.Values(vs))
	clear(vs)
	s.size += s.SizeOf(k, folded)
	return folded, err
}

// drainComb moves the combining map's keys, folded, into the partitions.
func (s *Sorter[K, V]) drainComb() error {
	for k, vs := range s.comb {
		v := vs[0]
		if len(vs) > 1 {
			var err error
			if v, err = s.fold(k, vs); err != nil {
				return err
			}
		}
		p := 0
		if s.Parts > 1 {
			p = s.Partition(k)
		}
		s.buf[p] = append(s.buf[p], Pair[K, V]{k, v})
	}
	s.comb = nil
	return nil
}

// Spills returns how many runs went to disk.
func (s *Sorter[K, V]) Spills() int { return len(s.runs) }

func (s *Sorter[K, V]) sortBuf() {
	for _, ps := range s.buf {
		slices.SortStableFunc(ps, func(a, b Pair[K, V]) int { return cmp.Compare(a.K, b.K) })
	}
}

func (s *Sorter[K, V]) spill() error {
	if err := s.drainComb(); err != nil {
		return err
	}
	s.sortBuf()
	f, err := os.CreateTemp(s.Dir, "lithops-shuffle-run-*")
	if err != nil {
		return err
	}
	os.Remove(f.Name()) // the open file lives on; nothing to clean if the process dies
	cw := &CountingWriter{W: bufio.NewWriterSize(f, 256<<10)}
	offs := make([]int64, 0, s.Parts+1)
	for p, ps := range s.buf {
		offs = append(offs, cw.N)
		if err := s.writeSegment(cw, Slice(ps)); err != nil {
			f.Close()
			return err
		}
		s.buf[p] = ps[:0:0]
	}
	offs = append(offs, cw.N)
	if err := cw.W.(*bufio.Writer).Flush(); err != nil {
		f.Close()
		return err
	}
	s.runs = append(s.runs, run{f, offs})
	s.size = 0
	return nil
}

// writeSegment writes src to w as one segment, combined if Combine is set.
func (s *Sorter[K, V]) writeSegment(w io.Writer, src Source[K, V]) error {
	sw, err := NewWriter[K, V](s.Codec, w)
	if err != nil {
		return err
	}
	m, ok := src.(*Merger[K, V])
	if s.Combine != nil {
		if !ok {
			m = NewMerger([]Source[K, V]{src})
		}
		return Groups(m, func(k K, vs func(func(V) bool)) error {
			v, err := s.Combine(k, vs)
			if err != nil {
				return err
			}
			return sw.Write(k, v)
		})
	}
	for {
		k, v, err := src.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := sw.Write(k, v); err != nil {
			return err
		}
	}
}

// WriteSegments writes the Parts sorted segments to w, merging the spilled runs
// with the buffer, and returns the Parts+1 segment offsets.
func (s *Sorter[K, V]) WriteSegments(w io.Writer) ([]int64, error) {
	if s.buf == nil {
		s.buf = make([][]Pair[K, V], s.Parts)
	}
	if err := s.drainComb(); err != nil {
		return nil, err
	}
	s.sortBuf()
	cw := &CountingWriter{W: w}
	offs := make([]int64, 0, s.Parts+1)
	for p := range s.Parts {
		offs = append(offs, cw.N)
		srcs := make([]Source[K, V], 0, len(s.runs)+1)
		for _, r := range s.runs {
			sr := io.NewSectionReader(r.f, r.offs[p], r.offs[p+1]-r.offs[p])
			rd, err := NewReader[K, V](s.Codec, bufio.NewReaderSize(sr, 64<<10))
			if err != nil {
				return nil, err
			}
			srcs = append(srcs, rd)
		}
		srcs = append(srcs, Slice(s.buf[p])) // the newest pairs last: emit order holds among equal keys
		var src Source[K, V] = srcs[0]
		if len(srcs) > 1 {
			src = NewMerger(srcs)
		}
		if err := s.writeSegment(cw, src); err != nil {
			return nil, err
		}
		s.buf[p] = nil
	}
	offs = append(offs, cw.N)
	return offs, nil
}

// Close removes the runs.
func (s *Sorter[K, V]) Close() error {
	for _, r := range s.runs {
		r.f.Close()
	}
	s.runs = nil
	s.buf = nil
	return nil
}

// CountingWriter counts the bytes written through it to W.
type CountingWriter struct {
	W io.Writer
	N int64
}

// Write writes p to W and counts what was written.
func (c *CountingWriter) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N += int64(n)
	return n, err
}
