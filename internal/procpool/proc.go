package procpool

import (
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lithops-go/lithops/internal/procgroup"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/quietsys"
	"github.com/lithops-go/lithops/internal/worker"
)

// proc is one worker process.
type proc struct {
	id   string
	cmd  *exec.Cmd
	req  *os.File
	reqw io.Writer // req, written by raw system calls (quietsys)
	enc  *json.Encoder
	genc *gob.Encoder // once the worker reads gob (gob set)
	// gob: the worker said Hello with Gob: its responses after it are gob
	// messages, and it reads gob requests after a Switch.
	gob   atomic.Bool
	resps chan worker.PipeResponse
	// registry: the worker said Hello with Registry, so a request may
	// leave out the registry told (the digest of the last sent in full).
	registry atomic.Bool
	told     string // by the sending goroutine only
	// batch: the worker said Hello with Batch, so it runs several calls
	// of one request (set by the reader before the answer that follows).
	batch  atomic.Bool
	exited chan struct{}
	err    error // from cmd.Wait, valid after exited is closed
	killed atomic.Bool
	// limit and peak are the current task's memory limit and the most
	// resident memory seen for it (bytes); used by the task's goroutine only.
	limit, peak int64
}

func (p *Pool) spawn() (*proc, error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("request pipe: %w", err)
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, fmt.Errorf("response pipe: %w", err)
	}
	host, _ := os.Hostname()
	id := fmt.Sprintf("%s-%d-%d", host, os.Getpid(), p.seq.Add(1))
	cmd := exec.Command(p.program)
	base := os.Environ()
	if p.opts.CleanEnv {
		base = cleanEnv(base)
	}
	cmd.Env = append(append(base, p.opts.Env...), WorkerEnv+"=localhost", "LITHOPS_WORKER_ID="+id, worker.BatchEnv+"=1", worker.GobEnv+"=1")
	if p.opts.MemoryMB > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("LITHOPS_WORKER_MEMORY_MB=%d", p.opts.MemoryMB))
	}
	cmd.ExtraFiles = []*os.File{reqR, respW}
	var cfgW *os.File
	if p.opts.Config != nil {
		cfgR, w, err := os.Pipe()
		if err != nil {
			reqR.Close()
			reqW.Close()
			respR.Close()
			respW.Close()
			return nil, fmt.Errorf("config pipe: %w", err)
		}
		defer cfgR.Close()
		cfgW = w
		cmd.ExtraFiles = append(cmd.ExtraFiles, cfgR)
	}
	cmd.Stdout = p.opts.Output
	cmd.Stderr = p.opts.Output
	cmd.SysProcAttr = procgroup.Attr() // a kill reaches what the function started; no orphan outlives its owner
	if err := cmd.Start(); err != nil {
		reqR.Close()
		reqW.Close()
		respR.Close()
		respW.Close()
		if cfgW != nil {
			cfgW.Close()
		}
		return nil, fmt.Errorf("start %s: %w", p.program, err)
	}
	p.procs.Add(1)
	reqR.Close()
	respW.Close()
	if cfgW != nil {
		// A config larger than the pipe's buffer is read while written.
		go func() {
			cfgW.Write(p.opts.Config)
			cfgW.Close()
		}()
	}
	reqw := quietsys.Writer(reqW)
	w := &proc{id: id, cmd: cmd, req: reqW, reqw: reqw, enc: json.NewEncoder(reqw), resps: make(chan worker.PipeResponse, 1), exited: make(chan struct{})}
	go func() {
		resp := quietsys.Reader(respR)
		jdec := json.NewDecoder(resp)
		var dec interface{ Decode(any) error } = jdec
		for {
			var r worker.PipeResponse
			if err := dec.Decode(&r); err != nil {
				break
			}
			if r.Hello != nil {
				w.batch.Store(r.Hello.Batch)
				w.registry.Store(r.Hello.Registry)
				if r.Hello.Gob && !w.gob.Load() {
					dec = gob.NewDecoder(worker.AfterJSON(jdec, resp))
					w.gob.Store(true)
				}
				continue
			}
			if r.Status != nil {
				// In-memory marks, not the worker's to set; Settled is: the
				// worker read the status from the call's final record.
				r.Status.Unrecorded, r.Status.Deferred = false, false
			}
			w.resps <- r
		}
		respR.Close()
		close(w.resps)
	}()
	go func() {
		w.err = cmd.Wait()
		p.procs.Add(-1)
		close(w.exited)
	}()
	return w, nil
}

// send writes a request.
// Once the worker said it reads gob, the requests after a Switch are gob
// messages: the pool's send is what the worker decodes most.
// A carried job's registry goes to a worker once, not with every call.
func (w *proc) send(req worker.PipeRequest) error {
	told := ""
	if j := req.Invocation.Job; j != nil && j.RegistryDigest != "" && w.registry.Load() {
		if j.RegistryDigest == w.told {
			short := *j
			short.Registry = nil
			req.Invocation.Job, req.RegistryTold = &short, true
		} else {
			told = j.RegistryDigest
		}
	}
	if w.genc == nil && w.gob.Load() {
		if err := w.enc.Encode(worker.PipeRequest{Switch: "gob"}); err != nil {
			return fmt.Errorf("send call: %w", err)
		}
		w.genc = gob.NewEncoder(w.reqw)
	}
	var err error
	if w.genc != nil {
		err = w.genc.Encode(req)
	} else {
		err = w.enc.Encode(req)
	}
	if err != nil {
		return fmt.Errorf("send call: %w", err)
	}
	if told != "" {
		w.told = told
	}
	return nil
}

// await waits for the answer to t, sent to the worker and the first of its
// request not answered yet: for the answer, the timeout, cancellation, the
// pool's closing or the worker's death. A nil error means the worker
// answered and is reusable.
func (w *proc) await(t *Task, closing <-chan struct{}) (worker.PipeResponse, error) {
	var timer <-chan time.Time
	if t.Timeout > 0 {
		// The function's ctx ends at the timeout; the worker is killed only
		// a grace period later, so a function that honours its ctx returns
		// and the worker records the timeout itself.
		tm := time.NewTimer(t.Timeout + KillGrace)
		defer tm.Stop()
		timer = tm.C
	}
	// The memory limit is enforced by watching the worker's resident set:
	// the call is killed as soon as it goes over, as a cloud platform would.
	// Subprocesses that a function starts count too (they share the
	// worker's process group), as they would on a cloud instance; the group
	// is summed every tenth tick, the worker itself every tick.
	var watch <-chan time.Time
	limit := int64(t.MemoryMB) << 20
	w.limit, w.peak = limit, 0
	if limit > 0 && rssSupported {
		tk := time.NewTicker(25 * time.Millisecond)
		defer tk.Stop()
		watch = tk.C
	}
	ticks := 0
	for {
		select {
		case r, ok := <-w.resps:
			if !ok {
				return r, errors.New("worker exited")
			}
			return r, nil
		case <-timer:
			return worker.PipeResponse{}, &TimeoutError{Timeout: t.Timeout}
		case <-t.Ctx.Done():
			return worker.PipeResponse{}, t.Ctx.Err()
		case <-closing:
			return worker.PipeResponse{}, ErrClosed
		case <-watch:
			rss := processRSS(w.cmd.Process.Pid)
			if ticks++; ticks%10 == 0 {
				rss = max(rss, groupRSS(w.cmd.Process.Pid))
			}
			w.peak = max(w.peak, rss)
			if rss > limit {
				return worker.PipeResponse{}, &OOMError{RSS: rss, LimitMB: t.MemoryMB}
			}
		}
	}
}

// stop ends the worker: closing its request pipe lets an idle worker exit
// cleanly; a busy or stuck one is killed.
func (w *proc) stop() {
	w.req.Close()
	select {
	case <-w.exited:
		return
	case <-time.After(50 * time.Millisecond):
	}
	w.killed.Store(true)
	procgroup.Kill(w.cmd)
	select {
	case <-w.exited:
	case <-time.After(10 * time.Second):
	}
}

// exitRecord describes how the worker died.
func (w *proc) exitRecord() *protocol.ErrorRecord {
	select {
	case <-w.exited:
	case <-time.After(10 * time.Second):
	}
	rec := &protocol.ErrorRecord{Kind: protocol.KindCrash, Type: "exit"}
	var ee *exec.ExitError
	if errors.As(w.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			rec.Type = "signal"
			rec.ExitCode = -1
			rec.Message = fmt.Sprintf("worker %s was killed by signal %v while running the call", w.id, ws.Signal())
			// A kill that lithops did not send is out of memory only if the
			// call's memory was seen near its limit (the kernel's OOM killer
			// acting first); otherwise something else killed the worker.
			if ws.Signal() == syscall.SIGKILL && !w.killed.Load() {
				if w.limit > 0 && w.peak >= w.limit*9/10 {
					rec.Kind = protocol.KindOOM
					rec.Message += fmt.Sprintf(" (out of memory: %d MiB used of its %d MiB limit)", w.peak>>20, w.limit>>20)
				} else {
					rec.Message += " (not by lithops: an external kill or the system's out-of-memory killer)"
				}
			}
			return rec
		}
		rec.ExitCode = ee.ExitCode()
		rec.Message = fmt.Sprintf("worker %s exited with status %d while running the call", w.id, ee.ExitCode())
		return rec
	}
	rec.Message = fmt.Sprintf("worker %s exited while running the call (%v)", w.id, w.err)
	return rec
}
