// The executor's jobs: held strongly while they run, weakly once finished,
// so that a finished job's call state lives only as long as the user's
// futures of it.

package lithops

import (
	"context"
	"fmt"
	"time"
	"weak"

	"github.com/lithops-go/lithops/internal/protocol"
)

// jobRef is the executor's handle on one job. While the job has calls
// running, or pins (reducers reading its results), strong holds it; once it
// has finished only weak does, beside a summary for Jobs, and the state
// goes with the last future that references it. A job needed again (for
// JobFutures, Rerun, Awaitable) is read back from storage.
type jobRef struct {
	id     string
	strong *jobState
	weak   weak.Pointer[jobState]
	info   JobInfo // when strong is nil
}

// addJob registers js as running; e.mu is held.
func (e *Executor) addJob(js *jobState) {
	r := &jobRef{id: js.job.JobID, strong: js, weak: weak.Make(js)}
	e.jobs[r.id] = r
	e.order = append(e.order, r)
}

// running returns the jobs whose state the executor holds; e.mu is held.
func (e *Executor) running() []*jobState {
	out := make([]*jobState, 0, len(e.jobs))
	for _, r := range e.jobs {
		if r.strong != nil {
			out = append(out, r.strong)
		}
	}
	return out
}

// lookup returns the state of job id if it is still in memory; e.mu is
// held. ok is false for a job the executor does not know.
func (e *Executor) lookup(id string) (js *jobState, ok bool) {
	r := e.jobs[id]
	if r == nil {
		return nil, false
	}
	if r.strong != nil {
		return r.strong, true
	}
	return r.weak.Value(), true
}

// release lets go of a finished job: only the futures keep its state now.
func (e *Executor) release(js *jobState) {
	p := progressOf(js.calls)
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.jobs[js.job.JobID]
	if r == nil || r.strong != js || js.remaining.Load() > 0 || js.pins.Load() > 0 {
		return
	}
	r.info = JobInfo{ID: js.job.JobID, Function: js.job.Function, Calls: len(js.calls), Done: p.Done, Failed: p.Failed, Created: js.job.Created}
	r.strong = nil
}

// hold makes the executor hold js again (a rerun); e.mu is held.
func (e *Executor) hold(js *jobState) {
	if r := e.jobs[js.job.JobID]; r != nil {
		r.strong, r.weak = js, weak.Make(js)
	}
}

// job returns the state of job id, reading it back from storage when the
// executor let it go and no future kept it.
func (e *Executor) job(ctx context.Context, id string) (*jobState, error) {
	e.mu.Lock()
	js, ok := e.lookup(id)
	e.mu.Unlock()
	switch {
	case !ok:
		return nil, fmt.Errorf("lithops: executor %s has no job %q", e.id, id)
	case js != nil:
		return js, nil
	}
	js, err := e.readJob(ctx, protocol.JobKey(e.id, id))
	if err != nil {
		return nil, fmt.Errorf("lithops: job %s/%s: %w", e.id, id, err)
	}
	e.pollJob(js)
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur, _ := e.lookup(id); cur != nil {
		return cur, nil // read back concurrently
	}
	if r := e.jobs[id]; r != nil {
		r.weak = weak.Make(js)
		if js.remaining.Load() > 0 {
			r.strong = js
		}
	}
	return js, nil
}

// readJob reads a job's manifest and makes its state, all calls pending
// until polled.
func (e *Executor) readJob(ctx context.Context, key string) (*jobState, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	raw, err := e.st.GetBytes(ctx, e.bucket, key)
	if err != nil {
		return nil, err
	}
	job, err := protocol.ParseJob(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	js := &jobState{e: e, job: job, calls: make([]*callState, job.Calls)}
	js.remaining.Store(int64(job.Calls))
	for i := range js.calls {
		js.calls[i] = newCallState(js, i, protocol.CallID(i), job.Created)
	}
	return js, nil
}
