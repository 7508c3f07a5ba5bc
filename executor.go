package lithops

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lithops-go/lithops/compute"
	"github.com/lithops-go/lithops/compute/localhost"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
	"github.com/lithops-go/lithops/storage"
)

const workerEnv = localhost.WorkerEnv

var (
	sessionID     = newSessionID()
	executorCount atomic.Int64
)

// newSessionID draws 64 random bits: ids of executors whose records are
// kept (data_cleaner off, crashed clients) must not collide.
func newSessionID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Executor submits jobs to a compute backend and tracks their calls, the
// counterpart of Lithops' FunctionExecutor. It is safe for concurrent use.
type Executor struct {
	id string
	// attached: the executor took over an earlier one's records (Attach);
	// created names the jobs submitted through this one (guarded by mu).
	attached bool
	created  map[string]bool
	cfg      *config.Config
	st       *storage.Storage
	backend  compute.Backend
	codec    protocol.Codec
	log      *slog.Logger
	bucket   string

	mu      sync.Mutex
	nextJob int
	jobs    map[string]*jobState // by job id
	order   []*jobState          // in submission order
	closed  bool

	stopPoll chan struct{}
	pollDone chan struct{}

	// life is cancelled by Close: the context of attempts the executor
	// starts itself (retries of lost calls, escalations), which must not
	// end with the goroutine that started them.
	life    context.Context
	endLife context.CancelFunc

	// capLogged makes the timeout cap of a compute.CallTimeoutLimiter
	// logged once.
	capLogged sync.Once
}

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
	// calls' lease tracking.
	pollMu sync.Mutex

	// lastPush (unix nanos) is when the backend last pushed a status of
	// this job; lastPoll when the poller last listed it.
	lastPush, lastPoll atomic.Int64
}

// NewExecutor returns an executor configured by opts, the config file and
// the environment (see package config); with none of them it runs on this
// machine. Programs using the localhost backend must call Main or Init first.
func NewExecutor(ctx context.Context, opts ...Option) (*Executor, error) {
	return newExecutor(ctx, fmt.Sprintf("%s-%d", sessionID, executorCount.Add(1)-1), false, opts)
}

// newExecutor makes an executor with id; attached says it takes over the
// records an earlier executor of that id left (Attach), otherwise the id
// must be new in storage and is drawn again if it is not.
func newExecutor(ctx context.Context, id string, attached bool, opts []Option) (*Executor, error) {
	o, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	cfg := o.cfg
	if len(cfg.ForeignKeys) > 0 {
		o.logger.Warn("config: keys of Python Lithops that lithops-go does not use", "file", cfg.Source, "keys", cfg.ForeignKeys)
	}
	if len(cfg.ForeignSections) > 0 {
		o.logger.Debug("config: sections of backends lithops-go does not have, ignored", "file", cfg.Source, "sections", cfg.ForeignSections)
	}
	e := &Executor{
		id:       id,
		attached: attached,
		created:  map[string]bool{},
		cfg:      cfg,
		codec:    o.codec,
		log:      o.logger,
		jobs:     map[string]*jobState{},
		stopPoll: make(chan struct{}),
		pollDone: make(chan struct{}),
	}
	if cfg.Lithops.Backend != "inprocess" && cfg.Lithops.Storage == "memory" {
		return nil, errors.New("lithops: memory storage lives in this process and cannot be shared with localhost worker processes; use localhost or azure_storage storage")
	}
	openBackend, err := compute.Lookup(cfg.Lithops.Backend)
	if err != nil {
		return nil, fmt.Errorf("lithops: %w", err)
	}
	e.st, err = openStorage(ctx, cfg, cfg.Lithops.Storage, true)
	if err != nil {
		return nil, err
	}
	e.bucket = e.st.Bucket()
	if !attached {
		if e.id, err = e.freshID(ctx); err != nil {
			e.st.Close()
			return nil, err
		}
	}
	e.backend, err = openBackend(ctx, compute.Params{
		Config: cfg, Storage: e.st, ExecutorID: e.id, Notify: e.notify, Logger: e.log, Output: o.output,
	})
	if err != nil {
		e.st.Close()
		return nil, err
	}
	e.life, e.endLife = context.WithCancel(context.Background())
	go e.poll()
	e.log.Debug("executor created", "executor", e.id, "backend", cfg.Lithops.Backend, "storage", cfg.Lithops.Storage)
	return e, nil
}

// freshID returns the executor's id, or a newly drawn one when records of
// an executor of that id are in storage (a kept or crashed one): a new
// executor never reads another's statuses as its own.
func (e *Executor) freshID(ctx context.Context) (string, error) {
	id := e.id
	for range 4 {
		infos, err := e.st.List(ctx, e.bucket, protocol.ExecutorPrefix(id))
		if err != nil {
			return "", fmt.Errorf("lithops: check executor id %s in %s://%s: %w", id, e.st.Backend(), e.bucket, err)
		}
		if len(infos) == 0 {
			return id, nil
		}
		e.log.Warn("executor id already has records in storage: drawing another", "executor", id)
		id = newSessionID() + "-0"
	}
	return "", fmt.Errorf("lithops: no unused executor id in %s://%s after 4 draws", e.st.Backend(), e.bucket)
}

// workerConfigEnv passes the resolved configuration to localhost workers.
const workerConfigEnv = "LITHOPS_WORKER_CONFIG"

// ID returns the executor id ("<session>-<n>"), the prefix of its jobs' keys.
func (e *Executor) ID() string { return e.id }

// Storage returns the executor's storage.
func (e *Executor) Storage() *storage.Storage { return e.st }

// Config returns the executor's resolved configuration.
func (e *Executor) Config() *config.Config { return e.cfg }

// Backend returns the compute backend name.
func (e *Executor) Backend() string { return e.backend.Name() }

// Close stops the backend and fails the calls still pending with
// ErrClosed, and, unless lithops.data_cleaner is false, deletes the storage
// records of the jobs the executor created: all of a new executor's, and of
// an attached one (Attach) only those submitted through it, never the jobs
// it attached to (Clean deletes those on request). Fetch results before
// closing. On localhost
// running calls are killed; on Azure Functions calls already delivered run
// to the end, and what they write after Close stays until `lithops clean`.
func (e *Executor) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.endLife()
	jobs := make([]*jobState, 0, len(e.jobs))
	for _, j := range e.jobs {
		jobs = append(jobs, j)
	}
	e.mu.Unlock()
	close(e.stopPoll)
	<-e.pollDone
	err := e.backend.Close()
	for _, j := range jobs {
		for _, c := range j.calls {
			c.finish(nil, ErrClosed)
		}
	}
	if *e.cfg.Lithops.DataCleaner {
		// Who deletes what: an executor deletes the records of the jobs it
		// created. A new executor created them all; one that attached
		// created only the jobs submitted through it, and leaves the jobs
		// it attached to (Clean deletes those when asked).
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		prefixes := []string{protocol.ExecutorPrefix(e.id)}
		if e.attached {
			prefixes = prefixes[:0]
			for _, j := range jobs {
				if e.created[j.job.JobID] {
					prefixes = append(prefixes, protocol.JobPrefix(e.id, j.job.JobID))
				}
			}
		}
		for _, p := range prefixes {
			if _, derr := e.st.DeletePrefix(ctx, e.bucket, p); derr != nil {
				e.log.Warn("cannot clean job data", "executor", e.id, "prefix", p, "err", derr)
			}
		}
		cancel()
	}
	return errors.Join(err, e.st.Close())
}

// submit creates a job of len(inputs) calls of fn and invokes it.
func (e *Executor) submit(ctx context.Context, kind byte, num int, fn string, sig string, inputs [][]byte, co callOptions) (*jobState, error) {
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
	jobID := fmt.Sprintf("%c%03d", kind, num)
	e.mu.Unlock()

	_, reg := registrySnapshot()
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
	}
	var lease float64
	if l, ok := e.backend.(compute.Leaser); ok && l.Leases() {
		lease = e.cfg.Lithops.LeaseTimeout
	}
	job := &protocol.Job{
		Lease:   lease,
		Version: protocol.Version, ExecutorID: e.id, JobID: jobID,
		Function: fn, Signature: sig, Registry: reg, Retries: retries, EscalateMemory: co.escalate, Gather: co.gather,
		Codec: e.codec.Name(), Calls: len(inputs), Timeout: timeout, Memory: co.memory,
		Bucket: e.bucket, Inputs: make([]protocol.Range, len(inputs)), Created: time.Now(),
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
	if limit := *e.cfg.Lithops.DataLimit; limit > 0 && float64(total) > limit*(1<<20) && !co.gather {
		return nil, fmt.Errorf("lithops: job %s/%s: inputs total %.1f MiB, over lithops.data_limit of %v MiB; pass large data through storage", e.id, jobID, float64(total)/(1<<20), limit)
	}
	// One PUT for all inputs and one for the manifest, in parallel: workers
	// start only after Invoke, when both are in place.
	manifest, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	blob := bytes.Join(inputs, nil)
	inputsErr := make(chan error, 1)
	go func() { inputsErr <- e.st.PutBytes(ctx, e.bucket, protocol.InputsKey(e.id, jobID), blob) }()
	merr := e.st.PutBytes(ctx, e.bucket, protocol.JobKey(e.id, jobID), manifest)
	if err := <-inputsErr; err != nil {
		return nil, fmt.Errorf("lithops: upload inputs of %s/%s: %w", e.id, jobID, err)
	}
	if merr != nil {
		return nil, fmt.Errorf("lithops: upload manifest of %s/%s: %w", e.id, jobID, merr)
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
		return nil, ErrClosed
	}
	e.jobs[jobID] = js
	e.created[jobID] = true
	e.order = append(e.order, js)
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
	if err := e.backend.Invoke(ctx, job, inv); err != nil {
		js.stop()
		err = fmt.Errorf("lithops: invoke %s/%s: %w", e.id, jobID, err)
		for _, c := range js.calls {
			c.finish(nil, err)
		}
		return nil, err
	}
	e.log.Debug("job submitted", "executor", e.id, "job", jobID, "function", fn, "calls", len(inputs))
	return js, nil
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

// notify receives statuses pushed by the backend.
func (e *Executor) notify(st *protocol.Status) {
	e.mu.Lock()
	js := e.jobs[st.JobID]
	e.mu.Unlock()
	if js == nil || st.ExecutorID != e.id {
		return
	}
	idx, err := strconv.Atoi(st.CallID)
	if err != nil || idx < 0 || idx >= len(js.calls) {
		return
	}
	js.lastPush.Store(time.Now().UnixNano())
	c := js.calls[idx]
	if err := st.Validate(); err != nil {
		e.log.Warn("invalid status pushed by backend", "job", st.JobID, "call", st.CallID, "err", err)
		return
	}
	if st.State == protocol.StateRunning {
		c.setRunning(st)
		return
	}
	if !protocol.Final(st, js.job.Retries) {
		// The runtime handed an attempt back: the next one is ours to run.
		e.escalate(js, c, st)
		return
	}
	c.finish(st, nil)
}

// poll is the storage safety net: it reads the statuses of calls that the
// backend has not reported.
func (e *Executor) poll() {
	defer close(e.pollDone)
	interval := time.Duration(e.cfg.Lithops.MonitoringInterval * float64(time.Second))
	if interval < 50*time.Millisecond {
		interval = 50 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-e.stopPoll:
			return
		case <-t.C:
		}
		e.mu.Lock()
		var pending []*jobState
		for _, j := range e.jobs {
			if j.remaining.Load() > 0 && e.pollDue(j, interval) {
				pending = append(pending, j)
			}
		}
		e.mu.Unlock()
		for _, j := range pending {
			j.lastPoll.Store(time.Now().UnixNano())
			e.pollJob(j)
		}
	}
}

// memoryEscalator is a backend with larger memory sizes to retry on.
type memoryEscalator interface {
	NextMemory(mb int) (int, bool)
}

// escalate runs the next attempt of a call whose attempt ran out of memory,
// on the next memory size the backend offers (the same size if none).
func (e *Executor) escalate(js *jobState, c *callState, st *protocol.Status) {
	if c.isDone() {
		return
	}
	c.mu.Lock()
	if st.Attempt+1 <= c.handedBack {
		c.mu.Unlock()
		return // this attempt was handed back before (a redelivery)
	}
	c.handedBack = st.Attempt + 1
	mem := c.memory
	if mem == 0 {
		mem = js.job.Memory
	}
	if esc, ok := e.backend.(memoryEscalator); ok && st.Error != nil && st.Error.Kind == protocol.KindOOM && js.job.EscalateMemory {
		if next, ok := esc.NextMemory(mem); ok {
			mem = next
		}
	}
	c.memory = mem
	c.mu.Unlock()
	job := *js.job
	job.Memory = mem
	inv := protocol.Invocation{Version: protocol.Version, Bucket: job.Bucket, ExecutorID: e.id, JobID: job.JobID,
		Calls: []protocol.Call{{ID: c.id, Index: c.index, Attempt: st.Attempt + 1}}}
	e.log.Info("retrying call with more memory", "job", job.JobID, "call", c.id, "attempt", st.Attempt+1, "memory_mb", mem)
	go func() {
		// The runtime deleted the attempt's lease before handing it back; a
		// lease seen before belongs to the old attempt. (Here, not in the
		// caller: the poller may hold the job's lock for a while.)
		js.forgetLease(c)
		js.invokeAgain(c, &job, inv, fmt.Sprintf("escalate to %d MB", mem))
	}()
}

// pollDue says whether a job should be listed now. While the backend's
// pushes flow, listing a big job every interval only loads storage, so the
// poller backs off; it still lists often enough to catch a missed lease, and
// at every interval once pushes stop.
func (e *Executor) pollDue(j *jobState, interval time.Duration) bool {
	now := time.Now().UnixNano()
	sincePush := time.Duration(now - j.lastPush.Load())
	sincePoll := time.Duration(now - j.lastPoll.Load())
	if sincePush >= 3*interval {
		return true
	}
	slow := 10 * interval
	if j.job.Lease > 0 {
		slow = min(slow, time.Duration(j.job.Lease*float64(time.Second))/2)
	}
	return sincePoll >= slow
}

func (e *Executor) pollJob(j *jobState) {
	j.pollMu.Lock()
	defer j.pollMu.Unlock()
	// Bounded by the executor's life: Close does not wait for a poll that
	// a storage outage holds up.
	ctx, cancel := context.WithTimeout(e.life, 30*time.Second)
	defer cancel()
	prefix := protocol.JobPrefix(e.id, j.job.JobID)
	infos, err := e.st.List(ctx, e.bucket, prefix)
	if err != nil {
		e.log.Debug("poll: list failed", "job", j.job.JobID, "err", err)
		return
	}
	leases := map[int]storage.ObjectInfo{}
	attempts := map[int]int{}
	for _, o := range infos {
		k, ok := protocol.ParseKey(o.Key)
		if !ok || k.Executor != e.id || k.Job != j.job.JobID {
			continue
		}
		idx, err := strconv.Atoi(k.Call)
		if err != nil || idx < 0 || idx >= len(j.calls) {
			continue
		}
		switch k.Kind {
		case protocol.KindLease:
			leases[idx] = o
			continue
		case protocol.KindAttempt:
			attempts[idx]++
			continue
		case protocol.KindStatus:
		default:
			continue
		}
		c := j.calls[idx]
		if c.isDone() {
			continue
		}
		raw, err := e.st.GetBytes(ctx, e.bucket, o.Key)
		if err != nil {
			continue
		}
		var st protocol.Status
		err = json.Unmarshal(raw, &st)
		if err == nil {
			err = st.Validate()
		}
		if err == nil && st.State == protocol.StateRunning {
			err = errors.New("a final status record says running")
		}
		if err == nil && (st.CallID != c.id || st.JobID != j.job.JobID) {
			err = fmt.Errorf("the record is of call %s/%s", st.JobID, st.CallID)
		}
		if err != nil {
			// A record that cannot be read stays unreadable: the call ends
			// with a named failure (Rerun replaces the record) instead of
			// waiting for ever.
			e.log.Warn("poll: unreadable status", "key", o.Key, "err", err)
			c.finish(nil, fmt.Errorf("%w: %s://%s/%s: %v", ErrCorrupt, e.st.Backend(), e.bucket, o.Key, err))
			continue
		}
		c.finish(&st, nil)
	}
	if j.job.Lease <= 0 {
		return
	}
	// A running call whose lease stopped changing for longer than the lease
	// lost its worker: retry it or fail it, rather than wait for its timeout.
	now := time.Now()
	lease := time.Duration(j.job.Lease * float64(time.Second))
	for idx, o := range leases {
		c := j.calls[idx]
		if c.isDone() {
			continue
		}
		if o.ETag != c.leaseETag || c.leaseSeen.IsZero() {
			c.leaseETag, c.leaseSeen = o.ETag, now
			continue
		}
		if now.Sub(c.leaseSeen) > lease {
			e.lost(ctx, j, c, attempts[idx], now.Sub(c.leaseSeen))
		}
	}
}

// forgetLease drops what the poller knew of c's lease, for a new attempt.
func (j *jobState) forgetLease(c *callState) {
	j.pollMu.Lock()
	c.leaseETag, c.leaseSeen = "", time.Time{}
	j.pollMu.Unlock()
}

// lost handles a call whose worker vanished: the next attempt if retries
// are left, else a final "lost" failure. Records are create-if-absent, so a
// worker that was only slow and finishes after all keeps its result.
func (e *Executor) lost(ctx context.Context, j *jobState, c *callState, attempt int, silent time.Duration) {
	st := protocol.Failed(e.id, j.job.JobID, protocol.Call{ID: c.id, Attempt: attempt}, protocol.KindLost, "lost",
		fmt.Sprintf("the worker stopped renewing the call's lease %v ago (lease %vs): it vanished", silent.Round(time.Second), j.job.Lease))
	rec, err := worker.Record(ctx, e.st, e.bucket, protocol.RecordKey(st, j.job.Retries), st)
	if err != nil {
		e.log.Warn("cannot record a lost call", "job", j.job.JobID, "call", c.id, "err", err)
		return
	}
	e.st.Delete(ctx, e.bucket, protocol.LeaseKey(e.id, j.job.JobID, c.id))
	c.leaseETag, c.leaseSeen = "", time.Time{} // j.pollMu is held
	if protocol.Final(st, j.job.Retries) {
		c.finish(rec, nil) // the worker's own final record, if it wrote one first
		return
	}
	e.log.Info("call lost; retrying", "job", j.job.JobID, "call", c.id, "attempt", attempt+1)
	inv := protocol.Invocation{Version: protocol.Version, Bucket: j.job.Bucket, ExecutorID: e.id, JobID: j.job.JobID,
		Calls: []protocol.Call{{ID: c.id, Index: c.index, Attempt: attempt + 1}}}
	job := *j.job
	c.mu.Lock()
	if c.memory != 0 {
		job.Memory = c.memory // the size an escalation moved the call to
	}
	c.mu.Unlock()
	go j.invokeAgain(c, &job, inv, "retry lost") // not under j.pollMu
}

// JobInfo summarizes one job of an executor.
type JobInfo struct {
	ID       string // "A000", "M001", "R001", …
	Function string
	Calls    int
	Done     int // finished, successfully or not
	Failed   int
	Created  time.Time
}

// Clean deletes the storage records of finished jobs, the named ones or
// else all of them, and forgets them: Lithops' clean(). A long-running
// client calls it to keep both storage and its own memory bounded (Close
// cleans everything). Futures of a cleaned job keep inline results and
// results already fetched; results stored as their own objects are gone.
// Naming a job with calls not finished, or a map job whose reducers have
// not finished, is an error; without names such jobs are skipped.
func (e *Executor) Clean(ctx context.Context, jobIDs ...string) error {
	busy := func(j *jobState) bool { return j.remaining.Load() > 0 || j.pins.Load() > 0 }
	e.mu.Lock()
	var todo []*jobState
	if len(jobIDs) == 0 {
		for _, j := range e.order {
			if !busy(j) {
				todo = append(todo, j)
			}
		}
	}
	for _, id := range jobIDs {
		j := e.jobs[id]
		switch {
		case j == nil:
			e.mu.Unlock()
			return fmt.Errorf("lithops: clean: executor %s has no job %q", e.id, id)
		case busy(j):
			e.mu.Unlock()
			return fmt.Errorf("lithops: clean: job %s/%s is not finished (calls running, or reducers waiting for its results)", e.id, id)
		}
		todo = append(todo, j)
	}
	e.mu.Unlock()
	for _, j := range todo {
		if _, err := e.st.DeletePrefix(ctx, e.bucket, protocol.JobPrefix(e.id, j.job.JobID)); err != nil {
			return fmt.Errorf("lithops: clean %s/%s: %w", e.id, j.job.JobID, err)
		}
		e.mu.Lock()
		delete(e.jobs, j.job.JobID)
		e.order = slices.DeleteFunc(e.order, func(o *jobState) bool { return o == j })
		e.mu.Unlock()
	}
	return nil
}

// Jobs returns the executor's jobs in submission order.
func (e *Executor) Jobs() []JobInfo {
	e.mu.Lock()
	order := append([]*jobState(nil), e.order...)
	e.mu.Unlock()
	out := make([]JobInfo, len(order))
	for i, j := range order {
		p := progressOf(j.calls)
		out[i] = JobInfo{ID: j.job.JobID, Function: j.job.Function, Calls: len(j.calls), Done: p.Done, Failed: p.Failed, Created: j.job.Created}
	}
	return out
}
