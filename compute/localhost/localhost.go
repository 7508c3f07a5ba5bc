// Package localhost is the embedded default compute backend: it runs calls in
// resident worker processes on this machine.
//
// A worker is the user's own program started in worker mode (environment
// LITHOPS_WORKER=localhost); it reads one call at a time from a pipe on file
// descriptor 3 and answers on descriptor 4, so the program's own stdout and
// stderr stay free for the user's prints. At most Workers processes run;
// they start on demand and stay for the next call.
//
// Invariants:
//   - Every accepted call whose ctx is not cancelled ends with a status in
//     storage and a Notify: the worker's own, or one the backend writes when
//     the call exceeded its timeout (the worker is killed) or the worker died
//     (exit status or signal recorded). Those are written create-if-absent,
//     so a status the worker managed to write first wins.
//   - A worker that died or was killed is replaced by a fresh one for the
//     next call; no other call is affected.
package localhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lithops-go/lithops/compute"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
	"github.com/lithops-go/lithops/storage"
)

// WorkerEnv is the environment variable that puts a program in worker mode.
const WorkerEnv = "LITHOPS_WORKER"

// ConfigFD is the file descriptor on which a worker reads
// Options.WorkerConfig (after the request and response pipes, 3 and 4).
const ConfigFD = 5

// Options configure a Backend.
type Options struct {
	// Program is the executable the workers run; "" means this process's own.
	Program string
	// Env is added to the workers' environment.
	Env []string
	// WorkerConfig is what a worker needs to open its storage (JSON). It
	// reaches the worker on file descriptor 5 (ConfigFD), never through
	// the environment, which subprocesses inherit and /proc shows.
	WorkerConfig []byte
	// CleanEnv starts workers from a minimal environment (PATH, HOME, temp
	// dir, locale, TZ) instead of this process's: a runtime host's own
	// settings, credentials included, are not the user program's business.
	CleanEnv bool
	// Workers is the number of worker processes (≥ 1).
	Workers int
	// MemoryMB limits each worker's address space (0: unlimited).
	MemoryMB int
	// Storage is where the backend records calls whose worker died.
	Storage *storage.Storage
	// Notify receives statuses as they happen (optional).
	Notify compute.Notify
	// EscalateOOM, when true, hands an out-of-memory attempt of a job that
	// escalates memory back through Notify instead of retrying it here: a
	// runtime host does so when a larger instance size exists, and the
	// client runs the next attempt there.
	EscalateOOM bool
	// Output receives the workers' stdout and stderr (default os.Stderr).
	Output io.Writer
	Logger *slog.Logger
}

// Backend is the localhost compute backend.
type Backend struct {
	opts    Options
	program string

	closing chan struct{} // closed by Close: running calls are abandoned

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []*task
	head   int
	slots  int
	idle   int
	closed bool
	wg     sync.WaitGroup
	seq    atomic.Int64
}

type task struct {
	ctx      context.Context
	inv      protocol.Invocation
	timeout  time.Duration
	memoryMB int // 0: no limit
	retries  int
	escalate bool
}

// New returns a localhost backend. Workers start on the first Invoke.
func New(opts Options) (*Backend, error) {
	if opts.Workers < 1 {
		return nil, fmt.Errorf("localhost: worker_processes must be ≥ 1, got %d", opts.Workers)
	}
	if opts.Storage == nil {
		return nil, errors.New("localhost: no storage")
	}
	prog := opts.Program
	if prog == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("localhost: find own executable: %w", err)
		}
		prog = exe
	} else if _, err := exec.LookPath(prog); err != nil {
		return nil, fmt.Errorf("localhost: runtime program %q: %w", prog, err)
	}
	if opts.Output == nil {
		opts.Output = os.Stderr
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Backend{opts: opts, program: prog, closing: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	return b, nil
}

// Name implements compute.Backend.
func (b *Backend) Name() string { return "localhost" }

// Invoke implements compute.Backend: it queues one task per call.
func (b *Backend) Invoke(ctx context.Context, job *protocol.Job, inv protocol.Invocation) error {
	timeout := time.Duration(job.Timeout * float64(time.Second))
	mem := job.Memory
	if mem == 0 {
		mem = b.opts.MemoryMB
	}
	tasks := make([]*task, len(inv.Calls))
	for i, c := range inv.Calls {
		one := inv
		one.Calls = []protocol.Call{c}
		tasks[i] = &task{ctx: ctx, inv: one, timeout: timeout, memoryMB: mem, retries: job.Retries, escalate: job.EscalateMemory}
	}
	return b.enqueue(tasks...)
}

// enqueue queues tasks and starts workers on demand, up to the limit.
func (b *Backend) enqueue(tasks ...*task) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("localhost: backend closed")
	}
	b.queue = append(b.queue, tasks...)
	for need := len(b.queue) - b.head - b.idle; need > 0 && b.slots < b.opts.Workers; need-- {
		b.slots++
		b.idle++
		b.wg.Add(1)
		go b.slot()
	}
	b.cond.Broadcast()
	return nil
}

// next blocks for the next task; nil means the backend is closing.
func (b *Backend) next() *task {
	b.mu.Lock()
	defer b.mu.Unlock()
	for !b.closed && b.head == len(b.queue) {
		b.cond.Wait()
	}
	if b.closed {
		return nil
	}
	t := b.queue[b.head]
	b.queue[b.head] = nil
	b.head++
	if b.head == len(b.queue) {
		b.queue, b.head = b.queue[:0], 0
	}
	b.idle--
	return t
}

func (b *Backend) done() {
	b.mu.Lock()
	b.idle++
	b.mu.Unlock()
}

// Close implements compute.Backend: it kills every worker.
func (b *Backend) Close() error {
	b.mu.Lock()
	if !b.closed {
		close(b.closing)
	}
	b.closed = true
	b.queue, b.head = nil, 0
	b.cond.Broadcast()
	b.mu.Unlock()
	b.wg.Wait()
	return nil
}

func (b *Backend) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// slot owns at most one worker process at a time and runs tasks on it.
func (b *Backend) slot() {
	defer b.wg.Done()
	var p *proc
	defer func() {
		if p != nil {
			p.stop()
		}
	}()
	for {
		t := b.next()
		if t == nil {
			return
		}
		if t.ctx.Err() == nil {
			p = b.run(p, t)
		}
		b.done()
	}
}

// run executes t on p (starting a worker if p is nil) and returns the worker
// to use next (nil if it died).
func (b *Backend) run(p *proc, t *task) *proc {
	call := t.inv.Calls[0]
	base := protocol.Status{Version: protocol.Version, ExecutorID: t.inv.ExecutorID, JobID: t.inv.JobID, CallID: call.ID, Attempt: call.Attempt}
	if p == nil {
		var err error
		if p, err = b.spawn(); err != nil {
			st := base
			st.State, st.End = protocol.StateError, time.Now()
			st.Error = &protocol.ErrorRecord{Kind: protocol.KindHandler, Message: "start worker: " + err.Error()}
			b.record(t, &st)
			return nil
		}
	}
	running := base
	running.State, running.WorkerID, running.Start = protocol.StateRunning, p.id, time.Now()
	if b.opts.Notify != nil {
		b.opts.Notify(&running)
	}
	resp, err := p.call(t, b.closing)
	if err == nil && resp.Status != nil {
		if verr := checkReply(resp.Status, t); verr != nil {
			// A worker that answers nonsense is not trusted with its status.
			resp.Status, resp.Error = nil, strings.TrimPrefix(resp.Error+"; ", "; ")+"malformed reply from worker: "+verr.Error()
		}
	}
	if err == nil {
		if resp.Status != nil && resp.Error == "" {
			b.outcome(t, resp.Status)
			return p
		}
		// The worker could not record the call: record it ourselves. Its
		// outcome (and inline result) is kept, so a storage failure does
		// not lose a result that was produced.
		st := resp.Status
		if st == nil {
			st = &base
			st.State, st.WorkerID, st.Start, st.End = protocol.StateError, p.id, running.Start, time.Now()
			st.Error = &protocol.ErrorRecord{Kind: protocol.KindHandler, Message: resp.Error}
		}
		b.record(t, st)
		return p
	}
	// The worker is gone or must go.
	p.stop()
	if t.ctx.Err() != nil || b.isClosed() {
		return nil // cancelled: the executor already failed the call
	}
	st := base
	st.State, st.WorkerID, st.Start, st.End = protocol.StateError, p.id, running.Start, time.Now()
	var te *timeoutError
	var oe *oomError
	switch {
	case errors.As(err, &oe):
		st.Error = &protocol.ErrorRecord{Kind: protocol.KindOOM, Type: "oom",
			Message: fmt.Sprintf("call used %d MiB, over its memory limit of %d MiB, and its worker was killed", oe.rss>>20, t.memoryMB)}
	case errors.As(err, &te):
		st.Error = &protocol.ErrorRecord{Kind: protocol.KindTimeout, Type: "timeout",
			Message: fmt.Sprintf("call exceeded its timeout of %v and its worker was killed", t.timeout)}
	default:
		st.Error = p.exitRecord()
	}
	b.record(t, &st)
	return nil
}

// checkReply checks that a worker's reply is a valid final status of t's
// call.
func checkReply(st *protocol.Status, t *task) error {
	c := t.inv.Calls[0]
	switch {
	case st.Validate() != nil:
		return st.Validate()
	case st.State == protocol.StateRunning:
		return fmt.Errorf("status of call %s is still running", st.CallID)
	case st.ExecutorID != t.inv.ExecutorID || st.JobID != t.inv.JobID || st.CallID != c.ID:
		return fmt.Errorf("status is of call %s/%s/%s, not %s/%s/%s", st.ExecutorID, st.JobID, st.CallID, t.inv.ExecutorID, t.inv.JobID, c.ID)
	}
	return nil
}

// outcome retries a failed attempt that has retries left, after a backoff,
// and reports anything else.
func (b *Backend) outcome(t *task, st *protocol.Status) {
	if protocol.Final(st, t.retries) || st.Unrecorded || t.ctx.Err() != nil {
		if b.opts.Notify != nil {
			b.opts.Notify(st)
		}
		return
	}
	if t.escalate && b.opts.EscalateOOM && st.Error != nil && st.Error.Kind == protocol.KindOOM {
		if b.opts.Notify != nil {
			b.opts.Notify(st)
		}
		return
	}
	next := *t
	next.inv.Calls = []protocol.Call{t.inv.Calls[0]}
	next.inv.Calls[0].Attempt = st.Attempt + 1
	if t.escalate && st.Error != nil && st.Error.Kind == protocol.KindOOM && next.memoryMB > 0 {
		next.memoryMB *= 2
	}
	delay := min(100*time.Millisecond<<st.Attempt, 5*time.Second)
	delay += time.Duration(rand.Int64N(int64(delay/2) + 1))
	b.opts.Logger.Info("localhost: retrying call", "job", st.JobID, "call", st.CallID, "attempt", st.Attempt+1, "after", delay, "error", st.Error.Message)
	time.AfterFunc(delay, func() {
		if next.ctx.Err() == nil {
			b.enqueue(&next)
		}
	})
}

// record writes a status the worker could not, unless one exists, and
// reports whichever status is in storage.
func (b *Backend) record(t *task, st *protocol.Status) {
	ctx := context.WithoutCancel(t.ctx)
	rec, err := worker.Record(ctx, b.opts.Storage, t.inv.Bucket, protocol.RecordKey(st, t.retries), st)
	if err != nil {
		b.opts.Logger.Warn("localhost: cannot record call status", "job", st.JobID, "call", st.CallID, "err", err)
		rec.Unrecorded = true
	}
	b.outcome(t, rec)
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

type timeoutError struct{}

func (*timeoutError) Error() string { return "timeout" }

type oomError struct{ rss int64 }

func (*oomError) Error() string { return "out of memory" }

// proc is one worker process.
type proc struct {
	id     string
	cmd    *exec.Cmd
	req    *os.File
	enc    *json.Encoder
	resps  chan worker.PipeResponse
	exited chan struct{}
	err    error // from cmd.Wait, valid after exited is closed
	killed atomic.Bool
	// limit and peak are the current call's memory limit and the most
	// resident memory seen for it (bytes); used by the call's goroutine only.
	limit, peak int64
}

// KillGrace is how long after a call's timeout its worker is killed: the
// function's ctx ends at the timeout, so a function that honours it has
// this long to return (and be recorded as timed out) before the kill.
const KillGrace = 2 * time.Second

func (b *Backend) spawn() (*proc, error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, err
	}
	host, _ := os.Hostname()
	id := fmt.Sprintf("%s-%d-%d", host, os.Getpid(), b.seq.Add(1))
	cmd := exec.Command(b.program)
	base := os.Environ()
	if b.opts.CleanEnv {
		base = cleanEnv(base)
	}
	cmd.Env = append(append(base, b.opts.Env...), WorkerEnv+"=localhost", "LITHOPS_WORKER_ID="+id)
	if b.opts.MemoryMB > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("LITHOPS_WORKER_MEMORY_MB=%d", b.opts.MemoryMB))
	}
	cmd.ExtraFiles = []*os.File{reqR, respW}
	var cfgW *os.File
	if b.opts.WorkerConfig != nil {
		cfgR, w, err := os.Pipe()
		if err != nil {
			reqR.Close()
			reqW.Close()
			respR.Close()
			respW.Close()
			return nil, err
		}
		defer cfgR.Close()
		cfgW = w
		cmd.ExtraFiles = append(cmd.ExtraFiles, cfgR)
	}
	cmd.Stdout = b.opts.Output
	cmd.Stderr = b.opts.Output
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		reqR.Close()
		reqW.Close()
		respR.Close()
		respW.Close()
		if cfgW != nil {
			cfgW.Close()
		}
		return nil, fmt.Errorf("start %s: %w", b.program, err)
	}
	reqR.Close()
	respW.Close()
	if cfgW != nil {
		// A config larger than the pipe's buffer is read while written.
		go func() {
			cfgW.Write(b.opts.WorkerConfig)
			cfgW.Close()
		}()
	}
	p := &proc{id: id, cmd: cmd, req: reqW, enc: json.NewEncoder(reqW), resps: make(chan worker.PipeResponse, 1), exited: make(chan struct{})}
	go func() {
		dec := json.NewDecoder(respR)
		for {
			var r worker.PipeResponse
			if err := dec.Decode(&r); err != nil {
				break
			}
			p.resps <- r
		}
		respR.Close()
		close(p.resps)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// call sends t and waits for the answer, the timeout, cancellation or the
// worker's death. A nil error means the worker answered and is reusable.
func (p *proc) call(t *task, closing <-chan struct{}) (worker.PipeResponse, error) {
	if err := p.enc.Encode(worker.PipeRequest{Invocation: t.inv}); err != nil {
		return worker.PipeResponse{}, fmt.Errorf("send call: %w", err)
	}
	var timer <-chan time.Time
	if t.timeout > 0 {
		// The function's ctx ends at the timeout; the worker is killed only
		// a grace period later, so a function that honours its ctx returns
		// and the worker records the timeout itself.
		tm := time.NewTimer(t.timeout + KillGrace)
		defer tm.Stop()
		timer = tm.C
	}
	// The memory limit is enforced by watching the worker's resident set:
	// the call is killed as soon as it goes over, as a cloud platform would.
	// Subprocesses that a function starts count too (they share the
	// worker's process group), as they would on a cloud instance; the group
	// is summed every tenth tick, the worker itself every tick.
	var watch <-chan time.Time
	limit := int64(t.memoryMB) << 20
	p.limit, p.peak = limit, 0
	if limit > 0 && rssSupported {
		tk := time.NewTicker(25 * time.Millisecond)
		defer tk.Stop()
		watch = tk.C
	}
	ticks := 0
	for {
		select {
		case r, ok := <-p.resps:
			if !ok {
				return r, errors.New("worker exited")
			}
			return r, nil
		case <-timer:
			return worker.PipeResponse{}, &timeoutError{}
		case <-t.ctx.Done():
			return worker.PipeResponse{}, t.ctx.Err()
		case <-closing:
			return worker.PipeResponse{}, errors.New("backend closed")
		case <-watch:
			rss := processRSS(p.cmd.Process.Pid)
			if ticks++; ticks%10 == 0 {
				rss = max(rss, groupRSS(p.cmd.Process.Pid))
			}
			p.peak = max(p.peak, rss)
			if rss > limit {
				return worker.PipeResponse{}, &oomError{rss: rss}
			}
		}
	}
}

// stop ends the worker: closing its request pipe lets an idle worker exit
// cleanly; a busy or stuck one is killed.
func (p *proc) stop() {
	p.req.Close()
	select {
	case <-p.exited:
		return
	case <-time.After(50 * time.Millisecond):
	}
	p.killed.Store(true)
	killGroup(p.cmd)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
}

// exitRecord describes how the worker died.
func (p *proc) exitRecord() *protocol.ErrorRecord {
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
	rec := &protocol.ErrorRecord{Kind: protocol.KindCrash, Type: "exit"}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			rec.Type = "signal"
			rec.ExitCode = -1
			rec.Message = fmt.Sprintf("worker %s was killed by signal %v while running the call", p.id, ws.Signal())
			// A kill that lithops did not send is out of memory only if the
			// call's memory was seen near its limit (the kernel's OOM killer
			// acting first); otherwise something else killed the worker.
			if ws.Signal() == syscall.SIGKILL && !p.killed.Load() {
				if p.limit > 0 && p.peak >= p.limit*9/10 {
					rec.Kind = protocol.KindOOM
					rec.Message += fmt.Sprintf(" (out of memory: %d MiB used of its %d MiB limit)", p.peak>>20, p.limit>>20)
				} else {
					rec.Message += " (not by lithops: an external kill or the system's out-of-memory killer)"
				}
			}
			return rec
		}
		rec.ExitCode = ee.ExitCode()
		rec.Message = fmt.Sprintf("worker %s exited with status %d while running the call", p.id, ee.ExitCode())
		return rec
	}
	rec.Message = fmt.Sprintf("worker %s exited while running the call (%v)", p.id, p.err)
	return rec
}
