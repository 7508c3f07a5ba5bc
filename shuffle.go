// MapShuffle: mappers emit key/value pairs, the framework partitions the
// keys over R reducers through storage, and each reducer sees its keys in
// order with all their values. The data path is in internal/shuffle.

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
	"iter"
	"math"
	mrand "math/rand/v2"
	"os"
	"runtime/debug"
	"sync"
	"unsafe"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/shuffle"
	"github.com/lithops-go/lithops/internal/worker"
	"golang.org/x/sync/errgroup"
)

// Mapper is a registered shuffle mapper: it reads one input and emits
// key/value pairs. Create it with MapperFunc at package level.
type Mapper[In any, K cmp.Ordered, V any] struct {
	name    string
	fn      func(context.Context, In, func(K, V)) error
	combine func(context.Context, K, iter.Seq[V]) (V, error)
	run     *Function[shuffleMapTask[In, K], shuffleSegments]
	sample  *Function[shuffleMapTask[In, K], []K]
}

// Name returns the name the mapper was registered under.
func (m *Mapper[In, K, V]) Name() string { return m.name }

// MapperOption configures a Mapper.
type MapperOption[K cmp.Ordered, V any] func(*mapperOptions[K, V])

type mapperOptions[K cmp.Ordered, V any] struct {
	combine func(context.Context, K, iter.Seq[V]) (V, error)
}

// WithCombiner folds the values of one key into one value on the mapper,
// before they go to storage (word count's partial sums): as they are
// emitted (every 16 values of a key), and when the mapper spills a run and
// writes its segments. A combiner must be associative and commutative (it
// may see a key's values in any grouping), and its result is what the
// reducer sees as a value.
func WithCombiner[K cmp.Ordered, V any](fn func(ctx context.Context, k K, vs iter.Seq[V]) (V, error)) MapperOption[K, V] {
	return func(o *mapperOptions[K, V]) { o.combine = fn }
}

// Reducer is a registered shuffle reducer: it gets one key and an iterator
// over all of that key's values. Create it with ReducerFunc at package level.
type Reducer[K cmp.Ordered, V, Out any] struct {
	name string
	fn   func(context.Context, K, iter.Seq[V]) (Out, error)
	run  *Function[shuffleReduceTask[K, V, Out], shuffleOutput]
}

// Name returns the name the reducer was registered under.
func (r *Reducer[K, V, Out]) Name() string { return r.name }

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

// shuffleReduceTask is the input of one reducer call. Its type names K, V
// and Out, so that a worker whose reducer has other types is a mismatch.
type shuffleReduceTask[K cmp.Ordered, V, Out any] struct {
	Partition int
	Sources   []shuffleRef
	Codec     string
	Bucket    string
	Executor  string
	Job       string
	Limit     int64
	FanIn     int // segments merged at once; 0: shuffleFanIn

	_ [0]V
	_ [0]Out
}

// shuffleOutput is a reducer's result: the object holding its output.
type shuffleOutput struct {
	Key  string
	Keys int64
	Size int64
	Runs int // sorted runs merged on local disk first
}

// MapperFunc registers a shuffle mapper under name, for MapShuffle: fn
// reads one input and calls emit for each pair (emit is not safe for
// concurrent use). Call it at package level, as Func. It also registers
// name+".sample", the call that samples keys for sorted output.
func MapperFunc[In any, K cmp.Ordered, V any](name string, fn func(ctx context.Context, in In, emit func(K, V)) error, opts ...MapperOption[K, V]) *Mapper[In, K, V] {
	if fn == nil {
		panic(fmt.Sprintf("lithops.MapperFunc(%q): nil function", name))
	}
	var o mapperOptions[K, V]
	for _, opt := range opts {
		opt(&o)
	}
	m := &Mapper[In, K, V]{name: name, fn: fn, combine: o.combine}
	m.run = Func(name, m.mapCall)
	m.sample = Func(name+".sample", m.sampleCall)
	return m
}

// ReducerFunc registers a shuffle reducer under name, for MapShuffle: fn
// gets one key and an iterator over its values, which streams them from
// storage (a key with more values than fit in memory is never held whole;
// the iterator can be ranged over once). Call it at package level, as Func.
func ReducerFunc[K cmp.Ordered, V, Out any](name string, fn func(ctx context.Context, k K, vs iter.Seq[V]) (Out, error)) *Reducer[K, V, Out] {
	if fn == nil {
		panic(fmt.Sprintf("lithops.ReducerFunc(%q): nil function", name))
	}
	r := &Reducer[K, V, Out]{name: name, fn: fn}
	r.run = Func(name, r.reduceCall)
	return r
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
		return out, worker.HandlerError(fmt.Errorf("lithops: shuffle buffer: %w", addErr))
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
		return out, worker.HandlerError(fmt.Errorf("lithops: write shuffle segments: %w", err))
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

// readAhead reads rc in chunks on a goroutine of its own, depth chunks
// ahead of the reader: the reducer's range reads of all mappers proceed in
// parallel while it merges.
type readAhead struct {
	rc     io.ReadCloser
	chunks chan []byte
	errc   chan error
	stop   chan struct{}
	cur    []byte
	err    error
	once   sync.Once
}

func newReadAhead(rc io.ReadCloser, chunk, depth int) *readAhead {
	a := &readAhead{rc: rc, chunks: make(chan []byte, depth), errc: make(chan error, 1), stop: make(chan struct{})}
	go func() {
		defer close(a.chunks)
		for {
			b := make([]byte, chunk)
			n, err := io.ReadFull(rc, b)
			if n > 0 {
				select {
				case a.chunks <- b[:n]:
				case <-a.stop:
					return
				}
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return
			}
			if err != nil {
				a.errc <- err
				return
			}
		}
	}()
	return a
}

func (a *readAhead) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		if a.err != nil {
			return 0, a.err
		}
		b, ok := <-a.chunks
		if !ok {
			select {
			case a.err = <-a.errc:
			default:
				a.err = io.EOF
			}
			continue
		}
		a.cur = b
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

func (a *readAhead) Close() error {
	a.once.Do(func() { close(a.stop) })
	return a.rc.Close()
}

// shuffleReads is how many segments a reducer opens at once.
const shuffleReads = 16

// shuffleFanIn is how many segments a reducer merges at once; past it, it
// merges them into sorted runs on local disk first.
const shuffleFanIn = 64

// spillRun writes the pairs of m to a temporary file (removed at once: it
// lives while open) and returns a source reading them back, and the file.
func spillRun[K cmp.Ordered, V any](codec string, m *shuffle.Merger[K, V]) (shuffle.Source[K, V], io.Closer, error) {
	f, err := os.CreateTemp("", "lithops-shuffle-merge-*")
	if err != nil {
		return nil, nil, err
	}
	os.Remove(f.Name())
	bw := bufio.NewWriterSize(f, 256<<10)
	sw, err := shuffle.NewWriter[K, V](codec, bw)
	if err != nil {
		return nil, f, err
	}
	for {
		k, v, err := m.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, f, err
		}
		if err := sw.Write(k, v); err != nil {
			return nil, f, err
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, f, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, f, err
	}
	rd, err := shuffle.NewReader[K, V](codec, bufio.NewReaderSize(f, 256<<10))
	return rd, f, err
}

// reduceCall runs on a worker: range reads of this partition's segment of
// every mapper, in parallel, merged; the user's reducer once per key; the
// output, in key order, into one object of this execution's own.
func (r *Reducer[K, V, Out]) reduceCall(ctx context.Context, t shuffleReduceTask[K, V, Out]) (shuffleOutput, error) {
	var out shuffleOutput
	st := StorageFrom(ctx)
	if st == nil {
		return out, errors.New("lithops: a shuffle reducer runs only as a MapShuffle call")
	}
	fanIn := t.FanIn
	if fanIn <= 0 {
		fanIn = shuffleFanIn
	}
	// Read-ahead per open segment: the memory limit shared by at most
	// fanIn of them, 32 KiB to 1 MiB a chunk, two chunks deep.
	chunk := int(min(max(bufferLimit(t.Limit)/int64(2*max(min(len(t.Sources), fanIn), 1)), 32<<10), 1<<20))
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	// open starts range reads of refs, in parallel.
	open := func(refs []shuffleRef) ([]shuffle.Source[K, V], []io.Closer, error) {
		srcs := make([]shuffle.Source[K, V], len(refs))
		readers := make([]io.Closer, len(refs))
		// Not errgroup.WithContext: its context ends with Wait, and the
		// readers stream under the context they were opened with.
		var eg errgroup.Group
		eg.SetLimit(shuffleReads)
		for i, src := range refs {
			eg.Go(func() error {
				rc, err := st.GetRange(ctx, t.Bucket, src.Key, src.Off, src.Len)
				if err != nil {
					return fmt.Errorf("read segment of %s: %w", src.Key, err)
				}
				ra := newReadAhead(rc, chunk, 2)
				readers[i] = ra
				rd, err := shuffle.NewReader[K, V](t.Codec, bufio.NewReaderSize(ra, 32<<10))
				if err != nil {
					return err
				}
				srcs[i] = rd
				return nil
			})
		}
		err := eg.Wait()
		opened := readers[:0]
		for _, r := range readers {
			if r != nil {
				opened = append(opened, r)
			}
		}
		return srcs, opened, err
	}
	var srcs []shuffle.Source[K, V]
	if len(t.Sources) <= fanIn {
		var readers []io.Closer
		var err error
		srcs, readers, err = open(t.Sources)
		closers = append(closers, readers...)
		if err != nil {
			return out, worker.HandlerError(fmt.Errorf("lithops: shuffle reducer %d: %w", t.Partition, err))
		}
	} else {
		// More segments than the memory holds read-aheads for: merge them
		// fanIn at a time into sorted runs on local disk, then merge the runs.
		for i := 0; i < len(t.Sources); i += fanIn {
			batch, readers, err := open(t.Sources[i:min(i+fanIn, len(t.Sources))])
			if err == nil {
				var run shuffle.Source[K, V]
				var f io.Closer
				run, f, err = spillRun(t.Codec, shuffle.NewMerger(batch))
				if f != nil {
					closers = append(closers, f) // the run stays open until the end
				}
				srcs = append(srcs, run)
			}
			for _, r := range readers { // the batch is merged
				r.Close()
			}
			if err != nil {
				return out, worker.HandlerError(fmt.Errorf("lithops: shuffle reducer %d: %w", t.Partition, err))
			}
			out.Runs++
		}
	}
	merger := shuffle.NewMerger(srcs)
	out.Key = protocol.ShuffleKey(t.Executor, t.Job, CallIDFrom(ctx), token())
	var userErr error
	err := putStream(ctx, st.Put, t.Bucket, out.Key, func(w io.Writer) error {
		cw := &countingWriter{w: w}
		sw, err := shuffle.NewWriter[K, Out](t.Codec, cw)
		if err != nil {
			return err
		}
		err = shuffle.Groups(merger, func(k K, vs func(func(V) bool)) error {
			o, err := r.fn(ctx, k, vs)
			if err != nil {
				userErr = err
				return err
			}
			out.Keys++
			return sw.Write(k, o)
		})
		out.Size = cw.n
		return err
	})
	if userErr != nil {
		return out, userErr // the user's error, as the function returned it
	}
	if err != nil {
		return out, worker.HandlerError(fmt.Errorf("lithops: shuffle reducer %d: %w", t.Partition, err))
	}
	return out, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ShuffleOption configures MapShuffle.
type ShuffleOption func(*shuffleOptions)

type shuffleOptions struct {
	reducers int
	sorted   bool
	sample   int
	memory   int64
	fanIn    int
	call     []CallOption
}

// Reducers sets the number of reducers, R (default 1).
func Reducers(n int) ShuffleOption { return func(o *shuffleOptions) { o.reducers = n } }

// SortedOutput partitions the keys by range instead of by hash: reducer i
// gets keys below those of reducer i+1, so the outputs end to end are
// globally sorted. The ranges come from a sample of keys: a first job runs
// the mapper over the first 65536 keys of each input and keeps a sample of
// them. The sample decides only how evenly the reducers are loaded, never
// what they output.
func SortedOutput() ShuffleOption { return func(o *shuffleOptions) { o.sorted = true } }

// ShuffleMemory sets the bytes a mapper buffers before it spills a sorted
// run to local disk, and the bytes of read-ahead of a reducer. Default: a
// quarter of the worker's memory limit (runtime_memory).
func ShuffleMemory(bytes int64) ShuffleOption { return func(o *shuffleOptions) { o.memory = bytes } }

// ShuffleCallOptions applies call options (WithRetries, WithMemory,
// WithTimeout, …) to the mapper and reducer jobs.
func ShuffleCallOptions(opts ...CallOption) ShuffleOption {
	return func(o *shuffleOptions) { o.call = append(o.call, opts...) }
}

// Shuffle is a running or finished MapShuffle: R output objects in
// storage, each holding its reducer's keys and outputs in key order.
type Shuffle[K cmp.Ordered, Out any] struct {
	e     *Executor
	codec string
	done  chan struct{}

	mu      sync.Mutex
	err     error
	outputs []shuffleOutput
	stats   ShuffleStats
	iterErr error
}

// ShuffleStats describe a finished shuffle.
type ShuffleStats struct {
	MapJob, ReduceJob string
	Pairs             int64 // pairs the mappers emitted
	Spills            int   // sorted runs the mappers spilled to disk
	SegmentBytes      int64 // bytes of the mappers' segment objects
	Keys              int64 // keys the reducers saw
	ReduceRuns        int   // sorted runs reducers merged on local disk (more segments than they merge at once)
	Bounds            int   // range bounds (sorted output); 0: hash
}

// Wait waits for the reducers and returns the shuffle's error: a failed
// mapper's or reducer's (a *CallError), or why it could not run.
func (s *Shuffle[K, Out]) Wait(ctx context.Context) error {
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stats returns the shuffle's figures once it has finished.
func (s *Shuffle[K, Out]) Stats(ctx context.Context) (ShuffleStats, error) {
	err := s.Wait(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats, err
}

// Outputs waits and returns the keys of the R output objects, in the
// executor's storage bucket, in reducer order. Each holds one codec stream
// of pairs (key, reducer output) in key order; with SortedOutput they are
// also in order one after the other. They are records of the reduce job:
// the executor deletes them with its other records (Close, Clean).
func (s *Shuffle[K, Out]) Outputs(ctx context.Context) ([]string, error) {
	if err := s.Wait(ctx); err != nil {
		return nil, err
	}
	keys := make([]string, len(s.outputs))
	for i, o := range s.outputs {
		keys[i] = o.Key
	}
	return keys, nil
}

// All waits, then reads the outputs back, typed, in key order across all
// reducers (merging them when the keys were hashed). Iteration stops at
// the first error, which Err then returns.
func (s *Shuffle[K, Out]) All(ctx context.Context) iter.Seq2[K, Out] {
	return func(yield func(K, Out) bool) {
		s.setIterErr(nil)
		if err := s.Wait(ctx); err != nil {
			s.setIterErr(err)
			return
		}
		st := s.e.st
		srcs := make([]shuffle.Source[K, Out], 0, len(s.outputs))
		for _, o := range s.outputs {
			if o.Size == 0 {
				continue
			}
			rc, err := st.GetRange(ctx, s.e.bucket, o.Key, 0, -1)
			if err != nil {
				s.setIterErr(err)
				return
			}
			defer rc.Close()
			rd, err := shuffle.NewReader[K, Out](s.codec, rc)
			if err != nil {
				s.setIterErr(err)
				return
			}
			srcs = append(srcs, rd)
		}
		m := shuffle.NewMerger(srcs)
		for {
			k, v, err := m.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				s.setIterErr(err)
				return
			}
			if !yield(k, v) {
				return
			}
		}
	}
}

func (s *Shuffle[K, Out]) setIterErr(err error) {
	s.mu.Lock()
	s.iterErr = err
	s.mu.Unlock()
}

// Err returns the error that stopped the last iteration of All, or nil.
func (s *Shuffle[K, Out]) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.iterErr
}

// MapShuffle runs mapper over inputs (any values, Partition's chunks
// among them), partitions the pairs it emits by key over R reducers
// (Reducers; hash partitioning, or ranges with SortedOutput), and runs
// reducer once per key with that key's values, each reducer over its keys
// in order. Intermediate data never passes the client: each mapper writes
// one object holding its R sorted segments, and each reducer reads its
// segment of every mapper with range reads and merges them.
//
// Exactly once: every execution of a mapper or reducer writes an object of
// its own, and only the one that the call's final status names is read, so
// a retried or duplicated call never doubles its pairs. It returns when
// the jobs are submitted; Wait, Outputs and All wait for the reducers.
func MapShuffle[In any, K cmp.Ordered, V, Out any](ctx context.Context, e *Executor, mapper *Mapper[In, K, V], inputs []In, reducer *Reducer[K, V, Out], opts ...ShuffleOption) (*Shuffle[K, Out], error) {
	if mapper == nil || reducer == nil {
		return nil, errors.New("lithops: MapShuffle with a nil mapper or reducer")
	}
	o := shuffleOptions{reducers: 1}
	for _, opt := range opts {
		opt(&o)
	}
	if o.reducers < 1 {
		return nil, fmt.Errorf("lithops: MapShuffle with %d reducers", o.reducers)
	}
	if o.sample <= 0 {
		o.sample = max(64, min(4096, 32*o.reducers))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &Shuffle[K, Out]{e: e, codec: e.codec.Name(), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := shuffleRun(ctx, s, mapper, inputs, reducer, o); err != nil {
			s.fail(err)
		}
	}()
	return s, nil
}

func (s *Shuffle[K, Out]) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// reserveJob takes the number of the next job, so that its calls can be
// told their job's id.
func (e *Executor) reserveJob() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.nextJob
	e.nextJob++
	return n
}

// testHookShuffleMapped, set by tests, runs when a shuffle's mappers have
// finished, before its reducers start.
var testHookShuffleMapped func(mapJob *jobState)

// shuffleRun is the client side of one shuffle, typed by all its types.
func shuffleRun[In any, K cmp.Ordered, V, Out any](ctx context.Context, s *Shuffle[K, Out], mapper *Mapper[In, K, V], inputs []In, reducer *Reducer[K, V, Out], o shuffleOptions) error {
	e := s.e
	task := func(in In, num int) shuffleMapTask[In, K] {
		return shuffleMapTask[In, K]{In: in, Parts: o.reducers, Limit: o.memory, Codec: s.codec, Bucket: e.bucket,
			Executor: e.id, Job: fmt.Sprintf("M%03d", num)}
	}
	var bounds []K
	if o.sorted && o.reducers > 1 && len(inputs) > 0 {
		tasks := make([]shuffleMapTask[In, K], len(inputs))
		for i, in := range inputs {
			tasks[i] = task(in, 0)
			tasks[i].Sample = o.sample
		}
		futs, err := Map(ctx, e, mapper.sample, tasks, o.call...)
		if err != nil {
			return err
		}
		samples, err := futs.Results(ctx)
		if err != nil {
			return fmt.Errorf("lithops: sample the keys of shuffle %s: %w", mapper.name, err)
		}
		var all []K
		for _, ks := range samples {
			all = append(all, ks...)
		}
		bounds = shuffle.Bounds(all, o.reducers)
	}
	num := e.reserveJob()
	tasks := make([]shuffleMapTask[In, K], len(inputs))
	for i, in := range inputs {
		tasks[i] = task(in, num)
		tasks[i].Range, tasks[i].Bounds = o.sorted, bounds
	}
	mjs, err := mapJob(ctx, e, mapper.run, tasks, num, o.call)
	if err != nil {
		return err
	}
	mjs.pins.Add(1) // the reducers read the segments
	defer func() {
		if mjs.pins.Add(-1) == 0 {
			e.release(mjs)
		}
	}()
	segs := make([]shuffleSegments, len(inputs))
	for i, c := range mjs.calls {
		f := &Future[shuffleSegments]{c: c}
		v, err := f.Result(ctx)
		if err != nil {
			return fmt.Errorf("lithops: map stage of shuffle %s/%s: %w", e.id, mjs.job.JobID, err)
		}
		if len(v.Offsets) != o.reducers+1 {
			return fmt.Errorf("lithops: map stage of shuffle %s/%s: call %s indexes %d segments, want %d", e.id, mjs.job.JobID, c.id, len(v.Offsets)-1, o.reducers)
		}
		segs[i] = v
	}
	if testHookShuffleMapped != nil {
		testHookShuffleMapped(mjs)
	}
	stats := ShuffleStats{MapJob: mjs.job.JobID, Bounds: len(bounds)}
	for _, sg := range segs {
		stats.Pairs += sg.Pairs
		stats.Spills += sg.Spills
		stats.SegmentBytes += sg.Offsets[len(sg.Offsets)-1]
	}
	rnum := e.reserveJob()
	rtasks := make([]shuffleReduceTask[K, V, Out], o.reducers)
	for r := range rtasks {
		t := shuffleReduceTask[K, V, Out]{Partition: r, Codec: s.codec, Bucket: e.bucket, Executor: e.id,
			Job: fmt.Sprintf("M%03d", rnum), Limit: o.memory, FanIn: o.fanIn}
		for _, sg := range segs {
			if n := sg.Offsets[r+1] - sg.Offsets[r]; n > 0 {
				t.Sources = append(t.Sources, shuffleRef{Key: sg.Key, Off: sg.Offsets[r], Len: n})
			}
		}
		rtasks[r] = t
	}
	rjs, err := mapJob(ctx, e, reducer.run, rtasks, rnum, o.call)
	if err != nil {
		return err
	}
	stats.ReduceJob = rjs.job.JobID
	outs := make([]shuffleOutput, o.reducers)
	for i, c := range rjs.calls {
		f := &Future[shuffleOutput]{c: c}
		v, err := f.Result(ctx)
		if err != nil {
			return fmt.Errorf("lithops: reduce stage of shuffle %s/%s: %w", e.id, rjs.job.JobID, err)
		}
		outs[i] = v
		stats.Keys += v.Keys
		stats.ReduceRuns += v.Runs
	}
	s.mu.Lock()
	s.outputs, s.stats = outs, stats
	s.mu.Unlock()
	return nil
}
