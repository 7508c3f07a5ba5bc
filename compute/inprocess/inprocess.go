// Package inprocess is a compute backend that runs calls as goroutines of
// the calling process: no worker processes, no program upload. It exists
// for users' unit tests and quick experiments; the code path of a call
// (decode input, run, encode result, write status) is the worker's own.
//
// What it cannot do, by construction: kill a call at its timeout (the
// call's ctx is cancelled, which a well-behaved function honours), survive
// os.Exit or a fatal error in a function, or bound memory.
package inprocess

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/lithops-go/lithops/compute"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
)

// Backend runs calls on a bounded pool of goroutines.
type Backend struct {
	w      *worker.Worker
	notify compute.Notify
	sem    chan struct{}

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	stop   context.CancelFunc
	ctx    context.Context
}

// New returns a backend running at most workers calls at once.
func New(w *worker.Worker, workers int, notify compute.Notify) *Backend {
	ctx, cancel := context.WithCancel(context.Background())
	return &Backend{w: w, notify: notify, sem: make(chan struct{}, max(workers, 1)), ctx: ctx, stop: cancel}
}

// Name implements compute.Backend.
func (b *Backend) Name() string { return "inprocess" }

// Invoke implements compute.Backend.
func (b *Backend) Invoke(ctx context.Context, job *protocol.Job, inv protocol.Invocation) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("inprocess: backend closed")
	}
	for _, c := range inv.Calls {
		b.wg.Add(1)
		go b.run(ctx, job, inv, c)
	}
	return nil
}

func (b *Backend) run(ctx context.Context, job *protocol.Job, inv protocol.Invocation, c protocol.Call) {
	defer b.wg.Done()
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return
	case <-b.ctx.Done():
		return
	}
	defer func() { <-b.sem }()
	for {
		if ctx.Err() != nil || b.ctx.Err() != nil {
			return
		}
		if b.notify != nil {
			b.notify(&protocol.Status{Version: protocol.Version, ExecutorID: inv.ExecutorID, JobID: inv.JobID, CallID: c.ID, Attempt: c.Attempt, State: protocol.StateRunning, WorkerID: b.w.ID})
		}
		one := inv
		one.Calls = []protocol.Call{c}
		st, err := b.w.Run(ctx, &one, c)
		if err != nil {
			st.Unrecorded = true
		}
		// Attempts only go up, whatever status came back: at most
		// retries+1 runs (as procpool).
		if ran := c.Attempt; !protocol.Final(st, job.Retries) && ran < job.Retries && !st.Unrecorded {
			c.Attempt = max(st.Attempt, ran) + 1
			t := time.NewTimer(protocol.RetryDelay(st.Attempt)) // the one retry policy
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			case <-b.ctx.Done():
				t.Stop()
			}
			continue
		}
		if b.notify != nil {
			b.notify(st)
		}
		return
	}
}

// Close implements compute.Backend: it cancels calls not started and waits
// for running ones.
func (b *Backend) Close() error {
	// Under mu, so that once Invoke refuses, no call waiting for a slot
	// starts.
	b.mu.Lock()
	b.closed = true
	b.stop()
	b.mu.Unlock()
	b.wg.Wait()
	return nil
}
