package worker

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// lazyDeadline is context.WithDeadline(parent, deadline) made when the
// context is first waited on or asked why it ended, not before: a function
// that never does (most quick ones) arms no timer. Arming one from a
// running goroutine wakes an idle thread of the Go runtime to watch it,
// one thread wake a call, about 20 µs of a warm call on two cores.
//
// Done, Err, and Value for any key but the worker's own (the runtime's
// context package finds a context's cancellation through Value) make it;
// from then on it is exactly the context WithDeadline makes, with the same
// deadline, so Done, Err, Value, context.Cause, AfterFunc and derived
// contexts behave as they would. Deadline and the worker's values
// (StorageFrom, CallIDFrom) are answered without it.
type lazyDeadline struct {
	parent   context.Context
	deadline time.Time

	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
}

// withLazyDeadline returns a context that ends at deadline or when parent
// ends, and the function that releases it, as context.WithDeadline does.
func withLazyDeadline(parent context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	c := &lazyDeadline{parent: parent, deadline: deadline}
	return c, c.stop
}

func (c *lazyDeadline) get() context.Context {
	c.once.Do(func() { c.ctx, c.cancel = context.WithDeadline(c.parent, c.deadline) })
	return c.ctx
}

// stop releases the context. One not made yet is made already ended, with
// no timer armed: cancelled, or past its deadline if that has come.
func (c *lazyDeadline) stop() {
	c.once.Do(func() {
		if time.Now().Before(c.deadline) {
			c.ctx, c.cancel = context.WithCancel(c.parent)
		} else {
			c.ctx, c.cancel = context.WithDeadline(c.parent, c.deadline) // ends at once: no timer
		}
	})
	c.cancel()
}

// Deadline implements context.Context: the earlier of the parent's and
// its own.
func (c *lazyDeadline) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

// Done implements context.Context.
func (c *lazyDeadline) Done() <-chan struct{} { return c.get().Done() }

// Err implements context.Context.
func (c *lazyDeadline) Err() error { return c.get().Err() }

// Value implements context.Context.
func (c *lazyDeadline) Value(key any) any {
	if _, ours := key.(ctxKey); ours {
		return c.parent.Value(key)
	}
	return c.get().Value(key)
}

// String names the context as the context package names its own.
func (c *lazyDeadline) String() string {
	return fmt.Sprintf("%v.WithDeadline(%s)", c.parent, c.deadline)
}
