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
	t := newTally(cs)
	defer t.stop()
	var last Progress
	for first := true; ; first = false {
		p := t.progress()
		if w.progress != nil && (first || p != last) {
			w.progress(p)
		}
		last = p
		if satisfied(p, w.returnWhen) {
			return p, nil
		}
		select {
		case <-t.signal:
		case <-timeout:
			p = t.progress()
			return p, fmt.Errorf("%w after %v: %d of %d calls done", ErrWaitTimeout, w.timeout, p.Done, p.Total)
		case <-ctx.Done():
			return t.progress(), ctx.Err()
		}
	}
}

// A tally keeps the progress of a set of calls up to date from their
// changes: after one scan at the start, a change costs O(1), so a waiter on
// 100,000 calls does not rescan them all whenever one of them moves.
type tally struct {
	signal  chan struct{} // has a value when changed is not empty
	cancels []func()

	mu      sync.Mutex
	changed []*callState
	known   map[*callState]*tallied
	p       Progress
}

type tallied struct {
	state State
	n     int // how many times the call is in the set
}

func newTally(cs []*callState) *tally {
	t := &tally{signal: make(chan struct{}, 1), known: make(map[*callState]*tallied, len(cs)), cancels: make([]func(), 0, len(cs))}
	t.p.Total = len(cs)
	// No lock: known and p belong to the waiting goroutine; note touches
	// only changed.
	for _, c := range cs {
		if k := t.known[c]; k != nil {
			k.n++
			t.p.count(k.state, 1)
			continue
		}
		// Watch before reading the state: a change in between is then
		// both read here and queued, and recounting is idempotent.
		t.cancels = append(t.cancels, c.watch(t.note))
		k := &tallied{state: c.state(), n: 1}
		t.known[c] = k
		t.p.count(k.state, 1)
	}
	return t
}

// note queues a changed call; it runs on the changing goroutine.
func (t *tally) note(c *callState) {
	t.mu.Lock()
	t.changed = append(t.changed, c)
	t.mu.Unlock()
	select {
	case t.signal <- struct{}{}:
	default:
	}
}

// progress applies the queued changes and returns the progress.
func (t *tally) progress() Progress {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.changed {
		k := t.known[c]
		if s := c.state(); s != k.state {
			t.p.count(k.state, -k.n)
			t.p.count(s, k.n)
			k.state = s
		}
	}
	clear(t.changed)
	t.changed = t.changed[:0]
	return t.p
}

func (t *tally) stop() {
	for _, cancel := range t.cancels {
		cancel()
	}
}

// count adds n calls in state s.
func (p *Progress) count(s State, n int) {
	switch s {
	case StateSuccess:
		p.Done += n
	case StateError:
		p.Done += n
		p.Failed += n
	case StateRunning:
		p.Running += n
	default:
		p.Pending += n
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

// progressOf counts the states of cs in one scan.
func progressOf(cs []*callState) Progress {
	p := Progress{Total: len(cs)}
	for _, c := range cs {
		p.count(c.state(), 1)
	}
	return p
}
