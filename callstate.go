// The state of one call on the client, set once, and who is told when it
// changes.

package lithops

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
)

// callState tracks one call on the client. Its outcome is set once.
type callState struct {
	job       *jobState // nil until a deferred call (a reducer) is submitted
	index     int
	id        string
	submitted time.Time

	// Lease tracking, under job.pollMu (leases.go): the lease object that
	// vouches for the call, at which attempt, and the lowest attempt a lease
	// must name to vouch for it (the attempt after one the client retried).
	leaseKey        string
	leaseAttempt    int
	minLeaseAttempt int

	mu     sync.Mutex
	memory int // instance memory of the next attempt after an escalation (0: the job's)
	// handedBack is 1 + the highest attempt handed back and run again: a
	// redelivered hand-back of the same attempt starts nothing more.
	handedBack int
	running    *protocol.Status
	status     *protocol.Status
	err        error
	finished   bool          // the outcome is set
	done       chan struct{} // closed when finished; made only for a waiter (a million calls need no million channels)
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
	return &callState{job: j, index: index, id: id, submitted: submitted}
}

func (c *callState) doneChan() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.finished {
			close(c.done)
		}
	}
	return c.done
}

func (c *callState) isDone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.finished
}

// reset makes a finished call pending again (Rerun).
func (c *callState) reset(submitted time.Time) {
	c.mu.Lock()
	c.status, c.err, c.running = nil, nil, nil
	c.finished, c.done = false, nil
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
	c.finished = true
	done := c.done // no waiter makes one once finished is set
	j := c.job
	c.mu.Unlock()
	// The job's last call stops it (and the executor lets go of it) before
	// any waiter hears of the end: when the last Result returns, a finished
	// job is already released.
	if j != nil && c.index >= 0 && c.index < len(j.calls) && j.calls[c.index] == c && j.remaining.Add(-1) == 0 {
		j.stop()
	}
	if done != nil {
		close(done)
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
