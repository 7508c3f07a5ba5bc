// Package host is the runtime host: the generic program deployed once per
// lithops-go version as an Azure Functions custom handler. It receives
// invocations, fetches the user program they name by hash, runs their calls
// in resident worker processes of that program, and reports.
//
// Invariants:
//   - A program is executed only after its SHA-256 matched the hash the
//     invocation names; fetches of one program are collapsed and cached.
//   - The host answers 2xx only when every call of the invocation has a
//     status in storage (written by the worker, or by the host for a call
//     that timed out or crashed); otherwise it answers 5xx so the platform
//     redelivers the message. A user error is a recorded call: 2xx. On the
//     last delivery (Options.MaxDeliveries), and for an HTTP-triggered
//     invocation, which nothing delivers again, the host records the
//     unsettled calls as failed instead.
//   - An HTTP-triggered invocation is answered only once its calls are
//     settled (the platform tracks no work after the answer), within
//     HTTPLimit; one that may take longer is handed to the trigger queue
//     (Options.HandOff) before it is answered.
//   - A call handed back to the client (out of memory, a bigger instance
//     size exists) is reported as soon as it ends, its lease deleted first.
//   - On a redelivery (dequeue count above 1, an HTTP post, Run), a call
//     whose status already exists is not run again; its stored status is
//     reported. A first delivery runs every call without reading their
//     statuses first: the create-if-absent status write keeps the first
//     outcome of a call a duplicate message runs twice.
//   - The final statuses of a job with blocks (protocol.Job.Block) are
//     recorded by the host, not its workers: a block's successes in one
//     record once the delivery's calls of that block have ended, or
//     BlockDelay after the first; failures one by one (worker.RecordFinal,
//     worker.RecordBlock). A status not recorded when the delivery ends
//     is left to giveUp, like one the worker could not write.
//   - Final statuses are pushed to the executor's completion queue in
//     batches: one message (a JSON array) for the calls that end within
//     PushDelay of each other, sent before the invocation is answered.
//   - No credential is read from an invocation; the host uses its own
//     settings (environment) for storage and queues.
//   - The host keeps the worker processes (an internal/procpool pool) of at
//     most MaxResidentPrograms programs, and at most MaxCachedPrograms
//     programs (MaxCacheBytes) on disk: beyond that the least recently used
//     go, never one in use. A worker process idle for WorkerIdleTimeout
//     exits.
package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
	"github.com/lithops-go/lithops/storage"
)

// FunctionName is the function (and URL path) the host serves.
const FunctionName = "lithops_handler"

// Pusher sends a message to a named queue: how final statuses reach the
// client's per-executor completion queue, a JSON array of them per message
// (see PushDelay).
type Pusher interface {
	Push(ctx context.Context, queue string, msg []byte) error
}

// Options configure a Host.
type Options struct {
	// Storage is where programs, manifests, inputs and statuses live.
	Storage *storage.Storage
	// WorkerEnv is the user program's environment in worker mode besides a
	// minimal base (PATH, HOME, …): it must let the program open Storage
	// (LITHOPS_WORKER_CONFIG_FD with WorkerConfig) and holds the runtime spec's env; nothing else
	// of the host's environment reaches the program.
	WorkerEnv []string
	// WorkerConfig reaches each worker on a pipe (procpool.ConfigFD), not
	// in its environment: what it needs to open Storage.
	WorkerConfig []byte
	// Workers is how many calls run at once on this instance.
	Workers int
	// CacheDir holds fetched programs; "" picks the first executable one of
	// the temp dir, the user cache dir and /dev/shm.
	CacheDir string
	// MaxCachedPrograms and MaxCacheBytes bound the programs kept in
	// CacheDir (0: DefaultMaxCachedPrograms, DefaultMaxCacheBytes); the
	// least recently used ones not in use go first. Host processes may
	// share CacheDir: a program one of them uses stays.
	MaxCachedPrograms int
	MaxCacheBytes     int64
	// MaxResidentPrograms bounds the programs whose worker processes the
	// host keeps (0: DefaultMaxResidentPrograms): when a call of another
	// program arrives, the least recently used program with no call
	// running loses its workers. Programs with calls running are never
	// stopped, so the bound may be exceeded while they run.
	MaxResidentPrograms int
	// WorkerIdleTimeout is how long a worker process waits for its next
	// call before it exits (0: DefaultWorkerIdleTimeout; < 0: never).
	WorkerIdleTimeout time.Duration
	// Compiled is a user program built into the runtime (custom runtimes):
	// its path and SHA-256. Calls of that program need no fetch.
	CompiledPath, CompiledSHA string
	// Meta is what a metadata invocation records.
	Meta protocol.RuntimeMeta
	// Pusher delivers final statuses to result queues (optional).
	Pusher Pusher
	// MaxDeliveries is how many times the platform delivers a queue message
	// before it gives up (host.json maxDequeueCount); on the last delivery
	// a failed invocation's calls are recorded as failed. 0: never.
	MaxDeliveries int
	// MemoryMB limits each worker process (0: none).
	MemoryMB int
	// EscalateOOM hands out-of-memory attempts of memory-escalating jobs
	// back to the client, which retries them on the next instance size.
	EscalateOOM bool
	// HandOff, when set, puts an HTTP-triggered invocation on the runtime's
	// trigger queue (the LITHOPS_QUEUE setting, Meta.Queue): the host does
	// so, and answers 202, when the invocation's calls cannot be settled
	// within HTTPLimit (see serveHTTPTrigger), since the platform neither
	// waits longer for the answer nor tracks work left running after it.
	// The queue must have a consumer: a queue-triggered function of the
	// same app. When nil, the host runs such an invocation within the
	// limit anyway and records the calls still unsettled then as failed.
	HandOff func(ctx context.Context, inv *protocol.Invocation) error
	Logger  *slog.Logger
}

// Defaults of Options.
const (
	// DefaultMaxResidentPrograms: an instance mostly serves one runtime's
	// program, a few when clients of several versions share it.
	DefaultMaxResidentPrograms = 4
	// DefaultWorkerIdleTimeout keeps workers warm across the gaps between
	// one client's jobs, and frees their memory when the client is done.
	DefaultWorkerIdleTimeout = 5 * time.Minute
)

// Host serves invocations. Create it with New.
type Host struct {
	opts     Options
	programs *programCache

	mu    sync.Mutex
	pools map[string]*residentPool // by program path
	// Both by executor/job/call. A call may run in two deliveries on this
	// host at once (the queue delivers at least once): each has its own.
	waiters map[string][]*collector
	// Job manifests by JobKey, in two generations: when jobs is full it
	// becomes oldJobs, so a manifest used lately (a delivery that just
	// ended, whose late outcomes still arrive) survives the turnover.
	jobs, oldJobs map[string]*protocol.Job
}

// New returns a host.
func New(opts Options) (*Host, error) {
	if opts.Storage == nil {
		return nil, errors.New("host: no storage")
	}
	if opts.Workers < 1 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxResidentPrograms <= 0 {
		opts.MaxResidentPrograms = DefaultMaxResidentPrograms
	}
	switch {
	case opts.WorkerIdleTimeout == 0:
		opts.WorkerIdleTimeout = DefaultWorkerIdleTimeout
	case opts.WorkerIdleTimeout < 0:
		opts.WorkerIdleTimeout = 0 // the pool's "never"
	}
	pc, err := newProgramCache(opts.Storage, opts.CacheDir, opts.Logger, opts.MaxCachedPrograms, opts.MaxCacheBytes)
	if err != nil {
		return nil, err
	}
	return &Host{opts: opts, programs: pc, pools: map[string]*residentPool{}, waiters: map[string][]*collector{}}, nil
}

// Close stops every worker process.
func (h *Host) Close() error {
	h.mu.Lock()
	pools := h.pools
	h.pools = map[string]*residentPool{}
	h.mu.Unlock()
	for _, p := range pools {
		p.pool.Close()
	}
	return nil
}

// resumeAttempts sets each call's attempt after the highest one recorded.
func (h *Host) resumeAttempts(ctx context.Context, inv *protocol.Invocation) error {
	for i, c := range inv.Calls {
		infos, err := h.opts.Storage.List(ctx, inv.Bucket, protocol.AttemptsPrefix(inv.ExecutorID, inv.JobID, c.ID))
		if err != nil {
			return fmt.Errorf("list attempts of call %s: %w", c.ID, err)
		}
		for _, o := range infos {
			k, ok := protocol.ParseKey(o.Key)
			if ok && k.Kind == protocol.KindAttempt && k.Call == c.ID && k.Attempt+1 > inv.Calls[i].Attempt {
				inv.Calls[i].Attempt = k.Attempt + 1
			}
		}
	}
	return nil
}

func (h *Host) meta() protocol.RuntimeMeta {
	m := h.opts.Meta
	m.Version = protocol.Version
	m.GoVersion = runtime.Version()
	m.Workers = h.opts.Workers
	m.Program = h.opts.CompiledSHA
	return m
}

// Run executes an invocation and returns log lines. A nil error means every
// call of it has a status in storage. Calls already recorded are not run
// again.
func (h *Host) Run(ctx context.Context, inv *protocol.Invocation) ([]string, error) {
	return h.run(ctx, inv, map[string]*protocol.Status{}, true)
}

// run is Run; it adds to settled the calls that have a final record or
// were handed back to the client (nil), which giveUp must leave alone, and
// those whose status could not be written (the status), which giveUp
// writes rather than lose their outcome.
//
// With check, calls whose final status exists are reported and not run
// again: a redelivery, after a delivery that ran some of them. Without it
// (a message's first delivery) every call runs: a duplicate message
// (the client's send retried, or a retry racing a slow attempt) may then
// run a call twice, which at-least-once delivery allows anyway, and the
// status write, create-if-absent, keeps the first outcome and reports it;
// skipping the check saves a read per call on every delivery.
func (h *Host) run(ctx context.Context, inv *protocol.Invocation, settled map[string]*protocol.Status, check bool) ([]string, error) {
	allEnded := false // every call to run has ended and is recorded
	st := h.opts.Storage
	if inv.Op == protocol.OpMetadata {
		meta, _ := json.Marshal(h.meta())
		if err := st.PutBytes(ctx, inv.Bucket, inv.MetaKey, meta); err != nil {
			return nil, fmt.Errorf("write runtime metadata: %w", err)
		}
		return []string{"runtime metadata written to " + inv.MetaKey}, nil
	}
	job, err := h.job(ctx, inv)
	if err != nil {
		return nil, err
	}
	job = h.capTimeout(job)
	pushes := h.newPushBatch(ctx, inv)
	defer pushes.close()
	// Duplicate deliveries: calls already recorded are reported, not rerun.
	var todo []protocol.Call
	var done []*protocol.Status
	var listed map[string]*protocol.Status // by call: what the block records read list
	if check && job.Block > 0 {
		if listed, err = h.blockRecords(ctx, inv, job.Block); err != nil {
			return nil, err
		}
	}
	for _, c := range inv.Calls {
		if !check {
			todo = append(todo, c)
			continue
		}
		// Read from the call's final record: Settled (ReadBlock marks
		// those), so that the client ends the call with it whatever its
		// attempt.
		if s := listed[c.ID]; s != nil {
			done = append(done, s)
			continue
		}
		key := protocol.StatusKey(inv.ExecutorID, inv.JobID, c.ID)
		raw, err := st.GetBytes(ctx, inv.Bucket, key)
		if err == nil {
			if prev, perr := protocol.ParseStatus(raw); perr == nil && prev.State != protocol.StateRunning {
				prev.Settled = true
				done = append(done, prev)
				continue
			}
		} else if !errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("check status of call %s: %w", c.ID, err)
		}
		todo = append(todo, c)
	}
	var logs []string
	if len(done) > 0 {
		logs = append(logs, fmt.Sprintf("%d call(s) already recorded; not run again", len(done)))
	}
	for _, s := range done {
		settled[s.CallID] = nil
		pushes.add(s)
	}
	if len(todo) == 0 {
		return logs, nil
	}
	// The calls to run get their lease on arrival, renewed while they wait
	// for the program, for a worker and while they run: if this instance
	// dies, the client finds each of them within the lease, not when the
	// platform redelivers the message (minutes later).
	if job.Lease > 0 {
		stop := h.heartbeat(ctx, inv, job, todo)
		defer func() { stop(allEnded) }()
	}
	prog, releaseProg, err := h.program(ctx, inv.Program)
	if err != nil && !errors.Is(err, errBadProgram) {
		return logs, err // a failed fetch: the next delivery tries again
	}
	if err != nil {
		// Without the program no call can run: record that, answer 2xx.
		for _, c := range todo {
			if rerr := h.record(ctx, inv, protocol.Failed(inv.ExecutorID, inv.JobID, c, protocol.KindHandler, "program", err.Error()), pushes, false); rerr != nil {
				return logs, rerr
			}
		}
		allEnded = true
		return append(logs, err.Error()), nil
	}
	defer releaseProg()
	pool, releasePool, err := h.pool(prog)
	if err != nil {
		return logs, err
	}
	defer releasePool()
	// The invocation's calls are taken in the order they end: a call handed
	// back must reach the client while others still run.
	ended := newCollector()
	keys := make([]string, len(todo))
	h.mu.Lock()
	for i, c := range todo {
		keys[i] = waiterKey(inv.ExecutorID, inv.JobID, c.ID)
		h.waiters[keys[i]] = append(h.waiters[keys[i]], ended)
	}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		for _, k := range keys {
			h.waiters[k] = slices.DeleteFunc(h.waiters[k], func(c *collector) bool { return c == ended })
			if len(h.waiters[k]) == 0 {
				delete(h.waiters, k)
			}
		}
		h.mu.Unlock()
	}()
	run := *inv
	run.Calls = todo
	if err := pool.Invoke(ctx, job, run); err != nil {
		return logs, fmt.Errorf("start calls: %w", err)
	}
	// The pool kills a call at its timeout, so every call ends; the bound
	// only guards against a host bug. A message of more calls than workers
	// runs them in rounds, each as long as a call may take.
	rounds := time.Duration((len(todo) + h.opts.Workers - 1) / h.opts.Workers)
	limit := rounds*time.Duration(job.Retries+1)*(time.Duration(job.Timeout*float64(time.Second))+10*time.Second) + 2*time.Minute
	if job.Timeout <= 0 {
		limit = 24 * time.Hour
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	// A job with blocks: the pool hands its final statuses over unrecorded
	// (Deferred), and they are recorded here, a block at a time.
	blk := newBlocks(st, inv, job.Block, todo)
	var notWritten, n int
	end := func(s *protocol.Status) {
		n++
		if s.Unrecorded {
			notWritten++
			settled[s.CallID] = s
			return
		}
		// A call handed back to the client stays in this message's
		// lease at its attempt; its next attempt has a lease of its own.
		settled[s.CallID] = nil
		pushes.add(s)
	}
	// stopped leaves what is not recorded to giveUp: the blocks' pending
	// statuses and those that ended since the last round.
	stopped := func() {
		for _, s := range ended.take() {
			if s.Deferred {
				settled[s.CallID] = unrecorded(s)
				continue
			}
			end(s)
		}
		for _, s := range blk.pending() {
			settled[s.CallID] = s
		}
	}
	for n < len(todo) {
		var due <-chan time.Time
		if t := blk.next(); !t.IsZero() {
			due = time.After(time.Until(t))
		}
		select {
		case <-ended.signal:
		case <-due:
		case <-ctx.Done():
			stopped()
			return logs, ctx.Err()
		case <-timer.C:
			stopped()
			return logs, fmt.Errorf("%d of %d calls did not finish within %v", len(todo)-n, len(todo), limit)
		}
		now := time.Now()
		for _, s := range ended.take() {
			if s.Deferred {
				blk.add(s, now)
				continue
			}
			end(s)
		}
		for _, g := range blk.due(now) {
			for _, s := range blk.record(ctx, g) {
				end(s)
			}
		}
	}
	if notWritten > 0 {
		return logs, fmt.Errorf("%d call(s) finished but their status could not be written", notWritten)
	}
	allEnded = true
	return append(logs, fmt.Sprintf("%d call(s) of %s/%s run", len(todo), inv.ExecutorID, inv.JobID)), nil
}

// blockRecords returns the statuses that the block records of inv's calls
// list, by call.
func (h *Host) blockRecords(ctx context.Context, inv *protocol.Invocation, size int) (map[string]*protocol.Status, error) {
	read := map[string]bool{}
	listed := map[string]*protocol.Status{}
	for _, c := range inv.Calls {
		key, ok := protocol.BlockKey(inv.ExecutorID, inv.JobID, c.ID, size)
		if !ok || read[key] {
			continue
		}
		read[key] = true
		// A damaged record lists none: its calls run again and get records
		// of their own.
		sts, err := worker.ReadBlock(ctx, h.opts.Storage, inv.Bucket, key)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("check %w", err)
		}
		for i := range sts {
			listed[sts[i].CallID] = &sts[i]
		}
	}
	return listed, nil
}

func waiterKey(exec, job, call string) string { return exec + "/" + job + "/" + call }

// collector gathers the end statuses of one delivery's calls: the first per
// call, however many executions of it end (duplicates on this host).
type collector struct {
	mu     sync.Mutex
	seen   map[string]bool
	ready  []*protocol.Status
	signal chan struct{} // has a value when ready is not empty
}

func newCollector() *collector {
	return &collector{seen: map[string]bool{}, signal: make(chan struct{}, 1)}
}

func (c *collector) add(s *protocol.Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[s.CallID] {
		return
	}
	c.seen[s.CallID] = true
	c.ready = append(c.ready, s)
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

func (c *collector) take() []*protocol.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.ready
	c.ready = nil
	return r
}

func (h *Host) deliver(s *protocol.Status) {
	k := waiterKey(s.ExecutorID, s.JobID, s.CallID)
	if s.State == protocol.StateRunning {
		return // leases are renewed from the message's arrival
	}
	h.mu.Lock()
	cs := slices.Clone(h.waiters[k])
	var job *protocol.Job
	if len(cs) == 0 && s.Deferred {
		job = h.cachedJob(protocol.JobKey(s.ExecutorID, s.JobID))
	}
	h.mu.Unlock()
	for _, c := range cs {
		// Each delivery records and marks its own copy (Settled,
		// Deferred): two deliveries of one call must not share one.
		cp := *s
		c.add(&cp)
	}
	if len(cs) == 0 && s.Deferred {
		// Its delivery ended before it (a deadline): nobody will record it,
		// so it is recorded here, in its own record behind its block's
		// fence, rather than lost; giveUp's failure, if first, stands.
		go h.recordOrphan(job, s)
	}
}

// recordOrphan records a deferred final status whose delivery has ended.
func (h *Host) recordOrphan(job *protocol.Job, s *protocol.Status) {
	if job == nil {
		h.opts.Logger.Warn("a call's outcome arrived after its delivery ended and its job is unknown here: not recorded", "job", s.JobID, "call", s.CallID)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u := *s
	u.Deferred = false
	if _, err := worker.RecordFinal(ctx, h.opts.Storage, job.Bucket, job.Block, &u); err != nil {
		h.opts.Logger.Warn("cannot record a call's outcome that arrived after its delivery ended", "job", s.JobID, "call", s.CallID, "err", err)
	}
}

// giveUp records a final handler error, saying why, for each call of inv
// not settled by this delivery: it runs when nothing will deliver inv
// again. A call handed back to the client is left to its next attempt.
func (h *Host) giveUp(ctx context.Context, inv *protocol.Invocation, settled map[string]*protocol.Status, why string) error {
	pushes := h.newPushBatch(ctx, inv)
	defer pushes.close()
	for _, c := range inv.Calls {
		if s, ok := settled[c.ID]; ok {
			if s == nil {
				continue
			}
			// An outcome the worker produced but nobody could record: it
			// is the call's final status, not a failure of ours.
			rec := *s
			rec.Unrecorded = false
			if err := h.record(ctx, inv, &rec, pushes, true); err != nil {
				return err
			}
			continue
		}
		if err := h.record(ctx, inv, protocol.Failed(inv.ExecutorID, inv.JobID, c, protocol.KindHandler, "delivery", why), pushes, false); err != nil {
			return err
		}
	}
	return nil
}

// record writes a status the worker could not, create-if-absent like every
// status: one that another delivery wrote first stays, and is the one
// reported, through pushes. A failure of the host's own (outcome false) is
// the call's final status; a worker's outcome (true) goes where its
// attempt and the job's retries say (worker.RecordStatus): a hand-back
// stays one.
//
// The manifest says whether the job has blocks (worker.RecordFinal): when
// it cannot be read nothing is written, the error says so, and the call's
// lease, left to go stale, has the client record it. A job without a
// manifest has no block records (writing one takes the manifest).
func (h *Host) record(ctx context.Context, inv *protocol.Invocation, s *protocol.Status, pushes *pushBatch, outcome bool) error {
	block, retries := 0, 0
	job, err := h.job(ctx, inv)
	switch {
	case err == nil:
		block = job.Block
		if outcome {
			retries = job.Retries
		}
	case !errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("record call %s: %w", s.CallID, err)
	}
	rec, err := worker.RecordStatus(ctx, h.opts.Storage, inv.Bucket, block, retries, s)
	if err != nil {
		return fmt.Errorf("record call %s: %w", s.CallID, err)
	}
	pushes.add(rec)
	return nil
}

// jobCacheSize bounds the host's cache of job manifests.
const jobCacheSize = 256

func (h *Host) job(ctx context.Context, inv *protocol.Invocation) (*protocol.Job, error) {
	key := protocol.JobKey(inv.ExecutorID, inv.JobID)
	h.mu.Lock()
	j := h.cachedJob(key)
	h.mu.Unlock()
	if j != nil {
		return j, nil
	}
	raw, err := h.opts.Storage.GetBytes(ctx, inv.Bucket, key)
	if err != nil {
		return nil, fmt.Errorf("read job manifest: %w", err)
	}
	if j, err = protocol.ParseJob(raw); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	h.mu.Lock()
	h.cacheJob(key, j)
	h.mu.Unlock()
	return j, nil
}

// cachedJob returns the cached manifest at key, or nil; h.mu is held.
func (h *Host) cachedJob(key string) *protocol.Job {
	if j := h.jobs[key]; j != nil {
		return j
	}
	if j := h.oldJobs[key]; j != nil {
		h.cacheJob(key, j) // used again: kept through the next turnover
		return j
	}
	return nil
}

// cacheJob caches j at key; h.mu is held.
func (h *Host) cacheJob(key string, j *protocol.Job) {
	if h.jobs == nil || len(h.jobs) >= jobCacheSize {
		h.oldJobs, h.jobs = h.jobs, make(map[string]*protocol.Job, jobCacheSize)
	}
	h.jobs[key] = j
}

// TimeoutMargin is how much shorter than the runtime's function timeout
// (RuntimeMeta.TimeoutS) a call's execution timeout is capped, as Lithops
// does (runtime_timeout - 5 s): a call over it then ends as a recorded
// timeout, before the platform kills the whole handler at functionTimeout
// (and with it every call of the instance) and redelivers the message.
const TimeoutMargin = 5 * time.Second

// CallTimeoutCap is the longest execution timeout a call may have on a
// runtime whose function timeout is timeoutS seconds, or 0 when there is no
// cap (timeoutS ≤ 5: unknown or too short to leave a margin).
func CallTimeoutCap(timeoutS int) time.Duration {
	limit := time.Duration(timeoutS) * time.Second
	if limit <= TimeoutMargin {
		return 0
	}
	return limit - TimeoutMargin
}

// capTimeout returns job, or a copy of it whose per-call timeout is capped
// at CallTimeoutCap of the runtime's function timeout. A job without a
// timeout (0) gets the cap too.
func (h *Host) capTimeout(job *protocol.Job) *protocol.Job {
	limit := CallTimeoutCap(h.opts.Meta.TimeoutS).Seconds()
	if limit <= 0 || (job.Timeout > 0 && job.Timeout <= limit) {
		return job
	}
	h.opts.Logger.Debug("call timeout capped below the function timeout", "job", job.JobID, "timeout_s", job.Timeout, "cap_s", limit, "function_timeout_s", h.opts.Meta.TimeoutS)
	capped := *job
	capped.Timeout = limit
	return &capped
}
