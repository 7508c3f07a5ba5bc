// The executor's life: construction, jobs, cleaning, Close.

package lithops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lithops-go/lithops/compute"
	"github.com/lithops-go/lithops/compute/localhost"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
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
	jobs    map[string]*jobRef // by job id
	order   []*jobRef          // in submission order
	closed  bool
	// prepared is the job id whose prefix prepareNext made ready and no
	// job has taken yet ("": none); preparing counts the goroutines that
	// may still prepare one, which Close waits for.
	prepared  string
	preparing sync.WaitGroup

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
		jobs:     map[string]*jobRef{},
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
	jobs := e.running()
	ids := make([]string, 0, len(e.jobs))
	for id := range e.jobs {
		ids = append(ids, id)
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
			for _, id := range ids {
				if e.created[id] {
					prefixes = append(prefixes, protocol.JobPrefix(e.id, id))
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
	// Not data: it goes whether or not the data cleaner runs. No prefix is
	// prepared after the goroutines that may prepare one have ended.
	e.preparing.Wait()
	e.mu.Lock()
	prepared := e.prepared
	e.prepared = ""
	e.mu.Unlock()
	e.unprepare(prepared)
	return errors.Join(err, e.st.Close())
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
	// A job the executor holds strongly is running or pinned (see jobRef).
	busy := func(r *jobRef) bool {
		j := r.strong
		return j != nil && (j.remaining.Load() > 0 || j.pins.Load() > 0)
	}
	e.mu.Lock()
	var todo []*jobRef
	if len(jobIDs) == 0 {
		for _, r := range e.order {
			if !busy(r) {
				todo = append(todo, r)
			}
		}
	}
	for _, id := range jobIDs {
		r := e.jobs[id]
		switch {
		case r == nil:
			e.mu.Unlock()
			return fmt.Errorf("lithops: clean: executor %s has no job %q", e.id, id)
		case busy(r):
			e.mu.Unlock()
			return fmt.Errorf("lithops: clean: job %s/%s is not finished (calls running, or reducers waiting for its results)", e.id, id)
		}
		todo = append(todo, r)
	}
	e.mu.Unlock()
	for _, r := range todo {
		if _, err := e.st.DeletePrefix(ctx, e.bucket, protocol.JobPrefix(e.id, r.id)); err != nil {
			return fmt.Errorf("lithops: clean %s/%s: %w", e.id, r.id, err)
		}
		e.mu.Lock()
		delete(e.jobs, r.id)
		e.order = slices.DeleteFunc(e.order, func(o *jobRef) bool { return o == r })
		e.mu.Unlock()
	}
	return nil
}

// Jobs returns the executor's jobs in submission order.
func (e *Executor) Jobs() []JobInfo {
	e.mu.Lock()
	out := make([]JobInfo, len(e.order))
	live := make([]*jobState, len(e.order))
	for i, r := range e.order {
		out[i], live[i] = r.info, r.strong
	}
	e.mu.Unlock()
	for i, j := range live {
		if j != nil {
			p := progressOf(j.calls)
			out[i] = JobInfo{ID: j.job.JobID, Function: j.job.Function, Calls: len(j.calls), Done: p.Done, Failed: p.Failed, Created: j.job.Created}
		}
	}
	return out
}
