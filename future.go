package lithops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
)

// State is where a call is in its life.
type State string

// Call states, as Lithops names them.
const (
	StateInvoked State = "invoked" // accepted by the backend, not started
	StateRunning State = "running" // a worker is running it
	StateSuccess State = "success" // finished, result available
	StateError   State = "error"   // finished with an error
)

// callState tracks one call on the client. Its outcome is set once.
type callState struct {
	job       *jobState // nil until a deferred call (a reducer) is submitted
	index     int
	id        string
	submitted time.Time

	// Lease tracking, under job.pollMu: the lease object's last ETag and
	// when (client clock) it last changed.
	leaseETag string
	leaseSeen time.Time

	mu     sync.Mutex
	memory int // instance memory of the next attempt after an escalation (0: the job's)
	// handedBack is 1 + the highest attempt handed back and run again: a
	// redelivered hand-back of the same attempt starts nothing more.
	handedBack int
	running    *protocol.Status
	status     *protocol.Status
	err        error
	done       chan struct{}
	// watchers hear of every change of the call (Wait, reducer proxies):
	// a change costs its own call's watchers, never a scan of other calls.
	watchers []*watcher
}

// A watcher is told of each change of the calls it watches. fn runs on
// the changing goroutine, outside the call's lock, and must not block.
type watcher struct{ fn func(*callState) }

// watch registers fn for changes of c; cancel unregisters it.
func (c *callState) watch(fn func(*callState)) (cancel func()) {
	w := &watcher{fn: fn}
	c.mu.Lock()
	c.watchers = append(c.watchers, w)
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.watchers {
			if x == w {
				last := len(c.watchers) - 1
				c.watchers[i] = c.watchers[last]
				c.watchers[last] = nil
				c.watchers = c.watchers[:last]
				if last == 0 {
					c.watchers = nil
				}
				return
			}
		}
	}
}

// changed tells c's watchers; c.mu must not be held.
func (c *callState) changed() {
	c.mu.Lock()
	ws := c.watchers
	if len(ws) > 1 {
		ws = append([]*watcher(nil), ws...)
	}
	c.mu.Unlock()
	for _, w := range ws {
		w.fn(c)
	}
}

func newCallState(j *jobState, index int, id string, submitted time.Time) *callState {
	return &callState{job: j, index: index, id: id, submitted: submitted, done: make(chan struct{})}
}

func (c *callState) doneChan() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}

func (c *callState) isDone() bool {
	select {
	case <-c.doneChan():
		return true
	default:
		return false
	}
}

// reset makes a finished call pending again (Rerun).
func (c *callState) reset(submitted time.Time) {
	c.mu.Lock()
	c.status, c.err, c.running = nil, nil, nil
	c.done = make(chan struct{})
	c.submitted = submitted
	c.mu.Unlock()
	c.changed()
}

func (c *callState) setRunning(st *protocol.Status) {
	c.mu.Lock()
	if c.status == nil && c.err == nil {
		c.running = st
	}
	c.mu.Unlock()
	c.changed()
}

// finish records the outcome; the first one wins.
func (c *callState) finish(st *protocol.Status, err error) bool {
	c.mu.Lock()
	if c.status != nil || c.err != nil {
		c.mu.Unlock()
		return false
	}
	c.status, c.err = st, err
	if st != nil {
		// The final status carries the start and worker too: the running
		// one is garbage now (a fifth of a finished call's memory).
		c.running = nil
	}
	close(c.done)
	j := c.job
	c.mu.Unlock()
	if j != nil && c.index >= 0 && c.index < len(j.calls) && j.calls[c.index] == c && j.remaining.Add(-1) == 0 {
		j.stop()
	}
	c.changed()
	return true
}

func (c *callState) state() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil || (c.status != nil && c.status.State == protocol.StateError):
		return StateError
	case c.status != nil:
		return StateSuccess
	case c.running != nil:
		return StateRunning
	}
	return StateInvoked
}

func (c *callState) wait(ctx context.Context) error {
	done := c.doneChan()
	select {
	case <-done: // a finished call answers even under an expired ctx
		return nil
	default:
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// outcome returns the encoded result or the call's error. It waits.
func (c *callState) outcome(ctx context.Context) ([]byte, *jobState, error) {
	if err := c.wait(ctx); err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	st, err, j := c.status, c.err, c.job
	c.mu.Unlock()
	if err != nil {
		return nil, j, err
	}
	if st.State == protocol.StateError {
		return nil, j, j.callError(st)
	}
	if st.HasResult {
		return st.Result, j, nil
	}
	raw, gerr := j.e.st.GetBytes(ctx, j.job.Bucket, st.ResultKey)
	if gerr != nil {
		return nil, j, &fetchError{fmt.Errorf("lithops: fetch result of %s/%s call %s: %w", j.e.id, j.job.JobID, c.id, gerr)}
	}
	return raw, j, nil
}

// fetchError is a failure to download a result that exists: the next
// Result call tries again.
type fetchError struct{ err error }

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

func (j *jobState) callError(st *protocol.Status) *CallError {
	r := st.Error
	return &CallError{
		Executor: j.e.id, Job: j.job.JobID, Call: st.CallID, Function: j.job.Function,
		Attempt: st.Attempt, Worker: st.WorkerID, Kind: r.Kind, Type: r.Type,
		Message: r.Message, Stack: r.Stack, ExitCode: r.ExitCode,
	}
}

// Stats are the timings and placement of one call.
type Stats struct {
	Submitted  time.Time     // the client submitted the job
	Started    time.Time     // the worker picked the call up
	FuncStart  time.Time     // the function began
	FuncEnd    time.Time     // the function returned
	Finished   time.Time     // the worker recorded the status
	Worker     string        // worker id
	Attempt    int           // attempt number, from 0
	ColdStart  bool          // first call of its worker process
	ResultSize int64         // bytes of the encoded result
	PeakRSS    int64         // worker's peak resident memory in bytes
	ExecTime   time.Duration // FuncEnd - FuncStart
}

// Future is the pending result of one call.
type Future[T any] struct {
	c *callState

	mu     sync.Mutex
	cached bool
	val    T
	err    error
}

// Result waits for the call and returns its result, or its error (a
// *CallError for failures of the call itself). ctx bounds the wait and the
// download of a result stored as its own object; when either is cut short
// or the download fails, a later call tries again. The call's own outcome
// is remembered.
func (f *Future[T]) Result(ctx context.Context) (T, error) {
	// Wait and download outside the lock, so that each caller's ctx bounds
	// its own wait; two callers may both download, and the first to finish
	// fills the cache.
	if err := f.c.wait(ctx); err != nil {
		var zero T
		return zero, err // the wait was cut short; the call goes on
	}
	f.mu.Lock()
	if f.cached {
		defer f.mu.Unlock()
		return f.val, f.err
	}
	f.mu.Unlock()
	raw, j, err := f.c.outcome(ctx)
	var fe *fetchError
	if errors.As(err, &fe) {
		var zero T
		return zero, err // the result exists; a later call fetches it again
	}
	var val T
	if err == nil {
		var codec protocol.Codec
		if codec, err = protocol.CodecByName(j.job.Codec); err == nil {
			var env envelope[T]
			if err = codec.Unmarshal(raw, &env); err == nil {
				val = env.V
			} else {
				err = fmt.Errorf("lithops: decode result of %s/%s call %s: %w", j.e.id, j.job.JobID, f.c.id, err)
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.cached {
		f.cached, f.val, f.err = true, val, err
	}
	return f.val, f.err
}

// Done reports whether the call has finished (successfully or not).
func (f *Future[T]) Done() bool { return f.c.isDone() }

// State returns the call's state.
func (f *Future[T]) State() State { return f.c.state() }

// CallID returns the call id ("00000", …); "" for a reducer not yet started.
func (f *Future[T]) CallID() string {
	f.c.mu.Lock() // a reducer's id is set when it starts
	defer f.c.mu.Unlock()
	return f.c.id
}

// JobID returns the job id ("A000", "M001", "R001"); "" for a reducer not yet
// started.
func (f *Future[T]) JobID() string {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	if f.c.job == nil {
		return ""
	}
	return f.c.job.job.JobID
}

// Stats returns the call's timings; ok is false until it has finished.
func (f *Future[T]) Stats() (s Stats, ok bool) {
	c := f.c
	c.mu.Lock()
	defer c.mu.Unlock()
	s.Submitted = c.submitted
	st := c.status
	if st == nil {
		if c.running != nil {
			s.Started, s.Worker = c.running.Start, c.running.WorkerID
		}
		return s, false
	}
	s.Started, s.FuncStart, s.FuncEnd, s.Finished = st.Start, st.FuncStart, st.FuncEnd, st.End
	s.Worker, s.Attempt, s.ColdStart = st.WorkerID, st.Attempt, st.ColdStart
	s.ResultSize, s.PeakRSS = st.ResultSize, st.PeakRSS
	if !st.FuncEnd.IsZero() {
		s.ExecTime = st.FuncEnd.Sub(st.FuncStart)
	}
	return s, true
}

func (f *Future[T]) calls() []*callState { return []*callState{f.c} }

// Futures are the pending results of a Map, in input order.
type Futures[T any] struct {
	list []*Future[T]
}

// Len returns the number of calls.
func (fs *Futures[T]) Len() int { return len(fs.list) }

// At returns the future of input i.
func (fs *Futures[T]) At(i int) *Future[T] { return fs.list[i] }

// All returns the futures in input order.
func (fs *Futures[T]) All() []*Future[T] { return fs.list }

// Results waits for every call and returns the results in input order. If
// calls failed, the error is that of the first failed call in input order
// (a *CallError), and the results of the calls that succeeded are still
// returned in their places.
func (fs *Futures[T]) Results(ctx context.Context) ([]T, error) {
	out := make([]T, len(fs.list))
	var first error
	for i, f := range fs.list {
		v, err := f.Result(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return out, err
			}
			if first == nil {
				first = err
			}
			continue
		}
		out[i] = v
	}
	return out, first
}

func (fs *Futures[T]) calls() []*callState {
	cs := make([]*callState, len(fs.list))
	for i, f := range fs.list {
		cs[i] = f.c
	}
	return cs
}

func encodeInput[In any](e *Executor, in In) ([]byte, error) {
	b, err := e.codec.Marshal(envelope[In]{in})
	if err != nil {
		return nil, fmt.Errorf("lithops: encode input with %s codec: %w", e.codec.Name(), err)
	}
	return b, nil
}

// CallAsync runs f on one input, Lithops' call_async. Cancelling ctx stops
// the call.
func CallAsync[In, Out any](ctx context.Context, e *Executor, f *Function[In, Out], in In, opts ...CallOption) (*Future[Out], error) {
	if f == nil {
		return nil, fmt.Errorf("lithops: CallAsync of a nil function")
	}
	b, err := encodeInput(e, in)
	if err != nil {
		return nil, err
	}
	var co callOptions
	for _, o := range opts {
		o(&co)
	}
	js, err := e.submit(ctx, 'A', -1, f.name, f.sig, [][]byte{b}, co)
	if err != nil {
		return nil, err
	}
	return &Future[Out]{c: js.calls[0]}, nil
}

// Map runs f once per input, Lithops' map. Results come back in input order.
// Cancelling ctx stops the calls.
func Map[In, Out any](ctx context.Context, e *Executor, f *Function[In, Out], inputs []In, opts ...CallOption) (*Futures[Out], error) {
	js, err := mapJob(ctx, e, f, inputs, -1, opts)
	if err != nil {
		return nil, err
	}
	fs := &Futures[Out]{list: make([]*Future[Out], len(js.calls))}
	for i, c := range js.calls {
		fs.list[i] = &Future[Out]{c: c}
	}
	return fs, nil
}

func mapJob[In, Out any](ctx context.Context, e *Executor, f *Function[In, Out], inputs []In, num int, opts []CallOption) (*jobState, error) {
	if f == nil {
		return nil, fmt.Errorf("lithops: Map of a nil function")
	}
	enc := make([][]byte, len(inputs))
	for i, in := range inputs {
		b, err := encodeInput(e, in)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		enc[i] = b
	}
	var co callOptions
	for _, o := range opts {
		o(&co)
	}
	return e.submit(ctx, 'M', num, f.name, f.sig, enc, co)
}

// MapReduce runs mapFn over inputs, then one reduceFn call over all the map
// results in input order, Lithops' map_reduce. The reducer starts when the
// last map call has finished; if a map call fails, the returned future fails
// with that call's error. The reducer's worker reads the map results from
// storage itself: they are not downloaded to the client.
func MapReduce[In, Mid, Out any](ctx context.Context, e *Executor, mapFn *Function[In, Mid], inputs []In, reduceFn *Function[[]Mid, Out], opts ...CallOption) (*Future[Out], error) {
	if reduceFn == nil {
		return nil, fmt.Errorf("lithops: MapReduce with a nil reduce function")
	}
	e.mu.Lock()
	num := e.nextJob
	e.nextJob++
	e.mu.Unlock()
	js, err := mapJob(ctx, e, mapFn, inputs, num, opts)
	if err != nil {
		return nil, err
	}
	js.pins.Add(1) // the reducer reads the map results; reduceStage unpins
	outer := newCallState(nil, 0, "", time.Now())
	groups := [][]int{make([]int, len(inputs))}
	for i := range inputs {
		groups[0][i] = i
	}
	go reduceStage(ctx, e, num, js, groups, reduceFn.name, reduceFn.sig, []*callState{outer}, opts)
	return &Future[Out]{c: outer}, nil
}

// MapReduceByKey runs mapFn over object chunks (from Partition), then one
// reduceFn call per object over that object's map results in chunk order,
// Lithops' map_reduce with obj_reduce_by_key. It returns one future per
// object, in the order of the objects in chunks.
func MapReduceByKey[Mid, Out any](ctx context.Context, e *Executor, mapFn *Function[ObjectChunk, Mid], chunks []ObjectChunk, reduceFn *Function[[]Mid, Out], opts ...CallOption) (*Futures[Out], error) {
	if reduceFn == nil {
		return nil, fmt.Errorf("lithops: MapReduceByKey with a nil reduce function")
	}
	var groups [][]int
	index := map[[4]string]int{}
	for i, c := range chunks {
		k := [4]string{c.Backend, c.Bucket, c.Key, c.URL}
		g, ok := index[k]
		if !ok {
			g = len(groups)
			index[k] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	e.mu.Lock()
	num := e.nextJob
	e.nextJob++
	e.mu.Unlock()
	js, err := mapJob(ctx, e, mapFn, chunks, num, opts)
	if err != nil {
		return nil, err
	}
	js.pins.Add(1) // the reducers read the map results; reduceStage unpins
	now := time.Now()
	fs := &Futures[Out]{list: make([]*Future[Out], len(groups))}
	outers := make([]*callState, len(groups))
	for i := range groups {
		outers[i] = newCallState(nil, i, "", now)
		fs.list[i] = &Future[Out]{c: outers[i]}
	}
	go reduceStage(ctx, e, num, js, groups, reduceFn.name, reduceFn.sig, outers, opts)
	return fs, nil
}

// gatherInput is the input of one reducer: references to the map results of
// its group, which the worker reads itself (protocol.Gather). Results small
// enough to be inline in their status travel inline; the others by key.
func gatherInput(calls []*callState) ([]byte, error) {
	g := protocol.Gather{Parts: make([]protocol.ResultRef, len(calls))}
	for i, c := range calls {
		c.mu.Lock()
		st, err, j := c.status, c.err, c.job
		c.mu.Unlock()
		switch {
		case err != nil:
			return nil, err
		case st == nil:
			return nil, fmt.Errorf("map call %s has no status", c.id)
		case st.State == protocol.StateError:
			return nil, j.callError(st)
		case st.HasResult:
			g.Parts[i] = protocol.ResultRef{Inline: st.Result, HasInline: true}
		default:
			g.Parts[i] = protocol.ResultRef{Key: st.ResultKey, Size: st.ResultSize}
		}
	}
	return json.Marshal(g)
}

// reduceStage waits for the map job, then submits one reduce job with a call
// per group of map calls, and completes outers[i] with reduce call i.
func reduceStage(ctx context.Context, e *Executor, num int, mapJob *jobState, groups [][]int, fn, sig string, outers []*callState, opts []CallOption) {
	defer mapJob.pins.Add(-1) // once the reducers have finished (or failed)
	fail := func(err error) {
		for _, o := range outers {
			o.finish(nil, err)
		}
	}
	// The reducers start only when the last map call has finished.
	for _, c := range mapJob.calls {
		if err := c.wait(ctx); err != nil {
			fail(fmt.Errorf("lithops: map stage of map-reduce %s/M%03d: %w", e.id, num, err))
			return
		}
	}
	inputs := make([][]byte, len(groups))
	for g, idx := range groups {
		calls := make([]*callState, len(idx))
		for i, j := range idx {
			calls[i] = mapJob.calls[j]
		}
		b, err := gatherInput(calls)
		if err != nil {
			fail(fmt.Errorf("lithops: map stage of map-reduce %s/M%03d: %w", e.id, num, err))
			return
		}
		inputs[g] = b
	}
	var co callOptions
	for _, o := range opts {
		o(&co)
	}
	co.gather = true
	rjs, err := e.submit(ctx, 'R', num, fn, sig, inputs, co)
	if err != nil {
		fail(err)
		return
	}
	// Each reducer future follows its own reduce call: it reports running
	// and completes when that call does, whatever the other reducers do.
	for i, outer := range outers {
		outer.follow(rjs, rjs.calls[i])
	}
	for _, inner := range rjs.calls {
		_ = inner.wait(context.Background()) // the map results stay pinned until then
	}
}

// follow makes c, a reducer's future created before its reduce job
// existed, mirror inner, that job's call: its ids, running state and
// outcome. c is not one of j.calls, so its finish does not count towards
// the job's.
func (c *callState) follow(j *jobState, inner *callState) {
	inner.mu.Lock()
	id, index, submitted := inner.id, inner.index, inner.submitted
	inner.mu.Unlock()
	c.mu.Lock()
	c.job, c.id, c.index, c.submitted = j, id, index, submitted
	c.mu.Unlock()
	mirror := func(in *callState) {
		in.mu.Lock()
		st, err, running := in.status, in.err, in.running
		in.mu.Unlock()
		switch {
		case st != nil || err != nil:
			c.finish(st, err)
		case running != nil:
			c.setRunning(running)
		}
	}
	inner.watch(mirror)
	mirror(inner) // what happened before the watch
}
