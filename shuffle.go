// MapShuffle: mappers emit key/value pairs, the framework partitions the
// keys over R reducers through storage, and each reducer sees its keys in
// order with all their values. The data path is in internal/shuffle.

package lithops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"

	"github.com/lithops-go/lithops/internal/shuffle"
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
