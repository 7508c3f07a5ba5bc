package worker

import (
	"context"
	"sync"
	"time"
)

// lazyDeadline is context.WithDeadline(parent, deadline) made when the
// context is first used, not before: a function that never looks at its
// ctx (most quick ones) arms no timer. Arming one from a running goroutine
// wakes an idle thread of the Go runtime to watch it, one thread wake a
// call, about 20 µs of a warm call on two cores.
//
// Once used, it is exactly the context WithDeadline makes, with the same
// deadline, so Done, Err, Value and context.Cause behave as they would.
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

// stop cancels the context; one not used yet becomes a cancelled one
// without a timer ever armed.
func (c *lazyDeadline) stop() {
	c.once.Do(func() {
		c.ctx, c.cancel = context.WithCancel(c.parent)
	})
	c.cancel()
}

// Deadline implements context.Context.
func (c *lazyDeadline) Deadline() (time.Time, bool) { return c.get().Deadline() }

// Done implements context.Context.
func (c *lazyDeadline) Done() <-chan struct{} { return c.get().Done() }

// Err implements context.Context.
func (c *lazyDeadline) Err() error { return c.get().Err() }

// Value implements context.Context.
func (c *lazyDeadline) Value(key any) any { return c.get().Value(key) }
