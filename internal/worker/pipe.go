package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
)

// PipeRequest is what a resident localhost worker reads: an invocation of
// one call, or (once the worker said Hello) of several, run one after the
// other.
type PipeRequest struct {
	Invocation protocol.Invocation `json:"inv"`
}

// PipeResponse answers one call of a PipeRequest, in the order of its
// calls; a worker that understands batches first writes one with Hello.
type PipeResponse struct {
	Status *protocol.Status `json:"status,omitempty"`
	// Error is set when the status could not be recorded in storage.
	Error string `json:"error,omitempty"`
	// Hello, in a worker's first line only, says what it understands; it
	// answers no call.
	Hello *PipeHello `json:"hello,omitempty"`
}

// PipeHello is what a worker tells its pool before any answer.
type PipeHello struct {
	// Batch: the worker runs every call of a request, in order, with one
	// response each.
	Batch bool `json:"batch,omitempty"`
}

// BatchEnv, set to "1" in a worker's environment, tells it that its pool
// reads a Hello and may send several calls in one request. A pool that
// does not set it (an older one) gets no Hello and sends one call at a
// time.
const BatchEnv = "LITHOPS_WORKER_BATCH"

// flushDelay is how long an answer may wait in the worker's buffer for the
// answers of the calls after it: a batch of quick calls is answered in one
// write, and a call's answer never waits on a slow call after it.
const flushDelay = 500 * time.Microsecond

// ServePipe serves requests read from in (one JSON object per line), one
// call at a time, writing one response per call to out. It returns when in
// is closed (the client went away) or ctx ends.
func ServePipe(ctx context.Context, w *Worker, in io.Reader, out io.Writer) error {
	w.ownProcess = true // one call at a time: a job's extra_env can be set
	dec := json.NewDecoder(bufio.NewReaderSize(in, 64<<10))
	o := &pipeOut{bw: bufio.NewWriter(out)}
	o.enc = json.NewEncoder(o.bw)
	defer o.stop()
	if os.Getenv(BatchEnv) == "1" {
		if err := o.send(&PipeResponse{Hello: &PipeHello{Batch: true}}, true); err != nil {
			return err
		}
	}
	for ctx.Err() == nil {
		var req PipeRequest
		if err := dec.Decode(&req); err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("worker: read request: %w", err)
		}
		inv := &req.Invocation
		if err := inv.Validate(); err != nil {
			// Every call of the request gets its answer, the error.
			for i := range max(1, len(inv.Calls)) {
				if err := o.send(&PipeResponse{Error: err.Error()}, i == max(1, len(inv.Calls))-1); err != nil {
					return err
				}
			}
			continue
		}
		for i, c := range inv.Calls {
			var resp PipeResponse
			st, err := w.Run(ctx, inv, c)
			resp.Status = st
			if err != nil {
				resp.Error = err.Error()
			}
			if err := o.send(&resp, i == len(inv.Calls)-1); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// pipeOut writes a worker's answers: the last of a request at once, the
// others within flushDelay.
type pipeOut struct {
	mu    sync.Mutex
	bw    *bufio.Writer
	enc   *json.Encoder
	timer *time.Timer
	// pending: answers wait in bw and the timer will flush them.
	pending bool
	err     error // the first failed write
}

func (o *pipeOut) send(r *PipeResponse, now bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	if err := o.enc.Encode(r); err != nil {
		o.err = fmt.Errorf("worker: write response: %w", err)
		return o.err
	}
	if now {
		o.flushLocked()
	} else if !o.pending {
		// The oldest buffered answer sets the deadline.
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

func (o *pipeOut) flushLocked() {
	if o.pending {
		o.timer.Stop()
		o.pending = false
	}
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
