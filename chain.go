// Chained maps: a map whose calls take the results of earlier calls as
// their inputs, read by the workers from storage, each invoked as soon as
// its own input call has finished.

package lithops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/lithops-go/lithops/compute"
	"github.com/lithops-go/lithops/internal/protocol"
)

// ErrUpstream is matched (errors.Is) by the error of a chained call whose
// input call failed: the chained call never ran.
var ErrUpstream = errors.New("lithops: the input call of a chained call failed")

// UpstreamError is the error of a chained call (MapFutures, Then) whose
// input call failed. It matches ErrUpstream and, through Err, what the
// earlier call's error matches: errors.Is(err, ErrUser), errors.As(err,
// &callErr) give the earlier *CallError.
type UpstreamError struct {
	Executor string // the chained call's executor, job and call
	Job      string
	Call     string
	Function string // the chained call's function
	// Err is the input call's error: a *CallError when that call failed,
	// or why it never finished (a cancelled context, ErrClosed).
	Err error
}

// Error names the chained call and the earlier failure.
func (e *UpstreamError) Error() string {
	return fmt.Sprintf("%s %s/%s call %s: not run, its input call failed: %v", e.Function, e.Executor, e.Job, e.Call, e.Err)
}

// Unwrap returns ErrUpstream and the input call's error.
func (e *UpstreamError) Unwrap() []error { return []error{ErrUpstream, e.Err} }

// MapFutures runs f once per future of futs, on that future's result,
// Lithops' map over the futures of an earlier job. Each call is invoked
// when its own input call has finished, not when the whole earlier job
// has; its worker reads the earlier result from storage (the result inline
// in the earlier call's final status, or the object that status names), so
// the earlier results are never downloaded to the client. A call whose
// input call failed does not run and fails with an *UpstreamError.
//
// futs must belong to e; the futures of Map, CallAsync, MapFutures, Then
// and of started reducers qualify. Results come back in the order of futs.
// Cancelling ctx stops the calls.
func MapFutures[A, B any](ctx context.Context, e *Executor, f *Function[A, B], futs *Futures[A], opts ...CallOption) (*Futures[B], error) {
	if f == nil {
		return nil, errors.New("lithops: MapFutures of a nil function")
	}
	if err := f.checkResultCodec(e.codec); err != nil {
		return nil, err
	}
	if futs == nil {
		return nil, errors.New("lithops: MapFutures of nil futures")
	}
	js, err := chainJob(ctx, e, f.name, f.sig, futs.calls(), opts)
	if err != nil {
		return nil, err
	}
	out := &Futures[B]{list: make([]*Future[B], len(js.calls))}
	for i, c := range js.calls {
		out.list[i] = &Future[B]{c: c}
	}
	return out, nil
}

// Then runs f on the result of fut, on a worker that reads that result
// from storage, as soon as fut's call has finished: a one-call MapFutures.
func Then[A, B any](ctx context.Context, e *Executor, fut *Future[A], f *Function[A, B], opts ...CallOption) (*Future[B], error) {
	if f == nil {
		return nil, errors.New("lithops: Then of a nil function")
	}
	if err := f.checkResultCodec(e.codec); err != nil {
		return nil, err
	}
	if fut == nil {
		return nil, errors.New("lithops: Then of a nil future")
	}
	js, err := chainJob(ctx, e, f.name, f.sig, fut.calls(), opts)
	if err != nil {
		return nil, err
	}
	return &Future[B]{c: js.calls[0]}, nil
}

// chainJob submits a held job whose call i reads the result of srcs[i],
// and invokes each call when its source has finished.
func chainJob(ctx context.Context, e *Executor, fn, sig string, srcs []*callState, opts []CallOption) (*jobState, error) {
	inputs := make([][]byte, len(srcs))
	var pinned []*jobState
	seen := map[*jobState]bool{}
	for i, c := range srcs {
		c.mu.Lock()
		j, id := c.job, c.id
		c.mu.Unlock()
		switch {
		case j == nil || id == "":
			return nil, fmt.Errorf("lithops: chained map input %d is a reducer that has not started yet: chain from it once it has (Wait), or chain from its map", i)
		case j.e != e:
			return nil, fmt.Errorf("lithops: chained map input %d belongs to executor %s, not %s", i, j.e.id, e.id)
		}
		g := protocol.Gather{Parts: []protocol.ResultRef{{Status: protocol.StatusKey(e.id, j.job.JobID, id)}}}
		b, err := json.Marshal(g)
		if err != nil {
			return nil, err
		}
		inputs[i] = b
		if !seen[j] {
			seen[j] = true
			pinned = append(pinned, j)
		}
	}
	// The earlier jobs' records stay until the chained calls have read them.
	for _, j := range pinned {
		j.pins.Add(1)
	}
	unpin := func() {
		for _, j := range pinned {
			if j.pins.Add(-1) == 0 {
				e.release(j)
			}
		}
	}
	var co callOptions
	for _, o := range opts {
		o(&co)
	}
	co.chain, co.hold = true, true
	js, err := e.submit(ctx, 'M', -1, fn, sig, encoded(inputs...), co)
	if err != nil {
		unpin()
		return nil, err
	}
	d := &chainDispatch{js: js, srcs: srcs, inputs: inputs, wake: make(chan struct{}, 1)}
	d.start()
	go func() {
		for _, c := range js.calls {
			_ = c.wait(context.Background()) // every call finishes: run, failed or cancelled
		}
		d.stop()
		unpin()
	}()
	return js, nil
}

// chainDispatch invokes the calls of a chained job as their sources finish,
// all the calls that are ready at once in one invocation.
type chainDispatch struct {
	js     *jobState
	srcs   []*callState
	inputs [][]byte
	wake   chan struct{}

	mu      sync.Mutex
	ready   []int
	cancels []func()
}

func (d *chainDispatch) start() {
	d.mu.Lock()
	for i, c := range d.srcs {
		d.cancels = append(d.cancels, c.watch(func(c *callState) {
			if c.isDone() {
				d.push(i)
			}
		}))
	}
	d.mu.Unlock()
	for i, c := range d.srcs { // what finished before the watch
		if c.isDone() {
			d.push(i)
		}
	}
	go d.run()
}

// push marks call i ready; it never blocks (it runs on a watcher).
func (d *chainDispatch) push(i int) {
	d.mu.Lock()
	d.ready = append(d.ready, i)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *chainDispatch) stop() {
	d.mu.Lock()
	cs := d.cancels
	d.cancels = nil
	d.mu.Unlock()
	for _, c := range cs {
		c()
	}
}

// run invokes ready calls until every call has been dispatched or the
// job's life ends.
func (d *chainDispatch) run() {
	js := d.js
	e := js.e
	life := js.context()
	// A backend that hands the workers their manifest over a pipe carries
	// inputs of any size.
	_, unbounded := e.backend.(compute.ManifestCarrier)
	dispatched := make([]bool, len(d.srcs))
	left := len(d.srcs)
	for left > 0 {
		select {
		case <-d.wake:
		case <-life.Done():
			return // the job's ctx finished its calls
		}
		d.mu.Lock()
		ready := d.ready
		d.ready = nil
		d.mu.Unlock()
		inv := protocol.Invocation{Version: protocol.Version, Bucket: js.job.Bucket, ExecutorID: e.id, JobID: js.job.JobID}
		for _, i := range ready {
			if dispatched[i] {
				continue // a source told its watchers twice
			}
			dispatched[i] = true
			left--
			c := js.calls[i]
			if err := sourceError(d.srcs[i]); err != nil {
				c.finish(nil, &UpstreamError{Executor: e.id, Job: js.job.JobID, Call: c.id, Function: js.job.Function, Err: err})
				continue
			}
			inv.Calls = append(inv.Calls, protocol.Call{ID: c.id, Index: i, Input: resolved(d.srcs[i], d.inputs[i], unbounded), HasInput: true})
		}
		if len(inv.Calls) == 0 {
			continue
		}
		if err := e.backend.Invoke(life, js.job, inv); err != nil {
			if e.life.Err() != nil {
				err = ErrClosed
			}
			for _, call := range inv.Calls {
				c := js.calls[call.Index]
				c.finish(nil, fmt.Errorf("lithops: invoke %s/%s call %s: %w", e.id, js.job.JobID, c.id, err))
			}
		}
	}
}

// sourceError is the error of a finished source call, nil if it succeeded.
func sourceError(c *callState) error {
	c.mu.Lock()
	st, err, j := c.status, c.err, c.job
	c.mu.Unlock()
	switch {
	case err != nil:
		return err
	case st == nil:
		return fmt.Errorf("lithops: call %s has no status", c.id)
	case st.State == protocol.StateError:
		return withChain(j.callError(st), c)
	}
	return nil
}

// resolved is the input of a chained call whose source src succeeded: the
// result src's status names, inline or by key, so that the worker need not
// find that status (which may sit in a batch record); ref, the reference to
// the status, when the status is not at hand, or when the result inline
// would make the invocation big on a backend whose messages are bounded
// (!unbounded: Azure's queue messages; there the worker finds the status
// by its key, or in its block's record: worker.Lookup).
func resolved(src *callState, ref []byte, unbounded bool) []byte {
	src.mu.Lock()
	st := src.status
	src.mu.Unlock()
	var part protocol.ResultRef
	switch {
	case st == nil || st.State != protocol.StateSuccess:
		return ref
	case st.HasResult:
		part = protocol.ResultRef{Inline: st.Result, HasInline: true}
	case st.ResultKey != "":
		part = protocol.ResultRef{Key: st.ResultKey, Size: st.ResultSize}
	default:
		return ref
	}
	b, err := json.Marshal(protocol.Gather{Parts: []protocol.ResultRef{part}})
	if err != nil || (!unbounded && len(b) > resolvedLimit) {
		return ref
	}
	return b
}

// resolvedLimit is the largest resolved input a chained call carries on a
// backend whose invocation messages are bounded.
const resolvedLimit = 1 << 10
