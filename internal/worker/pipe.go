package worker

import (
	"bufio"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
)

// PipeRequest is what a resident localhost worker reads: an invocation of
// one call, or (once the worker said Hello) of several, run one after the
// other.
type PipeRequest struct {
	Invocation protocol.Invocation `json:"inv"`
	// BatchRecords lets the worker record successes of the request's
	// calls together, in batch records (protocol.BatchKey).
	BatchRecords bool `json:"batch_records,omitempty"`
	// Switch "gob", in a request of no call, says that every request after
	// it is a gob message on the same stream (the worker said Hello with
	// Gob first); nothing answers it.
	Switch string `json:"switch,omitempty"`
	// Defer: the worker records no final status; it answers each with
	// Deferred set, and whoever sent the request records it (a runtime
	// host, for the calls of a job with blocks: Job.Block). A worker that
	// does not know Defer records as usual and answers without Deferred.
	Defer bool `json:"defer,omitempty"`
	// RegistryTold: the carried job's Registry is left out; it is the one
	// of digest Job.RegistryDigest that an earlier request on the same
	// pipe carried (the worker said Hello with Registry).
	RegistryTold bool `json:"registry_told,omitempty"`
}

// PipeResponse answers one call of a PipeRequest, in the order of its
// calls; a worker that understands batches first writes one with Hello.
type PipeResponse struct {
	Status *protocol.Status `json:"status,omitempty"`
	// Error is set when the status could not be recorded in storage.
	Error string `json:"error,omitempty"`
	// Deferred: the worker did not record Status (PipeRequest.Defer).
	Deferred bool `json:"deferred,omitempty"`
	// Hello, in a worker's first line only, says what it understands; it
	// answers no call.
	Hello *PipeHello `json:"hello,omitempty"`
}

// PipeHello is what a worker tells its pool before any answer.
type PipeHello struct {
	// Batch: the worker runs every call of a request, in order, with one
	// response each.
	Batch bool `json:"batch,omitempty"`
	// Gob: every response after this Hello is a gob message on the same
	// stream, and the worker reads requests as gob messages once a request
	// says Switch "gob" (its pool set GobEnv). JSON costs more than the
	// call on a warm worker.
	Gob bool `json:"gob,omitempty"`
	// Registry: the worker keeps the registries that requests carried, so
	// a request may leave out one it was told before (RegistryTold).
	Registry bool `json:"registry,omitempty"`
}

// AfterJSON is the stream that follows the last value jdec decoded from
// rest, a stream of JSON lines (json.Encoder's): what jdec read ahead, then
// the rest, without the newline that ended that value.
func AfterJSON(jdec *json.Decoder, rest io.Reader) io.Reader {
	r := bufio.NewReader(io.MultiReader(jdec.Buffered(), rest))
	if b, err := r.Peek(1); err == nil && b[0] == '\n' {
		r.Discard(1)
	}
	return r
}

// GobEnv, set to "1" in a worker's environment with BatchEnv, tells it
// that its pool reads gob responses after a Hello that says Gob.
const GobEnv = "LITHOPS_WORKER_GOB"

// BatchEnv, set to "1" in a worker's environment, tells it that its pool
// reads a Hello and may send several calls in one request. A pool that
// does not set it (an older one) gets no Hello and sends one call at a
// time.
const BatchEnv = "LITHOPS_WORKER_BATCH"

// flushDelay is how long a call's answer may wait for the calls after it
// in its request: their successes are then recorded together, in one batch
// record (protocol.BatchKey), and answered in one write, and a call's
// answer never waits on a slow call after it.
var flushDelay = 500 * time.Microsecond // a variable for tests

// ServePipe serves requests read from in (one JSON object per line, or
// gob messages after a request that switches), one call at a time,
// writing one response per call to out, in order (JSON lines, or gob
// after a Hello that says Gob). It returns when in is closed (the client
// went away) or ctx ends.
//
// With BatchRecords, the successes of a request of several calls are
// recorded in batch records, each holding the calls that ended within
// flushDelay of the first of them, before they are answered; a failure is
// recorded on its own (the successes before it first), as is a success
// that ends alone.
func ServePipe(ctx context.Context, w *Worker, in io.Reader, out io.Writer) error {
	w.ownProcess = true // one call at a time: a job's extra_env can be set
	br := bufio.NewReaderSize(in, 64<<10)
	jdec := json.NewDecoder(br)
	var dec interface{ Decode(any) error } = jdec
	o := &pipeOut{w: w, ctx: ctx, bw: bufio.NewWriter(out)}
	o.enc = json.NewEncoder(o.bw)
	defer o.stop()
	if os.Getenv(BatchEnv) == "1" {
		useGob := os.Getenv(GobEnv) == "1"
		if err := o.send(&PipeResponse{Hello: &PipeHello{Batch: true, Gob: useGob, Registry: true}}, true); err != nil {
			return err
		}
		if useGob {
			o.enc = gob.NewEncoder(o.bw)
		}
	}
	switched := false
	var told toldRegistries
	for ctx.Err() == nil {
		var req PipeRequest
		if err := dec.Decode(&req); err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("worker: read request: %w", err)
		}
		if req.Switch != "" {
			if req.Switch != "gob" || switched || len(req.Invocation.Calls) > 0 {
				return fmt.Errorf("worker: request switches to %q: not understood here", req.Switch)
			}
			dec, switched = gob.NewDecoder(AfterJSON(jdec, br)), true
			continue
		}
		inv := &req.Invocation
		err := told.fill(inv.Job, req.RegistryTold)
		if err == nil {
			err = inv.Validate()
		}
		if err != nil {
			// Every call of the request gets its answer, the error.
			n := max(1, len(inv.Calls))
			for i := range n {
				if err := o.send(&PipeResponse{Error: err.Error()}, i == n-1); err != nil {
					return err
				}
			}
			continue
		}
		for i, c := range inv.Calls {
			x := w.execute(ctx, inv, c)
			last := i == len(inv.Calls)-1
			var err error
			switch {
			case req.Defer:
				err = o.deferred(x, last)
			case req.BatchRecords && len(inv.Calls) > 1 && x.batchable() && x.job.Block == 0:
				// (A job with blocks keeps BatchKey for its block records.)
				err = o.success(inv, x, last)
			default:
				err = o.alone(inv, x, last)
			}
			if err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// toldRegistries are the registries a pipe's requests carried, by digest,
// so that later requests may leave them out (PipeRequest.RegistryTold).
// A pipe's client has one program, so one registry: the few kept bound
// what a confused client can make a worker hold.
type toldRegistries struct {
	digests []string
	regs    []protocol.Registry
}

// maxTold is how many registries a pipe's worker keeps.
const maxTold = 4

// fill puts back the registry left out of job (told), or keeps the one it
// carries.
func (t *toldRegistries) fill(job *protocol.Job, told bool) error {
	switch {
	case told && job == nil:
		return errors.New("the request says its job's registry was told before, but it carries no job")
	case told:
		i := slices.Index(t.digests, job.RegistryDigest)
		if i < 0 {
			return fmt.Errorf("the request leaves out the registry of digest %q, which no earlier request on this pipe carried", job.RegistryDigest)
		}
		job.Registry = t.regs[i]
	case job != nil && job.RegistryDigest != "" && !slices.Contains(t.digests, job.RegistryDigest):
		if len(t.digests) == maxTold {
			t.digests, t.regs = t.digests[1:], t.regs[1:]
		}
		t.digests, t.regs = append(t.digests, job.RegistryDigest), append(t.regs, job.Registry)
	}
	return nil
}

// pipeOut answers a worker's calls in order: successes of a request wait
// in a window for at most flushDelay, then are recorded together and
// answered in one write.
type pipeOut struct {
	w   *Worker
	ctx context.Context

	mu      sync.Mutex
	bw      *bufio.Writer
	enc     interface{ Encode(any) error } // JSON, or gob after a Hello that says so
	inv     *protocol.Invocation           // of the window
	window  []executed                     // successes not recorded yet
	timer   *time.Timer
	pending bool  // the timer will flush
	err     error // the first failed write
}

// send answers with resp: a Hello, or the error of a call not run.
func (o *pipeOut) send(resp *PipeResponse, now bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushLocked()
	o.encode(resp)
	return o.afterLocked(now)
}

// success puts the success x of a call of inv in the window, to be recorded
// with the successes around it.
func (o *pipeOut) success(inv *protocol.Invocation, x executed, now bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inv = inv
	o.window = append(o.window, x)
	return o.afterLocked(now)
}

// alone records x, of a call of inv, on its own, after the window.
func (o *pipeOut) alone(inv *protocol.Invocation, x executed, now bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushLocked()
	o.encode(answerOf(o.w.record(o.ctx, inv, x)))
	return o.afterLocked(now)
}

// deferred answers x unrecorded (PipeRequest.Defer).
func (o *pipeOut) deferred(x executed, now bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushLocked()
	r := &PipeResponse{Status: x.st, Deferred: true}
	if x.jerr != nil {
		r.Error = x.jerr.Error()
	}
	o.encode(r)
	return o.afterLocked(now)
}

// afterLocked flushes at once when now (the request's last call), else
// makes sure the oldest waiting answer goes out within flushDelay.
func (o *pipeOut) afterLocked(now bool) error {
	if now {
		o.flushLocked()
	} else if !o.pending && o.bw.Buffered()+len(o.window) > 0 {
		o.pending = true
		if o.timer == nil {
			o.timer = time.AfterFunc(flushDelay, func() {
				o.mu.Lock()
				defer o.mu.Unlock()
				o.flushLocked()
			})
		} else {
			o.timer.Reset(flushDelay)
		}
	}
	return o.err
}

// answerOf is the answer of a call whose status is st, recorded or not (err).
func answerOf(st *protocol.Status, err error) *PipeResponse {
	r := &PipeResponse{Status: st}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

func (o *pipeOut) encode(r *PipeResponse) {
	if o.err == nil {
		if err := o.enc.Encode(r); err != nil {
			o.err = fmt.Errorf("worker: write response: %w", err)
		}
	}
}

// flushLocked records the window and writes every waiting answer.
func (o *pipeOut) flushLocked() {
	if o.pending {
		o.timer.Stop()
		o.pending = false
	}
	// Every answer before a batch is in the pipe before the batch is
	// recorded: a pool whose worker died looks for the batch that holds
	// the first call it did not get an answer for.
	o.writeLocked()
	switch len(o.window) {
	case 0:
	case 1:
		o.encode(answerOf(o.w.record(o.ctx, o.inv, o.window[0])))
	default:
		recs, errs := o.w.recordBatch(o.ctx, o.inv, o.window)
		for i, st := range recs {
			o.encode(answerOf(st, errs[i]))
		}
	}
	o.window, o.inv = o.window[:0], nil
	o.writeLocked()
}

// writeLocked writes the buffered answers to the pipe.
func (o *pipeOut) writeLocked() {
	if o.err == nil && o.bw.Buffered() > 0 {
		if err := o.bw.Flush(); err != nil {
			o.err = fmt.Errorf("worker: write response: %w", err)
		}
	}
}

func (o *pipeOut) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushLocked()
}
