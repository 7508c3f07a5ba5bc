// The map side of MapShuffle: a mapper call writes one object of R sorted
// segments with an index; the key sample for range partitioning.

package lithops

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"runtime/debug"
	"unsafe"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/shuffle"
	"github.com/lithops-go/lithops/internal/worker"
)

// shuffleMapTask is the input of one mapper call.
type shuffleMapTask[In any, K cmp.Ordered] struct {
	In       In
	Parts    int
	Range    bool // partition by Bounds instead of by hash
	Bounds   []K  // range partitioning: up to Parts-1 sorted bounds
	Limit    int64
	Codec    string
	Bucket   string
	Executor string
	Job      string
	Sample   int // sample job: keys to keep
}

// shuffleSegments is a mapper's result: the object that holds its sorted
// segments and where each segment starts (Parts+1 offsets).
type shuffleSegments struct {
	Key     string
	Offsets []int64
	Pairs   int64
	Spills  int
}

// shuffleRef is one mapper's segment for one reducer.
type shuffleRef struct {
	Key      string
	Off, Len int64
}

// bufferLimit is how many bytes of pairs a mapper buffers before it spills
// a sorted run: a quarter of the worker's memory limit (which backends set
// from runtime_memory), 128 MiB when there is none, or what the job says.
func bufferLimit(job int64) int64 {
	if job > 0 {
		return job
	}
	if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 {
		return l / 4
	}
	return 128 << 20
}

// sizeOf estimates the memory a key or value holds: its size, plus the
// bytes of a string or byte slice.
func sizeOf[T any](x T) int64 {
	n := int64(unsafe.Sizeof(x))
	switch v := any(x).(type) {
	case string:
		n += int64(len(v))
	case []byte:
		n += int64(len(v))
	}
	return n
}

func token() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// mapCall runs on a worker: the user's mapper into a Sorter, then the
// sorted segments into one object of this execution's own.
func (m *Mapper[In, K, V]) mapCall(ctx context.Context, t shuffleMapTask[In, K]) (shuffleSegments, error) {
	var out shuffleSegments
	st := StorageFrom(ctx)
	if st == nil {
		return out, errors.New("lithops: a shuffle mapper runs only as a MapShuffle call")
	}
	s := &shuffle.Sorter[K, V]{Parts: max(t.Parts, 1), Limit: bufferLimit(t.Limit), Codec: t.Codec,
		SizeOf: func(k K, v V) int64 { return sizeOf(k) + sizeOf(v) + 8 }}
	defer s.Close()
	if t.Range {
		s.Partition = func(k K) int { return shuffle.RangePartition(t.Bounds, k) }
	} else {
		h := shuffle.Hasher[K]()
		n := uint64(s.Parts)
		s.Partition = func(k K) int { return int(h(k) % n) }
	}
	if m.combine != nil {
		s.Combine = func(k K, vs func(func(V) bool)) (V, error) { return m.combine(ctx, k, vs) }
	}
	var addErr error
	emit := func(k K, v V) {
		if addErr == nil {
			addErr = s.Add(k, v)
			out.Pairs++
		}
	}
	if err := m.fn(ctx, t.In, emit); err != nil {
		return out, err
	}
	if addErr != nil {
		return out, worker.HandlerError(fmt.Errorf("lithops: shuffle buffer: %w", codecHint(addErr)))
	}
	out.Key = protocol.ShuffleKey(t.Executor, t.Job, CallIDFrom(ctx), token())
	var offs []int64
	err := putStream(ctx, st.Put, t.Bucket, out.Key, func(w io.Writer) error {
		var err error
		if offs, err = s.WriteSegments(w); err != nil {
			return err
		}
		_, err = w.Write(shuffle.Footer(offs))
		return err
	})
	if err != nil {
		return out, worker.HandlerError(fmt.Errorf("lithops: write shuffle segments: %w", codecHint(err)))
	}
	out.Offsets, out.Spills = offs, s.Spills()
	return out, nil
}

// errSampled stops a sampling mapper once it has seen enough keys.
var errSampled = errors.New("lithops: sample complete")

// sampleScan is how many keys of each input a sample looks at.
const sampleScan = 1 << 16

// sampleCall runs on a worker: a reservoir sample of t.Sample keys among
// the first sampleScan keys the mapper emits.
func (m *Mapper[In, K, V]) sampleCall(ctx context.Context, t shuffleMapTask[In, K]) (keys []K, err error) {
	r := mrand.New(mrand.NewPCG(uint64(len(CallIDFrom(ctx))), 1))
	seen := 0
	emit := func(k K, _ V) {
		if seen >= sampleScan {
			panic(errSampled) // recovered below; the mapper's defers run
		}
		if len(keys) < t.Sample {
			keys = append(keys, k)
		} else if j := r.IntN(seen + 1); j < t.Sample {
			keys[j] = k
		}
		seen++
	}
	defer func() {
		if p := recover(); p != nil {
			if p != errSampled {
				panic(p)
			}
			err = nil
		}
	}()
	if err := m.fn(ctx, t.In, emit); err != nil {
		return nil, err
	}
	return keys, nil
}

// putStream stores what write writes under key, streaming.
func putStream(ctx context.Context, put func(context.Context, string, string, io.Reader) error, bucket, key string, write func(io.Writer) error) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<20)
		err := write(bw)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
		done <- err
	}()
	err := put(ctx, bucket, key, pr)
	pr.CloseWithError(errors.New("lithops: upload ended")) // unblocks the writer if the upload stopped early
	if werr := <-done; werr != nil {
		return werr
	}
	return err
}
