package procpool

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
)

// call is one call of an Invoke and the job policy it runs under.
type call struct {
	ctx      context.Context
	inv      protocol.Invocation // one call
	timeout  time.Duration
	memoryMB int // 0: no limit
	retries  int
	escalate bool
	// deferFinal: a final status is not recorded here but handed to
	// Notify with Deferred set (Options.DeferBlocks).
	deferFinal bool
	block      int // the job's Block: where a final status goes
}

// Invoke runs the calls of inv under job's policy: a call's timeout and
// memory, its retries (after a backoff), and the escalation of an
// out-of-memory attempt (Options.EscalateOOM). Each call's running status,
// and its final or handed-back one, reach Options.Notify; a status the
// worker could not write is written here first. It returns once the calls
// are accepted: a window of a few tasks per worker is queued, and each call
// that ends queues the next, so a million-call invocation holds a task for
// only a handful of them at a time.
func (p *Pool) Invoke(ctx context.Context, job *protocol.Job, inv protocol.Invocation) error {
	if p.opts.Storage == nil {
		return errors.New("procpool: Invoke needs Options.Storage")
	}
	timeout := time.Duration(job.Timeout * float64(time.Second))
	mem := job.Memory
	if mem == 0 {
		mem = p.opts.MemoryMB
	}
	// The pool alone decides whether the calls carry their manifest: a
	// small job's does, so that a worker need not read it from storage.
	inv.Job = nil
	if p.CarriesManifest(job) {
		inv.Job = job
	}
	f := &feeder{p: p, inv: inv, calls: inv.Calls, mk: func(one protocol.Invocation) *call {
		return &call{ctx: ctx, inv: one, timeout: timeout, memoryMB: mem, retries: job.Retries, escalate: job.EscalateMemory,
			deferFinal: p.opts.DeferBlocks && job.Block > 0, block: job.Block}
	}}
	return f.feed(p.window())
}

// CarriesManifest reports whether Invoke hands job's manifest to the
// workers with its calls: a small job's (its input ranges grow with the
// calls).
func (p *Pool) CarriesManifest(job *protocol.Job) bool { return job.Calls <= inlineManifestCalls }

// window is how many tasks of one Invoke are queued at a time: enough for
// each worker to take batches (next), few enough that a million-call
// invocation holds a handful.
func (p *Pool) window() int { return max(64*p.opts.Size, 64) }

// inlineManifestCalls is the largest job whose manifest travels with its
// calls; a bigger one's manifest (its input ranges grow with the calls) is
// read once per worker from storage and cached.
const inlineManifestCalls = 64

// feeder queues the calls of one Invoke as earlier ones end.
type feeder struct {
	p   *Pool
	inv protocol.Invocation
	mk  func(protocol.Invocation) *call

	mu    sync.Mutex
	calls []protocol.Call // not queued yet
}

// feed queues up to n more calls.
func (f *feeder) feed(n int) error {
	f.mu.Lock()
	n = min(n, len(f.calls))
	next := f.calls[:n]
	f.calls = f.calls[n:]
	if len(f.calls) == 0 {
		f.calls = nil // the invocation's calls can go
	}
	f.mu.Unlock()
	if n == 0 {
		return nil
	}
	tasks := make([]*Task, n)
	for i, c := range next {
		one := f.inv
		one.Calls = []protocol.Call{c}
		t := f.p.task(f.mk(one))
		done := t.Done
		t.Done = func(r Result) {
			done(r)
			// The pool closed: what is not queued is abandoned with the
			// rest, as Close abandons queued tasks.
			_ = f.feed(1)
		}
		tasks[i] = t
	}
	return f.p.Submit(tasks...)
}

func (p *Pool) task(c *call) *Task {
	return &Task{
		Ctx: c.ctx, Invocation: c.inv, Timeout: c.timeout, MemoryMB: c.memoryMB, Defer: c.deferFinal,
		Started: func(workerID string, at time.Time) {
			if p.opts.Notify != nil {
				running := c.base()
				running.State, running.WorkerID, running.Start = protocol.StateRunning, workerID, at
				p.opts.Notify(&running)
			}
		},
		Done: func(r Result) { p.settle(c, r) },
	}
}

// base is the status of c with its identity only.
func (c *call) base() protocol.Status {
	one := c.inv.Calls[0]
	return protocol.Status{Version: protocol.Version, ExecutorID: c.inv.ExecutorID, JobID: c.inv.JobID, CallID: one.ID, Attempt: one.Attempt}
}

// settle turns how c's task ended into its status.
func (p *Pool) settle(c *call, r Result) {
	if r.Err == nil {
		resp := r.Response
		if resp.Status != nil {
			if verr := checkReply(resp.Status, c.inv); verr != nil {
				// A worker that answers nonsense is not trusted with its status.
				resp.Status, resp.Error = nil, strings.TrimPrefix(resp.Error+"; ", "; ")+"malformed reply from worker: "+verr.Error()
			}
		}
		if resp.Status != nil && resp.Error == "" && !resp.Deferred {
			p.outcome(c, resp.Status)
			return
		}
		// The worker could not record the call: record it here. Its
		// outcome (and inline result) is kept, so a storage failure does
		// not lose a result that was produced.
		st := resp.Status
		if st == nil {
			b := c.base()
			st = &b
			st.State, st.WorkerID, st.Start, st.End = protocol.StateError, r.WorkerID, r.Start, time.Now()
			st.Error = &protocol.ErrorRecord{Kind: protocol.KindHandler, Message: resp.Error}
		}
		p.record(c, st)
		return
	}
	if errors.Is(r.Err, ErrClosed) || c.ctx.Err() != nil {
		return // cancelled: the executor already failed the call
	}
	st := c.base()
	st.State, st.WorkerID, st.Start, st.End = protocol.StateError, r.WorkerID, r.Start, time.Now()
	var (
		se *StartError
		oe *OOMError
		te *TimeoutError
		ee *ExitError
	)
	switch {
	case errors.As(r.Err, &se):
		st.Error = &protocol.ErrorRecord{Kind: protocol.KindHandler, Message: se.Error()}
	case errors.As(r.Err, &oe):
		st.Error = &protocol.ErrorRecord{Kind: protocol.KindOOM, Type: "oom", Message: oe.Error()}
	case errors.As(r.Err, &te):
		st.Error = &protocol.ErrorRecord{Kind: protocol.KindTimeout, Type: "timeout", Message: te.Error()}
	case errors.As(r.Err, &ee):
		st.Error = ee.Record
	default:
		st.Error = &protocol.ErrorRecord{Kind: protocol.KindHandler, Message: r.Err.Error()}
	}
	p.record(c, &st)
}

// checkReply checks that a worker's reply is a valid final status of the
// call of inv.
func checkReply(st *protocol.Status, inv protocol.Invocation) error {
	c := inv.Calls[0]
	switch {
	case st.Validate() != nil:
		return st.Validate()
	case st.State == protocol.StateRunning:
		return fmt.Errorf("status of call %s is still running", st.CallID)
	case st.ExecutorID != inv.ExecutorID || st.JobID != inv.JobID || st.CallID != c.ID:
		return fmt.Errorf("status is of call %s/%s/%s, not %s/%s/%s", st.ExecutorID, st.JobID, st.CallID, inv.ExecutorID, inv.JobID, c.ID)
	}
	return nil
}

// outcome retries a failed attempt that has retries left, after a backoff,
// and reports anything else.
func (p *Pool) outcome(c *call, st *protocol.Status) {
	// The attempt that ran bounds the retries too, whatever status came
	// back (one of an earlier attempt, another execution's): attempts only
	// go up, so a call runs at most retries+1 times.
	ran := c.inv.Calls[0].Attempt
	if protocol.Final(st, c.retries) || ran >= c.retries || st.Unrecorded || c.ctx.Err() != nil {
		p.notify(st)
		return
	}
	oom := st.Error != nil && st.Error.Kind == protocol.KindOOM
	if c.escalate && p.opts.EscalateOOM && oom {
		p.notify(st) // handed back: the client runs the next attempt bigger
		return
	}
	next := *c
	next.inv.Calls = []protocol.Call{c.inv.Calls[0]}
	next.inv.Calls[0].Attempt = max(st.Attempt, ran) + 1
	if c.escalate && oom && next.memoryMB > 0 {
		next.memoryMB *= 2
	}
	delay := protocol.RetryDelay(st.Attempt)
	p.opts.Logger.Info("procpool: retrying call", "job", st.JobID, "call", st.CallID, "attempt", next.inv.Calls[0].Attempt, "after", delay, "error", st.Error.Message)
	time.AfterFunc(delay, func() {
		if next.ctx.Err() == nil {
			// A pool closed meanwhile drops it: its executor is gone.
			_ = p.Submit(p.task(&next))
		}
	})
}

func (p *Pool) notify(st *protocol.Status) {
	if p.opts.Notify != nil {
		p.opts.Notify(st)
	}
}

// record writes a status the worker could not (or did not: Defer), unless
// one exists, and reports whichever status is in storage; a final status
// of a call whose records are deferred is reported unrecorded (Deferred).
func (p *Pool) record(c *call, st *protocol.Status) {
	if c.deferFinal && protocol.Final(st, c.retries) {
		st.Deferred = true
		p.outcome(c, st)
		return
	}
	ctx := context.WithoutCancel(c.ctx)
	rec, err := worker.RecordStatus(ctx, p.opts.Storage, c.inv.Bucket, c.block, c.retries, st)
	if err != nil {
		p.opts.Logger.Warn("procpool: cannot record call status", "job", st.JobID, "call", st.CallID, "err", err)
		rec.Unrecorded = true
	}
	p.outcome(c, rec)
}
