// MapReduce and MapReduceByKey: a map job, then a reduce job whose workers
// read the map results from storage.

package lithops

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
)

// MapReduce runs mapFn over inputs, then one reduceFn call over all the map
// results in input order, Lithops' map_reduce. The reducer starts when the
// last map call has finished; if a map call fails, the returned future fails
// with that call's error. The reducer's worker reads the map results from
// storage itself: they are not downloaded to the client.
func MapReduce[In, Mid, Out any](ctx context.Context, e *Executor, mapFn *Function[In, Mid], inputs []In, reduceFn *Function[[]Mid, Out], opts ...CallOption) (*Future[Out], error) {
	if reduceFn == nil {
		return nil, fmt.Errorf("lithops: MapReduce with a nil reduce function")
	}
	if err := reduceFn.checkResultCodec(e.codec); err != nil {
		return nil, err
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
	if err := reduceFn.checkResultCodec(e.codec); err != nil {
		return nil, err
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
	defer func() { // once the reducers have finished (or failed)
		if mapJob.pins.Add(-1) == 0 {
			e.release(mapJob)
		}
	}()
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
	rjs, err := e.submit(ctx, 'R', num, fn, sig, encoded(inputs...), co)
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
