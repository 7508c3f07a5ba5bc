package lithops

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Awaitable is anything Wait can wait on: a *Future, a *Futures, or a Group
// of them.
type Awaitable interface {
	calls() []*callState
}

type group []Awaitable

func (g group) calls() []*callState {
	var cs []*callState
	for _, a := range g {
		cs = append(cs, a.calls()...)
	}
	return cs
}

// Group combines futures of different types for Wait.
func Group(items ...Awaitable) Awaitable { return group(items) }

// Progress counts the calls Wait watched.
type Progress struct {
	Total   int
	Done    int // finished, successfully or not
	Failed  int // finished with an error
	Running int
	Pending int // not started
}

// WaitOption configures Wait.
type WaitOption func(*waitConfig)

type waitConfig struct {
	returnWhen int // percent done; -1: any
	timeout    time.Duration
	progress   func(Progress)
}

// When Wait returns, as in Lithops: all calls done, any call done, or right
// away.
var (
	AllCompleted WaitOption = func(w *waitConfig) { w.returnWhen = 100 }
	AnyCompleted WaitOption = func(w *waitConfig) { w.returnWhen = -1 }
	Always       WaitOption = func(w *waitConfig) { w.returnWhen = 0 }
)

// WaitPercent returns when at least pct percent of the calls are done.
func WaitPercent(pct int) WaitOption { return func(w *waitConfig) { w.returnWhen = pct } }

// WaitTimeout bounds the wait; when it expires Wait returns ErrWaitTimeout
// with the progress so far. The calls go on.
func WaitTimeout(d time.Duration) WaitOption { return func(w *waitConfig) { w.timeout = d } }

// WaitProgress calls fn with the progress every time it changes.
func WaitProgress(fn func(Progress)) WaitOption { return func(w *waitConfig) { w.progress = fn } }

// Wait blocks until the futures reach the condition (default AllCompleted),
// the timeout expires (ErrWaitTimeout) or ctx ends, and returns the progress.
// Failed calls count as done; Wait does not fetch results.
func Wait(ctx context.Context, fs Awaitable, opts ...WaitOption) (Progress, error) {
	w := waitConfig{returnWhen: 100}
	for _, o := range opts {
		o(&w)
	}
	if w.returnWhen > 100 {
		return Progress{}, fmt.Errorf("lithops: wait percentage %d over 100", w.returnWhen)
	}
	cs := fs.calls()
	var timeout <-chan time.Time
	if w.timeout > 0 {
		t := time.NewTimer(w.timeout)
		defer t.Stop()
		timeout = t.C
	}
	var last Progress
	for first := true; ; first = false {
		ch := waitersChan()
		p := progressOf(cs)
		if w.progress != nil && (first || p != last) {
			w.progress(p)
		}
		last = p
		if satisfied(p, w.returnWhen) {
			return p, nil
		}
		select {
		case <-ch:
		case <-timeout:
			return progressOf(cs), fmt.Errorf("%w after %v: %d of %d calls done", ErrWaitTimeout, w.timeout, p.Done, p.Total)
		case <-ctx.Done():
			return progressOf(cs), ctx.Err()
		}
	}
}

func satisfied(p Progress, returnWhen int) bool {
	switch {
	case p.Total == 0 || p.Done == p.Total:
		return true
	case returnWhen < 0:
		return p.Done > 0
	}
	return p.Done*100/p.Total >= returnWhen
}

func progressOf(cs []*callState) Progress {
	p := Progress{Total: len(cs)}
	for _, c := range cs {
		switch c.state() {
		case StateSuccess:
			p.Done++
		case StateError:
			p.Done++
			p.Failed++
		case StateRunning:
			p.Running++
		default:
			p.Pending++
		}
	}
	return p
}

// A process-wide broadcast: every change of any call closes the current
// channel. Waiters re-check their own calls; the cost is one closed channel
// per change.
var (
	waitersMu sync.Mutex
	waitersCh = make(chan struct{})
)

func waitersChan() chan struct{} {
	waitersMu.Lock()
	defer waitersMu.Unlock()
	return waitersCh
}

func wakeWaiters() {
	waitersMu.Lock()
	close(waitersCh)
	waitersCh = make(chan struct{})
	waitersMu.Unlock()
}
