// Package procpool is a pool of resident worker processes: the user's own
// program started in worker mode (environment LITHOPS_WORKER=localhost),
// reading requests from a pipe on file descriptor 3 and answering each call
// on descriptor 4, so the program's own stdout and stderr stay free for the
// user's prints. What a worker needs to open its storage comes on
// descriptor 5 (ConfigFD), never in the environment. A worker that says
// Hello (worker.PipeHello) is sent several queued calls of one invocation
// per request, run one after the other: a few pipe round trips for a map
// of thousands of quick calls. Requests and answers are JSON lines; a
// worker whose Hello says Gob (the pool sets worker.GobEnv) answers in gob
// after it, and reads gob requests after the pool's Switch: decoding JSON
// answers was most of a client's CPU in a large map. Workers and pools of
// other versions keep to what both understand.
//
// The localhost compute backend (compute/localhost) and the runtime host
// (internal/host) both run their calls on it: Submit runs tasks on the
// processes and reports how each ended; Invoke adds the call policy both
// share (records a status the worker could not, retries, notifies).
//
// Invariants:
//   - At most Options.Size processes run; they start on demand and stay
//     for the next task, until idle for Options.IdleTimeout (then they
//     exit) or Close.
//   - Tasks start in the order they were submitted.
//   - A request carries at most the queue's share of one worker in two
//     (guided self-scheduling), so the last calls of a map go one by one
//     to whichever worker is free; a call that waits in a request behind
//     a slow one waits at most that long.
//   - A task is charged with its worker's timeout, memory kill or death
//     only when it ran alone; in a request of several calls none is, and
//     the calls not answered run again alone, on another worker, where the
//     one at fault is charged.
//   - Every accepted task's Done is called exactly once: with the worker's
//     answer, or with why there is none (timeout: the worker is killed
//     KillGrace after it; memory over the limit: killed at once; the worker
//     died: how; the task's ctx ended; the pool closed).
//   - A worker that died or was killed is replaced by a fresh one for the
//     next task; no other task is affected.
//   - Every accepted call of Invoke whose ctx is not cancelled ends with a
//     status in storage and a Notify: the worker's own, or one the pool
//     writes create-if-absent (timeout, out of memory, crash), so a status
//     the worker managed to write first wins.
package procpool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lithops-go/lithops/compute"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
	"github.com/lithops-go/lithops/storage"
)

// WorkerEnv is the environment variable that puts a program in worker mode.
const WorkerEnv = "LITHOPS_WORKER"

// ConfigFD is the file descriptor on which a worker reads Options.Config
// (after the request and response pipes, 3 and 4).
const ConfigFD = 5

// KillGrace is how long after a task's timeout its worker is killed: the
// function's ctx ends at the timeout, so a function that honours it has
// this long to return (and be recorded as timed out) before the kill.
const KillGrace = 2 * time.Second

// ErrClosed is the error of a task the pool did not finish because it was
// closed, and of a Submit after Close.
var ErrClosed = errors.New("worker pool closed")

// Options configure a Pool.
type Options struct {
	// Program is the executable the workers run; "" means this process's own.
	Program string
	// Env is added to the workers' environment.
	Env []string
	// Config is what a worker needs to open its storage (JSON). It reaches
	// the worker on file descriptor ConfigFD, never through the
	// environment, which subprocesses inherit and /proc shows. nil: no
	// descriptor 5.
	Config []byte
	// CleanEnv starts workers from a minimal environment (PATH, HOME, temp
	// dir, locale, TZ) instead of this process's: a runtime host's own
	// settings, credentials included, are not the user program's business.
	CleanEnv bool
	// Size is the most worker processes that run at once (≥ 1).
	Size int
	// MemoryMB is each worker's memory limit, told to the worker's Go
	// runtime (LITHOPS_WORKER_MEMORY_MB) and the default limit of a call
	// (0: none).
	MemoryMB int
	// IdleTimeout is how long a worker process waits for its next task
	// before it exits; 0 keeps it until Close. A client's own workers
	// (compute/localhost) stay while its executor lives; a runtime host,
	// which serves whatever programs come, frees memory sooner.
	IdleTimeout time.Duration

	// Storage is where Invoke records calls whose worker could not
	// (required by Invoke only).
	Storage *storage.Storage
	// BatchRecords lets workers record the successes of a request of
	// several calls in batch records (protocol.BatchKey) instead of one
	// record each. Only a pool whose workers are the only executions of
	// their calls may set it (localhost); a runtime host, whose message may
	// be delivered again elsewhere, does not.
	BatchRecords bool
	// DeferBlocks makes Invoke leave the final statuses of a job with
	// blocks (Job.Block) unrecorded: they reach Notify with
	// Status.Deferred set, and the receiver (a runtime host) records them,
	// a block's successes in one record (worker.RecordBlock). Attempts
	// that are retried are still recorded here.
	DeferBlocks bool
	// Notify receives Invoke's statuses as they happen (optional).
	Notify compute.Notify
	// EscalateOOM, when true, makes Invoke hand an out-of-memory attempt
	// of a job that escalates memory back through Notify instead of
	// retrying it here: a runtime host does so when a larger instance size
	// exists, and the client runs the next attempt there.
	EscalateOOM bool

	// Output receives the workers' stdout and stderr (default os.Stderr).
	Output io.Writer
	// Logger logs retries and failures to record (default: discard).
	Logger *slog.Logger
}

// Task is one call to run on a worker.
type Task struct {
	// Ctx ends the task: a task whose ctx ended is not started, and a
	// running one's worker is killed.
	Ctx context.Context
	// Invocation holds exactly one call.
	Invocation protocol.Invocation
	// Timeout is how long the call may run (0: no limit); its worker is
	// killed KillGrace later.
	Timeout time.Duration
	// MemoryMB is the call's memory limit (0: none): its worker is killed
	// when its resident memory goes over it (Linux only).
	MemoryMB int
	// Defer asks the worker to answer the call's final status without
	// recording it (worker.PipeRequest.Defer).
	Defer bool
	// Started, if set, is called when a worker takes the task.
	Started func(workerID string, at time.Time)
	// Done is called once when the task ends, on a goroutine of the pool
	// (or of Close); the worker that ran it takes no other task until
	// Done returns.
	Done func(Result)

	// solo: put back after a worker it shared a request with died; it
	// runs alone.
	solo bool
}

// Result is how a task ended.
type Result struct {
	// WorkerID names the worker that ran the task ("" if none did).
	WorkerID string
	// Start is when the worker took the task.
	Start time.Time
	// Response is the worker's answer, valid when Err is nil.
	Response worker.PipeResponse
	// Err says why there is no answer: *TimeoutError, *OOMError,
	// *ExitError, *StartError, ErrClosed, or the task's ctx error.
	Err error
}

// TimeoutError reports a task whose worker was killed at its timeout.
type TimeoutError struct{ Timeout time.Duration }

// Error implements error.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("call exceeded its timeout of %v and its worker was killed", e.Timeout)
}

// OOMError reports a task whose worker was killed because its resident
// memory went over the task's limit.
type OOMError struct {
	RSS     int64 // bytes
	LimitMB int
}

// Error implements error.
func (e *OOMError) Error() string {
	return fmt.Sprintf("call used %d MiB, over its memory limit of %d MiB, and its worker was killed", e.RSS>>20, e.LimitMB)
}

// ExitError reports a worker that died while it ran a task.
type ExitError struct{ Record *protocol.ErrorRecord }

// Error implements error: how the worker died.
func (e *ExitError) Error() string { return e.Record.Message }

// StartError reports a worker process that could not be started.
type StartError struct{ Err error }

// Error implements error.
func (e *StartError) Error() string { return "start worker: " + e.Err.Error() }

// Unwrap returns why the process did not start.
func (e *StartError) Unwrap() error { return e.Err }

// Stats is a snapshot of a pool.
type Stats struct {
	Processes int // live worker processes
	Running   int // tasks a worker has taken and not finished
	Queued    int // tasks waiting for a worker
}

// Pool runs tasks on resident worker processes. Create it with New.
type Pool struct {
	opts    Options
	program string
	closing chan struct{} // closed by Close: running tasks are abandoned
	procs   atomic.Int64
	seq     atomic.Int64
	sent    atomic.Int64 // requests sent to workers

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []*Task
	head   int
	slots  int // slot goroutines
	idle   int // slots waiting for a task
	closed bool
	wg     sync.WaitGroup
}

// New returns a pool. Workers start on the first task.
func New(opts Options) (*Pool, error) {
	if opts.Size < 1 {
		return nil, fmt.Errorf("procpool: size must be ≥ 1, got %d", opts.Size)
	}
	if opts.IdleTimeout < 0 {
		return nil, fmt.Errorf("procpool: negative idle timeout %v", opts.IdleTimeout)
	}
	prog := opts.Program
	if prog == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("procpool: find own executable: %w", err)
		}
		prog = exe
	} else if _, err := exec.LookPath(prog); err != nil {
		return nil, fmt.Errorf("procpool: program %q: %w", prog, err)
	}
	if opts.Output == nil {
		opts.Output = os.Stderr
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pool{opts: opts, program: prog, closing: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	return p, nil
}

// Program is the executable the pool's workers run.
func (p *Pool) Program() string { return p.program }

// Submit queues tasks and starts workers on demand, up to Size. Each task
// needs Ctx and Done and exactly one call.
func (p *Pool) Submit(tasks ...*Task) error {
	for _, t := range tasks {
		if t.Ctx == nil || t.Done == nil || len(t.Invocation.Calls) != 1 {
			return errors.New("procpool: a task needs Ctx, Done and exactly one call")
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.queue = append(p.queue, tasks...)
	for need := len(p.queue) - p.head - p.idle; need > 0 && p.slots < p.opts.Size; need-- {
		p.slots++
		p.idle++
		p.wg.Add(1)
		go p.slot()
	}
	p.cond.Broadcast()
	return nil
}

// Stats reports the pool's processes and tasks.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{Processes: int(p.procs.Load()), Running: p.slots - p.idle, Queued: len(p.queue) - p.head}
}

// Close kills every worker; tasks not finished end with ErrClosed.
func (p *Pool) Close() error {
	p.mu.Lock()
	if !p.closed {
		close(p.closing)
	}
	p.closed = true
	queued := p.queue[p.head:]
	p.queue, p.head = nil, 0
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, t := range queued {
		t.Done(Result{Err: ErrClosed})
	}
	p.wg.Wait()
	return nil
}

func (p *Pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// maxBatch is the most calls one request to a worker carries (the queue's
// share decides below it).
const maxBatch = 64

// next blocks for the next task and takes, when limit allows, the tasks
// queued behind it that can share its request (batchable): guided
// self-scheduling, a batch is at most the queue's share of one worker in
// two, so batches shrink as the queue empties and the last calls go one by
// one to whichever worker is free. nil means the slot ends: the pool is
// closing, or the slot waited IdleTimeout for a task (it is then no longer
// counted).
func (p *Pool) next(limit int) []*Task {
	p.mu.Lock()
	defer p.mu.Unlock()
	var deadline time.Time
	if d := p.opts.IdleTimeout; d > 0 {
		deadline = time.Now().Add(d)
		// sync.Cond has no timed wait: a timer wakes the waiters.
		tm := time.AfterFunc(d, func() {
			p.mu.Lock()
			p.cond.Broadcast()
			p.mu.Unlock()
		})
		defer tm.Stop()
	}
	for !p.closed && p.head == len(p.queue) {
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			p.slots--
			p.idle--
			return nil
		}
		p.cond.Wait()
	}
	if p.closed {
		return nil
	}
	share := (len(p.queue) - p.head + 2*p.opts.Size - 1) / (2 * p.opts.Size)
	n := min(limit, share, maxBatch)
	t := p.queue[p.head]
	ts := []*Task{t}
	p.queue[p.head] = nil
	p.head++
	for len(ts) < n && p.head < len(p.queue) && batchable(t, p.queue[p.head]) {
		ts = append(ts, p.queue[p.head])
		p.queue[p.head] = nil
		p.head++
	}
	if p.head == len(p.queue) {
		p.queue, p.head = p.queue[:0], 0
	}
	p.idle--
	return ts
}

// batchable reports whether u can run in the request of t: a call of the
// same invocation under the same limits, neither put back after a worker
// it shared a request with died (those run alone, so that a call that
// kills its worker is found).
func batchable(t, u *Task) bool {
	a, b := &t.Invocation, &u.Invocation
	return !t.solo && !u.solo && a.Op == protocol.OpRun && b.Op == protocol.OpRun &&
		a.Version == b.Version && a.Bucket == b.Bucket && a.ExecutorID == b.ExecutorID && a.JobID == b.JobID &&
		a.Program == b.Program && a.ResultQueue == b.ResultQueue && a.Deadline.Equal(b.Deadline) && a.Job == b.Job &&
		t.Timeout == u.Timeout && t.MemoryMB == u.MemoryMB && t.Defer == u.Defer
}

// requeue puts tasks back at the head of the queue, in order, to run
// alone; a closed pool ends them.
func (p *Pool) requeue(ts []*Task) {
	if len(ts) == 0 {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		for _, t := range ts {
			t.Done(Result{Err: ErrClosed})
		}
		return
	}
	for _, t := range ts {
		t.solo = true
	}
	p.queue = append(append(make([]*Task, 0, len(ts)+len(p.queue)-p.head), ts...), p.queue[p.head:]...)
	p.head = 0
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *Pool) done() {
	p.mu.Lock()
	p.idle++
	p.mu.Unlock()
}

// slot owns at most one worker process at a time and runs tasks on it.
func (p *Pool) slot() {
	defer p.wg.Done()
	var w *proc
	defer func() {
		if w != nil {
			w.stop()
		}
	}()
	for {
		limit := 1
		if w != nil && w.batch.Load() {
			limit = maxBatch
		}
		ts := p.next(limit)
		if ts == nil {
			return
		}
		w = p.run(w, ts)
		p.done()
	}
}

// run executes ts, one request, on w (starting a worker if w is nil) and
// returns the worker to use next (nil if it died or was killed). The
// worker runs the calls in order and answers each. A timeout, a memory kill
// or a death in a request of several calls charges none of them: what the
// worker answered or recorded is kept (salvage), the rest go back to the
// queue to run alone.
func (p *Pool) run(w *proc, ts []*Task) *proc {
	live := ts[:0]
	for _, t := range ts {
		if err := t.Ctx.Err(); err != nil {
			t.Done(Result{Err: err})
			continue
		}
		live = append(live, t)
	}
	ts = live
	if len(ts) == 0 {
		return w
	}
	if w == nil {
		var err error
		if w, err = p.spawn(); err != nil {
			ts[0].Done(Result{Err: &StartError{Err: err}})
			p.requeue(ts[1:])
			return nil
		}
	}
	inv := ts[0].Invocation
	if len(ts) > 1 {
		inv.Calls = make([]protocol.Call, len(ts))
		for i, t := range ts {
			inv.Calls[i] = t.Invocation.Calls[0]
		}
	}
	sendErr := w.send(worker.PipeRequest{Invocation: inv, BatchRecords: p.opts.BatchRecords && len(ts) > 1, Defer: ts[0].Defer})
	p.sent.Add(1)
	for i, t := range ts {
		res := Result{WorkerID: w.id, Start: time.Now()}
		if t.Started != nil {
			t.Started(w.id, res.Start)
		}
		res.Err = sendErr
		if sendErr == nil {
			res.Response, res.Err = w.await(t, p.closing)
		}
		if res.Err == nil {
			t.Done(res)
			continue
		}
		// The worker is gone or must go.
		w.stop()
		var te *TimeoutError
		var oe *OOMError
		var ee *ExitError
		switch {
		case errors.As(res.Err, &te), errors.As(res.Err, &oe):
		case t.Ctx.Err() != nil:
			res.Err = t.Ctx.Err()
		case p.isClosed():
			res.Err = ErrClosed
		default:
			ee = &ExitError{Record: w.exitRecord()}
			res.Err = ee
		}
		rest := ts[i:]
		if len(ts) > 1 {
			rest = p.salvage(w, ts, i)
		}
		switch {
		case len(rest) == 0:
		case len(ts) > 1 && (ee != nil || te != nil || oe != nil):
			// A worker killed or dead in a request of several calls loses
			// the answers it had not written (a call that ended may wait
			// in its window while the next one runs): which call overran
			// or killed it is not known for sure, so none is charged and
			// each runs again alone, where the one at fault is.
			p.requeue(rest)
		case rest[0] != t:
			// t was answered after all, and its end (cancelled, pool
			// closed) is not the next one's.
			p.requeue(rest)
		default:
			res.WorkerID, res.Start = w.id, time.Now()
			rest[0].Done(res)
			p.requeue(rest[1:])
		}
		// Answers that still come (a process the worker started may hold
		// the pipe open) must not block the pipe's reader for ever.
		go func() {
			for range w.resps {
			}
		}()
		return nil
	}
	return w
}

// salvage ends the tasks of a dead worker's request (all; from on not
// answered yet) that it answered or recorded: answers still in the pipe,
// then the batch record that holds the first call not answered. A worker
// records a batch before it answers it, so that record begins at that call
// or, when the worker died while its answers were being written, at an
// answered call of the request before it. It returns the tasks left.
func (p *Pool) salvage(w *proc, all []*Task, from int) []*Task {
	ts := all[from:]
	answer := func(r worker.PipeResponse) {
		ts[0].Done(Result{WorkerID: w.id, Start: time.Now(), Response: r})
		ts = ts[1:]
	}
	drain := time.NewTimer(time.Second)
	defer drain.Stop()
	for len(ts) > 0 {
		select {
		case r, ok := <-w.resps:
			if ok {
				answer(r)
				continue
			}
		case <-drain.C:
		}
		break
	}
	if len(ts) == 0 || !p.opts.BatchRecords || p.opts.Storage == nil {
		return ts // a call recorded on its own finds its record when it runs again
	}
	u := ts[0].Invocation.Calls[0].ID
	for j := len(all) - len(ts); j >= 0; j-- {
		inv := all[j].Invocation
		key := protocol.BatchKey(inv.ExecutorID, inv.JobID, inv.Calls[0])
		raw, err := p.opts.Storage.GetBytes(context.Background(), inv.Bucket, key)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			p.opts.Logger.Warn("procpool: cannot read the batch a dead worker may have recorded", "key", key, "err", err)
			return ts
		}
		k, _ := protocol.ParseKey(key)
		sts, err := protocol.ParseStatusBatch(k, raw)
		if err != nil {
			p.opts.Logger.Warn("procpool: unreadable batch record", "key", key, "err", err)
			return ts
		}
		i := slices.IndexFunc(sts, func(s protocol.Status) bool { return s.CallID == u })
		for ; i >= 0 && i < len(sts) && len(ts) > 0 && ts[0].Invocation.Calls[0].ID == sts[i].CallID; i++ {
			answer(worker.PipeResponse{Status: &sts[i]})
		}
		return ts // the latest batch of the request: none after it holds u
	}
	return ts
}

// cleanEnv keeps only the variables any program needs.
func cleanEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "PATH", k == "HOME", k == "USER", k == "TMPDIR", k == "TMP", k == "TEMP", k == "TZ", k == "LANG",
			strings.HasPrefix(k, "LC_"), k == "SSL_CERT_FILE", k == "SSL_CERT_DIR", k == "SYSTEMROOT":
			out = append(out, kv)
		}
	}
	return out
}
