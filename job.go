// A job on the client: its manifest and inputs written to storage, its calls
// handed to the backend, and the life of the attempts the executor starts.

package lithops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lithops-go/lithops/compute"
	"github.com/lithops-go/lithops/internal/protocol"
)

type jobState struct {
	e         *Executor
	job       *protocol.Job
	calls     []*callState
	remaining atomic.Int64
	stopFn    atomic.Pointer[func() bool] // stops the ctx watcher; set once submitted

	// life is the context of the attempts the executor starts itself for
	// this job (escalations, retries of lost calls): cancelled when the
	// job's ctx is, when the job has finished, or by Close; Rerun renews
	// it. nil: e.life.
	lifeMu  sync.Mutex
	life    context.Context
	endLife context.CancelFunc

	// pins counts what still needs the job's records: a map job's reducers
	// until they finish. Clean leaves a pinned job alone.
	pins atomic.Int32

	// pollMu serializes pollJob (the poller, Attach, Rerun) and guards the
	// lease tracking: leases (by key) and the calls' lease fields, and
	// batchesRead: the batch records (protocol.BatchKey) whose calls have
	// all been finished from them, not read again.
	pollMu      sync.Mutex
	leases      map[string]*leaseObj
	batchesRead map[string]bool

	// lastPush (unix nanos) is when the backend last pushed a status of
	// this job; lastPoll when the poller last listed it.
	lastPush, lastPoll atomic.Int64
}

// submit creates a job of one call per input of fn and invokes it.
func (e *Executor) submit(ctx context.Context, kind byte, num int, fn string, sig string, enc encodedInputs, co callOptions) (_ *jobState, err error) {
	inputs := enc.each
	if fn == "" {
		return nil, errors.New("lithops: the function has no name: a zero-value lithops.Function is not registered; create functions with lithops.Func at package level")
	}
	if err := co.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if num < 0 {
		num = e.nextJob
		e.nextJob++
	}
	// Counted while Close cannot be waiting (closed is false, under mu):
	// the goroutine that writes a small job's manifest may prepare the
	// next job's prefix, which Close waits for.
	e.preparing.Add(1)
	handed := false
	defer func() {
		if !handed {
			e.preparing.Done()
		}
	}()
	jobID := fmt.Sprintf("%c%03d", kind, num)
	if jobID == e.prepared {
		e.prepared = "" // taken
		defer func() {
			if err != nil {
				e.unprepare(jobID) // a job refused leaves no directory
			}
		}()
	}
	e.mu.Unlock()

	reg := jobRegistry()
	timeout := e.cfg.Lithops.ExecutionTimeout
	if co.timeout > 0 {
		timeout = co.timeout.Seconds()
	}
	// A call must end (as a timeout) before the runtime's platform kills
	// its whole worker.
	if l, ok := e.backend.(compute.CallTimeoutLimiter); ok {
		if limit := l.MaxCallTimeout().Seconds(); limit > 0 && (timeout <= 0 || timeout > limit) {
			e.capLogged.Do(func() {
				e.log.Debug("call timeout capped below the runtime's timeout", "executor", e.id, "timeout_s", timeout, "cap_s", limit)
			})
			timeout = limit
		}
	}
	retries := e.cfg.Lithops.Retries
	if co.retries != nil {
		retries = *co.retries
	} else if co.escalate && retries == 0 {
		retries = EscalationRetries // an escalation is an attempt
	}
	if len(co.extraEnv) > 0 && e.Backend() == "inprocess" {
		return nil, errors.New("lithops: WithExtraEnv needs worker processes, and the inprocess backend runs functions in the client's process: use localhost")
	}
	var lease float64
	if l, ok := e.backend.(compute.Leaser); ok && l.Leases() {
		lease = e.cfg.Lithops.LeaseTimeout
	}
	job := &protocol.Job{
		Lease:   lease,
		Version: protocol.Version, ExecutorID: e.id, JobID: jobID,
		Function: fn, Signature: sig, Retries: retries, EscalateMemory: co.escalate, Gather: co.gather, Chain: co.chain,
		Codec: e.codec.Name(), Calls: len(inputs), Timeout: timeout, Memory: co.memory,
		Bucket: e.bucket, Inputs: make([]protocol.Range, len(inputs)), Created: time.Now(),
		ExtraEnv: co.extraEnv, Chunksize: co.chunksize,
	}
	job.SetRegistry(reg)
	if br, ok := e.backend.(compute.BlockRecorder); ok {
		job.Block = br.Block(job)
	}
	if pu, ok := e.backend.(compute.ProgramUploader); ok {
		sha, err := pu.Program(ctx)
		if err != nil {
			return nil, fmt.Errorf("lithops: upload the program for %s/%s: %w", e.id, jobID, err)
		}
		job.Program = sha
	}
	var total int64
	for i, in := range inputs {
		job.Inputs[i] = protocol.Range{Offset: total, Size: int64(len(in))}
		total += int64(len(in))
	}
	// A reducer's gather input is references the framework made, not data
	// the user can move to storage.
	if limit := *e.cfg.Lithops.DataLimit; limit > 0 && float64(total) > limit*(1<<20) && !co.gather && !co.chain {
		return nil, fmt.Errorf("lithops: job %s/%s: inputs total %.1f MiB, over lithops.data_limit of %v MiB; pass large data through storage", e.id, jobID, float64(total)/(1<<20), limit)
	}
	// One PUT for all inputs and one for the manifest, in parallel: workers
	// start only after Invoke, when both are in place. Inputs small enough
	// travel in the manifest instead: one object per job fewer.
	blob := enc.blob
	if total <= protocol.InlineLimit {
		job.InputsInline, job.InlineInputs = true, blob
	}
	// The manifest is encoded by whoever writes it: off a small job's way
	// to its workers, which get it from the backend.
	write := func() error {
		manifest, err := job.Encode()
		if err != nil {
			return fmt.Errorf("lithops: encode the manifest of %s/%s: %w", e.id, jobID, err)
		}
		inputsErr := make(chan error, 1)
		if job.InputsInline {
			inputsErr <- nil
		} else {
			go func() { inputsErr <- e.st.PutBytes(ctx, e.bucket, protocol.InputsKey(e.id, jobID), blob) }()
		}
		merr := e.st.PutBytes(ctx, e.bucket, protocol.JobKey(e.id, jobID), manifest)
		if err := <-inputsErr; err != nil {
			return fmt.Errorf("lithops: upload inputs of %s/%s: %w", e.id, jobID, err)
		}
		if merr != nil {
			return fmt.Errorf("lithops: upload manifest of %s/%s: %w", e.id, jobID, merr)
		}
		return nil
	}
	// A backend that hands the workers the manifest, and calls that carry
	// their inputs, need nothing from storage: the records are written
	// while the calls run (and the job fails if they cannot be).
	var written chan error
	if mc, ok := e.backend.(compute.ManifestCarrier); ok && mc.CarriesManifest(job) && !co.hold && len(inputs) > 0 &&
		!slices.ContainsFunc(inputs, func(in []byte) bool { return len(in) > protocol.InlineLimit }) {
		written = make(chan error, 1)
		handed = true
		go func() {
			defer e.preparing.Done()
			err := write()
			written <- err
			if err == nil {
				e.prepareNext(ctx, kind, num) // after: CallAsync need not wait for it
			}
		}()
	} else if err := write(); err != nil {
		return nil, err
	}

	js := &jobState{e: e, job: job, calls: make([]*callState, len(inputs))}
	js.life, js.endLife = context.WithCancel(e.life)
	js.remaining.Store(int64(len(inputs)))
	inv := protocol.Invocation{Version: protocol.Version, Bucket: e.bucket, ExecutorID: e.id, JobID: jobID, Calls: make([]protocol.Call, len(inputs))}
	now := time.Now()
	for i, in := range inputs {
		id := protocol.CallID(i)
		js.calls[i] = newCallState(js, i, id, now)
		c := protocol.Call{ID: id, Index: i}
		if len(in) <= protocol.InlineLimit {
			c.Input, c.HasInput = in, true
		}
		inv.Calls[i] = c
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		if written != nil {
			<-written
		}
		return nil, ErrClosed
	}
	e.addJob(js)
	e.created[jobID] = true
	e.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		js.lifeMu.Lock()
		js.endLife()
		js.lifeMu.Unlock()
		for _, c := range js.calls {
			c.finish(nil, fmt.Errorf("lithops: %s/%s call %s: %w", e.id, jobID, c.id, context.Cause(ctx)))
		}
	})
	js.stopFn.Store(&stop)
	if js.remaining.Load() == 0 {
		js.stop() // every call finished (or was cancelled) before the Store
	}
	if len(inputs) == 0 {
		js.stop()
		return js, nil
	}
	if co.hold {
		return js, nil // the caller invokes each call when its input is ready
	}
	err = e.backend.Invoke(ctx, job, inv)
	if err != nil {
		err = fmt.Errorf("lithops: invoke %s/%s: %w", e.id, jobID, err)
	}
	if written != nil {
		if werr := <-written; werr != nil && err == nil {
			err = werr // the calls may run; their records are the job's, which Close cleans
		}
	}
	if err != nil {
		js.stop()
		for _, c := range js.calls {
			c.finish(nil, err)
		}
		return nil, err
	}
	e.log.Debug("job submitted", "executor", e.id, "job", jobID, "function", fn, "calls", len(inputs))
	return js, nil
}

// prepareNext makes ready, where storage keeps directories (localhost),
// the prefix of the job after job num if it is of the same kind and its
// number is still free: a warm call then finds its job's directory made,
// and neither its manifest nor its worker's status record makes it on the
// way to the answer (on ext4 a directory costs as much as a file). It runs
// beside a small job's calls, once its manifest is written. The prefix
// prepared before goes, as no job took it; a job that fails to start
// removes the one it took (submit), and Close the last (storage never
// shows one: a prepared prefix holds no object).
func (e *Executor) prepareNext(ctx context.Context, kind byte, num int) {
	free := func() bool { return !e.closed && e.nextJob == num+1 }
	e.mu.Lock()
	ok := free()
	e.mu.Unlock()
	if !ok {
		return
	}
	next := fmt.Sprintf("%c%03d", kind, num+1)
	if err := e.st.Prepare(ctx, e.bucket, protocol.JobPrefix(e.id, next)); err != nil {
		e.log.Debug("cannot prepare the next job's prefix", "executor", e.id, "job", next, "err", err)
		return
	}
	e.mu.Lock()
	drop := next // taken meanwhile, by a job of another kind or the same
	if free() {
		drop, e.prepared = e.prepared, next
	}
	e.mu.Unlock()
	e.unprepare(drop)
}

// unprepare removes the prefix prepared for job id ("": none) if it holds
// nothing (a job that took it and wrote there keeps it; one that is about
// to write makes it again).
func (e *Executor) unprepare(id string) {
	if id == "" {
		return
	}
	if err := e.st.Unprepare(context.Background(), e.bucket, protocol.JobPrefix(e.id, id)); err != nil {
		e.log.Debug("cannot remove a prepared job prefix", "executor", e.id, "job", id, "err", err)
	}
}

// stop stops the job's ctx watcher, if it is set, and ends its life.
func (j *jobState) stop() {
	if f := j.stopFn.Load(); f != nil {
		(*f)()
	}
	j.lifeMu.Lock()
	if j.endLife != nil {
		j.endLife()
	}
	j.lifeMu.Unlock()
	j.e.release(j)
}

// context is the context of attempts the executor starts for the job.
func (j *jobState) context() context.Context {
	j.lifeMu.Lock()
	defer j.lifeMu.Unlock()
	if j.life != nil {
		return j.life
	}
	return j.e.life
}

// renew gives the job a new life: its calls run again (Rerun).
func (j *jobState) renew() {
	j.lifeMu.Lock()
	defer j.lifeMu.Unlock()
	if j.endLife != nil {
		j.endLife()
	}
	j.life, j.endLife = context.WithCancel(j.e.life)
}

// invokeAgain starts an attempt of c that the executor itself decided on,
// after protocol.RetryDelay, under the job's life; a failure to start it fails the call (with
// ErrClosed once the executor is closed). Callers run it in a goroutine:
// Invoke may take long (a memory size may be deploying).
func (j *jobState) invokeAgain(c *callState, job *protocol.Job, inv protocol.Invocation, what string) {
	// Not a context cancelled on return: cancelling the Invoke context
	// stops the calls it started.
	life := j.context()
	t := time.NewTimer(protocol.RetryDelay(inv.Calls[0].Attempt - 1)) // the one retry policy
	select {
	case <-t.C:
	case <-life.Done():
		t.Stop()
	}
	err := j.e.backend.Invoke(life, job, inv)
	if err == nil {
		return
	}
	if j.e.life.Err() != nil {
		err = ErrClosed
	}
	c.finish(nil, fmt.Errorf("lithops: %s %s/%s call %s: %w", what, j.e.id, job.JobID, c.id, err))
}

// encodedInputs are a job's encoded inputs, held once: blob has them end
// to end (the inputs object) and each is a view of it (inline inputs).
type encodedInputs struct {
	blob []byte
	each [][]byte
}

// appendInput adds one encoded input.
func (in *encodedInputs) appendInput(b []byte) {
	in.blob = append(in.blob, b...)
	in.each = append(in.each, nil) // set by views, once blob stops moving
}

// views points each input into blob; call it after the last appendInput.
func (in *encodedInputs) views(sizes []int) {
	off := 0
	for i, n := range sizes {
		in.each[i] = in.blob[off : off+n : off+n]
		off += n
	}
}

// encoded holds inputs made one by one (a call, the reducers' gathers).
func encoded(each ...[]byte) encodedInputs {
	var in encodedInputs
	sizes := make([]int, len(each))
	for i, b := range each {
		in.appendInput(b)
		sizes[i] = len(b)
	}
	in.views(sizes)
	return in
}
