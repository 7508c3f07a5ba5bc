package lithops

import (
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
)

func TestTallyFollowsChanges(t *testing.T) {
	now := time.Now()
	a, b, other := newCallState(nil, 0, "a", now), newCallState(nil, 1, "b", now), newCallState(nil, 2, "o", now)
	running := &protocol.Status{State: protocol.StateRunning}
	ok := &protocol.Status{State: protocol.StateSuccess}
	failed := &protocol.Status{State: protocol.StateError}

	tl := newTally([]*callState{a, b, a}) // a twice: it counts twice, as it did
	steps := []struct {
		name   string
		change func()
		signal bool
		want   Progress
	}{
		{"start", func() {}, false, Progress{Total: 3, Pending: 3}},
		{"a runs", func() { a.setRunning(running) }, true, Progress{Total: 3, Running: 2, Pending: 1}},
		{"a call outside the set", func() { other.finish(ok, nil) }, false, Progress{Total: 3, Running: 2, Pending: 1}},
		{"b fails", func() { b.finish(failed, nil) }, true, Progress{Total: 3, Running: 2, Done: 1, Failed: 1}},
		{"a succeeds", func() { a.finish(ok, nil) }, true, Progress{Total: 3, Done: 3, Failed: 1}},
		{"a finishes again: the first outcome stays", func() { a.finish(failed, nil) }, false, Progress{Total: 3, Done: 3, Failed: 1}},
		{"b is rerun", func() { b.reset(now) }, true, Progress{Total: 3, Done: 2, Pending: 1}},
	}
	for _, s := range steps {
		s.change()
		select {
		case <-tl.signal:
			if !s.signal {
				t.Errorf("%s: the waiter was woken", s.name)
			}
		default:
			if s.signal {
				t.Errorf("%s: the waiter was not woken", s.name)
			}
		}
		if got := tl.progress(); got != s.want {
			t.Errorf("%s: progress %+v, want %+v", s.name, got, s.want)
		}
	}
	tl.stop()
	for _, c := range []*callState{a, b, other} {
		if len(c.watchers) != 0 {
			t.Errorf("call %s keeps %d watchers after the wait", c.id, len(c.watchers))
		}
	}
}

// A change on one call costs that call's waiters, not a scan of all calls:
// the tally applies only the queued changes.
func TestTallyAppliesOnlyChanges(t *testing.T) {
	cs := make([]*callState, 10_000)
	for i := range cs {
		cs[i] = newCallState(nil, i, protocol.CallID(i), time.Now())
	}
	tl := newTally(cs)
	defer tl.stop()
	cs[42].finish(&protocol.Status{State: protocol.StateSuccess}, nil)
	tl.mu.Lock()
	queued := len(tl.changed)
	tl.mu.Unlock()
	if queued != 1 {
		t.Fatalf("%d changes queued for one finished call", queued)
	}
	if p := tl.progress(); p.Done != 1 || p.Pending != len(cs)-1 {
		t.Fatalf("progress %+v", p)
	}
}
