// Futures and the calls that create them: CallAsync and Map.

package lithops

import (
	"context"
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
	err = withChain(err, f.c)
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
				err = fmt.Errorf("lithops: decode result of %s/%s call %s: %w", j.e.id, j.job.JobID, f.c.id, codecHint(err))
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
		return nil, fmt.Errorf("lithops: encode input with %s codec: %w", e.codec.Name(), codecHint(err))
	}
	return b, nil
}

// CallAsync runs f on one input, Lithops' call_async. Cancelling ctx stops
// the call.
func CallAsync[In, Out any](ctx context.Context, e *Executor, f *Function[In, Out], in In, opts ...CallOption) (*Future[Out], error) {
	if f == nil {
		return nil, fmt.Errorf("lithops: CallAsync of a nil function")
	}
	if err := f.checkResultCodec(e.codec); err != nil {
		return nil, err
	}
	b, err := encodeInput(e, in)
	if err != nil {
		return nil, err
	}
	var co callOptions
	for _, o := range opts {
		o(&co)
	}
	js, err := e.submit(ctx, 'A', -1, f.name, f.sig, encoded(b), co)
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
	if err := f.checkResultCodec(e.codec); err != nil {
		return nil, err
	}
	// Encoded once, end to end in one buffer: the calls' inline inputs and
	// the uploaded inputs object are views of it, not copies.
	var enc encodedInputs
	enc.each = make([][]byte, 0, len(inputs))
	sizes := make([]int, len(inputs))
	for i, in := range inputs {
		b, err := encodeInput(e, in)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		enc.appendInput(b)
		sizes[i] = len(b)
	}
	enc.views(sizes)
	var co callOptions
	for _, o := range opts {
		o(&co)
	}
	return e.submit(ctx, 'M', num, f.name, f.sig, enc, co)
}
