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
//   - A call whose status already exists (a duplicate delivery) is not run
//     again; its stored status is reported.
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
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lithops-go/lithops/internal/procpool"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
	"github.com/lithops-go/lithops/storage"
	"golang.org/x/sync/errgroup"
)

// FunctionName is the function (and URL path) the host serves.
const FunctionName = "lithops_handler"

// Pusher sends a message to a named queue: how final statuses reach the
// client's per-executor completion queue.
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
	leases  map[string][]*leaseTarget
	jobs    map[string]*protocol.Job
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
	return &Host{opts: opts, programs: pc, pools: map[string]*residentPool{}, waiters: map[string][]*collector{}, leases: map[string][]*leaseTarget{}, jobs: map[string]*protocol.Job{}}, nil
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

// Serve listens on 127.0.0.1:port (FUNCTIONS_CUSTOMHANDLER_PORT) until ctx
// ends.
func (h *Host) Serve(ctx context.Context, port string) error {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return fmt.Errorf("host: listen: %w", err)
	}
	srv := &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	h.opts.Logger.Info("runtime host listening", "addr", ln.Addr().String())
	err = srv.Serve(ln)
	h.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Handler returns the custom-handler HTTP interface: GET / answers the
// readiness probe; POST /lithops_handler serves queue- and HTTP-triggered
// invocations.
func (h *Host) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("lithops runtime host ready\n"))
	})
	mux.HandleFunc("POST /"+FunctionName, h.serveInvocation)
	return mux
}

// invocationRequest is what the Functions host POSTs.
type invocationRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

type invocationResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (h *Host) serveInvocation(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, invocationResponse{Logs: []string{"read request: " + err.Error()}})
		return
	}
	var req invocationRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, invocationResponse{Logs: []string{"request is not the Functions host's JSON: " + err.Error()}})
		return
	}
	if raw, ok := req.Data["req"]; ok {
		h.serveHTTPTrigger(w, r, raw)
		return
	}
	raw, ok := req.Data["msgIn"]
	if !ok {
		writeJSON(w, http.StatusBadRequest, invocationResponse{Logs: []string{"request has neither Data.msgIn (queue trigger) nor Data.req (HTTP trigger)"}})
		return
	}
	inv, err := DecodeMessage(raw)
	if err != nil {
		// A malformed message cannot succeed later either; failing lets the
		// platform move it to the poison queue, where it can be inspected.
		writeJSON(w, http.StatusBadRequest, invocationResponse{Logs: []string{err.Error()}})
		return
	}
	if dequeueCount(req.Metadata) > 1 {
		// A redelivery: earlier attempts may have been recorded before the
		// host that ran them died; attempt numbers go on from there.
		if err := h.resumeAttempts(r.Context(), inv); err != nil {
			writeJSON(w, http.StatusInternalServerError, invocationResponse{Logs: []string{err.Error()}})
			return
		}
	}
	settled := map[string]*protocol.Status{}
	logs, err := h.run(r.Context(), inv, settled)
	if n := dequeueCount(req.Metadata); err != nil && h.opts.MaxDeliveries > 0 && n >= h.opts.MaxDeliveries {
		// The platform will not deliver it again (it goes to the poison
		// queue): fail its calls for good rather than leave them pending.
		if gerr := h.giveUp(r.Context(), inv, settled, fmt.Sprintf("the runtime failed this call's invocation %d times, the last with: %v", n, err)); gerr == nil {
			writeJSON(w, http.StatusOK, invocationResponse{Outputs: map[string]any{}, Logs: append(logs, err.Error(), "gave up after the last delivery")})
			return
		}
	}
	if err != nil {
		h.opts.Logger.Warn("invocation not recorded; asking for redelivery", "job", inv.JobID, "err", err)
		writeJSON(w, http.StatusInternalServerError, invocationResponse{Logs: append(logs, err.Error())})
		return
	}
	writeJSON(w, http.StatusOK, invocationResponse{Outputs: map[string]any{}, Logs: logs})
}

// HTTPLimit is how long the platform lets an HTTP-triggered function take
// to answer (Azure's front end drops the request after 230 s).
const HTTPLimit = 230 * time.Second

// httpMargin is kept free below HTTPLimit: for recording the calls left
// unsettled and answering.
const httpMargin = 20 * time.Second

// HTTPCallBound is the longest an HTTP-triggered invocation runs: clients
// cap the timeout of calls sent over HTTPS at it.
const HTTPCallBound = HTTPLimit - httpMargin

// httpBound is how long an HTTP-triggered invocation may run before it must
// answer: HTTPLimit less a margin, the function timeout less TimeoutMargin,
// and what remains of the request's own deadline, whichever is least.
func (h *Host) httpBound(r *http.Request) time.Duration {
	bound := HTTPCallBound
	if c := CallTimeoutCap(h.opts.Meta.TimeoutS); c > 0 {
		bound = min(bound, c)
	}
	if dl, ok := r.Context().Deadline(); ok {
		bound = min(bound, time.Until(dl)-httpMargin)
	}
	return max(bound, time.Second)
}

// httpNeed is the longest the calls of inv may take to settle on this host:
// its job's (capped) timeout, for every attempt, times the rounds of calls
// per worker. ok is false when that has no bound (no timeout).
func (h *Host) httpNeed(job *protocol.Job, calls int) (need time.Duration, ok bool) {
	job = h.capTimeout(job)
	if job.Timeout <= 0 {
		return 0, false
	}
	rounds := (calls + h.opts.Workers - 1) / h.opts.Workers
	return time.Duration(job.Timeout*float64(time.Second)) * time.Duration(rounds*(job.Retries+1)), true
}

// serveHTTPTrigger serves an invocation in an HTTP request body. The
// platform does not track work left running after the answer, so the calls
// run before it: the answer (200) comes when every call is settled, within
// httpBound. An invocation whose calls may need longer (decided up front
// from its job's timeout) is handed to the runtime's trigger queue
// (Options.HandOff) and answered 202 once enqueued; without HandOff it runs
// anyway, and calls still unsettled at the bound are recorded as failed.
// Metadata requests are answered in the response.
func (h *Host) serveHTTPTrigger(w http.ResponseWriter, r *http.Request, raw json.RawMessage) {
	var req struct {
		Body json.RawMessage `json:"Body"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		writeJSON(w, http.StatusOK, httpOut(400, "malformed request: "+err.Error()))
		return
	}
	inv, err := DecodeMessage(req.Body)
	if err != nil {
		writeJSON(w, http.StatusOK, httpOut(400, err.Error()))
		return
	}
	if inv.Op == protocol.OpMetadata {
		if _, err := h.Run(r.Context(), inv); err != nil {
			writeJSON(w, http.StatusOK, httpOut(500, err.Error()))
			return
		}
		meta, _ := json.Marshal(h.meta())
		writeJSON(w, http.StatusOK, httpOut(200, string(meta)))
		return
	}
	bound := h.httpBound(r)
	// The calls are settled (or recorded as failed) before the answer even
	// if the caller goes away; the bound keeps that short.
	base := context.WithoutCancel(r.Context())
	ctx, cancel := context.WithTimeout(base, bound)
	defer cancel()
	if h.opts.HandOff != nil {
		// A manifest that cannot be read fails the run below, and is
		// recorded there.
		if job, err := h.job(ctx, inv); err == nil {
			if need, ok := h.httpNeed(job, len(inv.Calls)); !ok || need > bound {
				if err := h.opts.HandOff(ctx, inv); err != nil {
					h.opts.Logger.Warn("HTTP-triggered invocation could not be queued", "job", inv.JobID, "err", err)
					// 5xx: the client posts it again.
					writeJSON(w, http.StatusOK, httpOut(503, "the runtime could not queue this invocation: "+err.Error()))
					return
				}
				h.opts.Logger.Debug("HTTP-triggered invocation queued: its calls may outlast the HTTP limit", "job", inv.JobID, "calls", len(inv.Calls), "need", need, "bound", bound)
				writeJSON(w, http.StatusOK, httpOut(202, "queued"))
				return
			}
		}
	}
	settled := map[string]*protocol.Status{}
	_, err = h.run(ctx, inv, settled)
	if err != nil {
		why := "the runtime could not run this call: " + err.Error()
		if ctx.Err() != nil {
			why = fmt.Sprintf("the call was not finished within %v, the longest an HTTP-triggered invocation of %d call(s) may run before it answers", bound.Round(time.Second), len(inv.Calls))
		}
		// Nothing delivers an HTTP request again: fail the calls now
		// rather than leave them pending.
		h.opts.Logger.Warn("HTTP-triggered invocation failed", "job", inv.JobID, "err", err)
		gctx, gcancel := context.WithTimeout(base, httpMargin*3/4)
		defer gcancel()
		if gerr := h.giveUp(gctx, inv, settled, why); gerr != nil {
			h.opts.Logger.Warn("HTTP-triggered invocation not recorded", "job", inv.JobID, "err", gerr)
			// 5xx: the client posts it again; recorded calls are not rerun.
			writeJSON(w, http.StatusOK, httpOut(500, "the runtime could not record this invocation's calls: "+gerr.Error()))
			return
		}
	}
	writeJSON(w, http.StatusOK, httpOut(200, "settled"))
}

func httpOut(code int, body string) invocationResponse {
	return invocationResponse{Outputs: map[string]any{"res": map[string]any{
		"statusCode": fmt.Sprint(code), "body": body, "headers": map[string]string{"Content-Type": "application/json"},
	}}}
}

// dequeueCount reads Metadata.DequeueCount, which the host sends as a string
// (or a number).
func dequeueCount(md map[string]json.RawMessage) int {
	raw := md["DequeueCount"]
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		n, _ = strconv.Atoi(strings.Trim(s, `"`))
	}
	return n
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

// DecodeMessage extracts the invocation from a trigger value: the Functions
// host hands message text over JSON-quoted, possibly more than once.
func DecodeMessage(raw json.RawMessage) (*protocol.Invocation, error) {
	for i := 0; i < 4; i++ {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			break
		}
		raw = json.RawMessage(s)
	}
	var inv protocol.Invocation
	if err := json.Unmarshal(raw, &inv); err != nil {
		return nil, fmt.Errorf("message is not a lithops invocation: %w", err)
	}
	if err := inv.Validate(); err != nil {
		return nil, err
	}
	return &inv, nil
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
// call of it has a status in storage.
func (h *Host) Run(ctx context.Context, inv *protocol.Invocation) ([]string, error) {
	return h.run(ctx, inv, map[string]*protocol.Status{})
}

// run is Run; it adds to settled the calls that have a final record or
// were handed back to the client (nil), which giveUp must leave alone, and
// those whose status could not be written (the status), which giveUp
// writes rather than lose their outcome.
func (h *Host) run(ctx context.Context, inv *protocol.Invocation, settled map[string]*protocol.Status) ([]string, error) {
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
	// Duplicate deliveries: calls already recorded are reported, not rerun.
	var todo []protocol.Call
	var done []*protocol.Status
	for _, c := range inv.Calls {
		key := protocol.StatusKey(inv.ExecutorID, inv.JobID, c.ID)
		raw, err := st.GetBytes(ctx, inv.Bucket, key)
		if err == nil {
			var prev protocol.Status
			if json.Unmarshal(raw, &prev) == nil && prev.Validate() == nil && prev.State != protocol.StateRunning {
				done = append(done, &prev)
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
		h.push(ctx, inv, s)
	}
	if len(todo) == 0 {
		return logs, nil
	}
	// Every call to run gets its lease on arrival, renewed while it waits
	// for the program, for a worker and while it runs: if this instance
	// dies, the client finds each of them within the lease, not when the
	// platform redelivers the message (minutes later).
	if job.Lease > 0 {
		stop := h.heartbeat(ctx, inv, job, todo)
		defer stop()
	}
	prog, releaseProg, err := h.program(ctx, inv.Program)
	if err != nil && !errors.Is(err, errBadProgram) {
		return logs, err // a failed fetch: the next delivery tries again
	}
	if err != nil {
		// Without the program no call can run: record that, answer 2xx.
		for _, c := range todo {
			if rerr := h.record(ctx, inv, protocol.Failed(inv.ExecutorID, inv.JobID, c, protocol.KindHandler, "program", err.Error())); rerr != nil {
				return logs, rerr
			}
		}
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
	// only guards against a host bug.
	limit := time.Duration(job.Retries+1)*(time.Duration(job.Timeout*float64(time.Second))+10*time.Second) + 2*time.Minute
	if job.Timeout <= 0 {
		limit = 24 * time.Hour
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	var unrecorded int
	for n := 0; n < len(todo); {
		select {
		case <-ended.signal:
		case <-ctx.Done():
			return logs, ctx.Err()
		case <-timer.C:
			return logs, fmt.Errorf("%d of %d calls did not finish within %v", len(todo)-n, len(todo), limit)
		}
		for _, s := range ended.take() {
			n++
			if s.Unrecorded {
				unrecorded++
				settled[s.CallID] = s
				continue
			}
			settled[s.CallID] = nil
			if job.Lease > 0 && !protocol.Final(s, job.Retries) {
				// Handed back to the client for its next attempt: the lease
				// goes first, so that it is not taken for the next one's.
				if err := st.Delete(ctx, inv.Bucket, protocol.LeaseKey(inv.ExecutorID, inv.JobID, s.CallID)); err != nil {
					h.opts.Logger.Debug("delete lease", "call", s.CallID, "err", err)
				}
			}
			h.push(ctx, inv, s)
		}
	}
	if unrecorded > 0 {
		return logs, fmt.Errorf("%d call(s) finished but their status could not be written", unrecorded)
	}
	return append(logs, fmt.Sprintf("%d call(s) of %s/%s run", len(todo), inv.ExecutorID, inv.JobID)), nil
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

// leaseTarget is a call whose lease the host renews once it runs.
type leaseTarget struct {
	key string

	// mu is held across a renewal, so that end waits for one in flight:
	// after end no renewal of this attempt reaches storage.
	mu    sync.Mutex
	ended bool
}

// end stops the renewals.
func (lt *leaseTarget) end() {
	lt.mu.Lock()
	lt.ended = true
	lt.mu.Unlock()
}

// heartbeat renews the leases of the invocation's running calls every
// Lease/3 until stopped, so that a client notices within Lease when this
// instance vanishes.
func (h *Host) heartbeat(ctx context.Context, inv *protocol.Invocation, job *protocol.Job, calls []protocol.Call) (stop func()) {
	targets := make([]*leaseTarget, len(calls))
	h.mu.Lock()
	for i, c := range calls {
		targets[i] = &leaseTarget{key: protocol.LeaseKey(inv.ExecutorID, inv.JobID, c.ID)}
		k := waiterKey(inv.ExecutorID, inv.JobID, c.ID)
		h.leases[k] = append(h.leases[k], targets[i])
	}
	h.mu.Unlock()
	done := make(chan struct{})
	interval := time.Duration(job.Lease / 3 * float64(time.Second))
	beat := func(lt *leaseTarget) {
		lt.mu.Lock()
		defer lt.mu.Unlock()
		if lt.ended {
			return
		}
		b := fmt.Sprintf(`{"at":%q}`, time.Now().UTC().Format(time.RFC3339Nano))
		if err := h.opts.Storage.PutBytes(ctx, inv.Bucket, lt.key, []byte(b)); err != nil {
			h.opts.Logger.Debug("lease renewal failed", "key", lt.key, "err", err)
		}
	}
	// The arrival leases are written together, before the first call
	// starts: until a call has one, a dead instance hides it.
	var first errgroup.Group
	first.SetLimit(16)
	for _, lt := range targets {
		first.Go(func() error { beat(lt); return nil })
	}
	first.Wait()
	go func() {
		t := time.NewTicker(max(interval, 100*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for _, lt := range targets {
				beat(lt)
			}
		}
	}()
	return func() {
		close(done)
		h.mu.Lock()
		for i, c := range calls {
			k := waiterKey(inv.ExecutorID, inv.JobID, c.ID)
			h.leases[k] = slices.DeleteFunc(h.leases[k], func(lt *leaseTarget) bool { return lt == targets[i] })
			if len(h.leases[k]) == 0 {
				delete(h.leases, k)
			}
		}
		h.mu.Unlock()
	}
}

func (h *Host) deliver(s *protocol.Status) {
	k := waiterKey(s.ExecutorID, s.JobID, s.CallID)
	if s.State == protocol.StateRunning {
		return // leases are renewed from the calls' arrival
	}
	// The call has ended (the pool reports only final, handed-back and
	// unrecorded statuses): no more renewals, by any delivery of it here.
	h.mu.Lock()
	cs := slices.Clone(h.waiters[k])
	lts := slices.Clone(h.leases[k])
	h.mu.Unlock()
	for _, lt := range lts {
		lt.end()
	}
	for _, c := range cs {
		c.add(s)
	}
}

// giveUp records a final handler error, saying why, for each call of inv
// not settled by this delivery: it runs when nothing will deliver inv
// again. A call handed back to the client is left to its next attempt.
func (h *Host) giveUp(ctx context.Context, inv *protocol.Invocation, settled map[string]*protocol.Status, why string) error {
	for _, c := range inv.Calls {
		if s, ok := settled[c.ID]; ok {
			if s == nil {
				continue
			}
			// An outcome the worker produced but nobody could record: it
			// is the call's final status, not a failure of ours.
			rec := *s
			rec.Unrecorded = false
			if err := h.record(ctx, inv, &rec); err != nil {
				return err
			}
			continue
		}
		if err := h.record(ctx, inv, protocol.Failed(inv.ExecutorID, inv.JobID, c, protocol.KindHandler, "delivery", why)); err != nil {
			return err
		}
	}
	return nil
}

// record writes a final status the worker could not, create-if-absent like
// every status: one that another delivery wrote first stays, and is the
// one reported.
func (h *Host) record(ctx context.Context, inv *protocol.Invocation, s *protocol.Status) error {
	rec, err := worker.Record(ctx, h.opts.Storage, inv.Bucket, protocol.StatusKey(s.ExecutorID, s.JobID, s.CallID), s)
	if err != nil {
		return fmt.Errorf("record call %s: %w", s.CallID, err)
	}
	h.push(ctx, inv, rec)
	return nil
}

// push reports a final status to the executor's queue; storage stays the
// source of truth, so a failed push is only logged.
func (h *Host) push(ctx context.Context, inv *protocol.Invocation, s *protocol.Status) {
	if inv.ResultQueue == "" || h.opts.Pusher == nil {
		return
	}
	msg, _ := json.Marshal(s)
	if err := h.opts.Pusher.Push(ctx, inv.ResultQueue, msg); err != nil {
		h.opts.Logger.Debug("push status", "queue", inv.ResultQueue, "err", err)
	}
}

func (h *Host) job(ctx context.Context, inv *protocol.Invocation) (*protocol.Job, error) {
	key := protocol.JobKey(inv.ExecutorID, inv.JobID)
	h.mu.Lock()
	j := h.jobs[key]
	h.mu.Unlock()
	if j != nil {
		return j, nil
	}
	raw, err := h.opts.Storage.GetBytes(ctx, inv.Bucket, key)
	if err != nil {
		return nil, fmt.Errorf("read job manifest: %w", err)
	}
	j = new(protocol.Job)
	if err := json.Unmarshal(raw, j); err != nil {
		return nil, fmt.Errorf("job manifest %s: %w", key, err)
	}
	if err := j.Validate(); err != nil {
		return nil, fmt.Errorf("job manifest %s: %w", key, err)
	}
	h.mu.Lock()
	if len(h.jobs) > 256 {
		clear(h.jobs)
	}
	h.jobs[key] = j
	h.mu.Unlock()
	return j, nil
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

// residentPool is the worker processes of one program.
type residentPool struct {
	pool  *procpool.Pool
	users int       // runs using it
	used  time.Time // when a run last took or left it
}

// pool returns the worker pool of prog, started if need be, for a run,
// which calls release when its calls are settled.
func (h *Host) pool(prog string) (pool *procpool.Pool, release func(), err error) {
	h.mu.Lock()
	rp := h.pools[prog]
	if rp == nil {
		p, err := procpool.New(procpool.Options{
			Program:     prog,
			Env:         h.opts.WorkerEnv,
			Config:      h.opts.WorkerConfig,
			CleanEnv:    true,
			Size:        h.opts.Workers,
			MemoryMB:    h.opts.MemoryMB,
			IdleTimeout: h.opts.WorkerIdleTimeout,
			Storage:     h.opts.Storage,
			Notify:      h.deliver,
			EscalateOOM: h.opts.EscalateOOM,
			Logger:      h.opts.Logger,
		})
		if err != nil {
			h.mu.Unlock()
			return nil, nil, fmt.Errorf("host: worker pool: %w", err)
		}
		rp = &residentPool{pool: p}
		h.pools[prog] = rp
	}
	rp.users++
	rp.used = time.Now()
	evicted := h.evictPoolsLocked()
	h.mu.Unlock()
	h.closePools(evicted)
	return rp.pool, func() {
		h.mu.Lock()
		rp.users--
		rp.used = time.Now()
		evicted := h.evictPoolsLocked()
		h.mu.Unlock()
		h.closePools(evicted)
	}, nil
}

// evictPoolsLocked takes out of h.pools the least recently used pools that
// no run uses, while there are more than MaxResidentPrograms.
func (h *Host) evictPoolsLocked() map[string]*procpool.Pool {
	var evicted map[string]*procpool.Pool
	for len(h.pools) > h.opts.MaxResidentPrograms {
		var victim string
		var oldest time.Time
		for prog, rp := range h.pools {
			if rp.users > 0 {
				continue
			}
			if s := rp.pool.Stats(); s.Running > 0 || s.Queued > 0 {
				continue // a retry of a run that gave up may still be there
			}
			if victim == "" || rp.used.Before(oldest) {
				victim, oldest = prog, rp.used
			}
		}
		if victim == "" {
			return evicted // every pool is in use: over the bound until one ends
		}
		if evicted == nil {
			evicted = map[string]*procpool.Pool{}
		}
		evicted[victim] = h.pools[victim].pool
		delete(h.pools, victim)
	}
	return evicted
}

// closePools stops evicted pools' workers (outside h.mu: it waits for them).
func (h *Host) closePools(evicted map[string]*procpool.Pool) {
	for prog, p := range evicted {
		h.opts.Logger.Info("worker processes of a program stopped: more programs than MaxResidentPrograms", "program", prog, "max", h.opts.MaxResidentPrograms)
		p.Close()
	}
}

// program returns the path of the program with hash sha, and a release to
// call once its calls are settled (it stays on disk until then).
func (h *Host) program(ctx context.Context, sha string) (string, func(), error) {
	if sha == "" {
		return "", nil, fmt.Errorf("%w: the invocation names no program", errBadProgram)
	}
	if sha == h.opts.CompiledSHA && h.opts.CompiledPath != "" {
		return h.opts.CompiledPath, func() {}, nil
	}
	path, err := h.programs.get(ctx, sha)
	if err != nil {
		return "", nil, err
	}
	return path, func() { h.programs.release(sha) }, nil
}
