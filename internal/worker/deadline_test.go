package worker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestLazyDeadline: once used, the context is WithDeadline's: it ends at
// its deadline or with its parent, says why (Err, Cause), and holds the
// parent's values; released before any use it has ended too.
func TestLazyDeadline(t *testing.T) {
	type key struct{}
	tests := []struct {
		name    string
		run     func(t *testing.T, parent context.Context, cancelParent context.CancelFunc) (context.Context, context.CancelFunc)
		wantErr error
	}{
		{"deadline passes, used before", func(t *testing.T, parent context.Context, _ context.CancelFunc) (context.Context, context.CancelFunc) {
			ctx, cancel := withLazyDeadline(parent, time.Now().Add(300*time.Millisecond))
			if ctx.Err() != nil {
				t.Errorf("Err before the deadline = %v", ctx.Err())
			}
			<-ctx.Done()
			return ctx, cancel
		}, context.DeadlineExceeded},
		{"deadline passed, first used after", func(t *testing.T, parent context.Context, _ context.CancelFunc) (context.Context, context.CancelFunc) {
			ctx, cancel := withLazyDeadline(parent, time.Now().Add(10*time.Millisecond))
			time.Sleep(20 * time.Millisecond)
			return ctx, cancel
		}, context.DeadlineExceeded},
		{"parent cancelled, used before", func(t *testing.T, parent context.Context, cancelParent context.CancelFunc) (context.Context, context.CancelFunc) {
			ctx, cancel := withLazyDeadline(parent, time.Now().Add(time.Hour))
			_ = ctx.Done()
			cancelParent()
			return ctx, cancel
		}, context.Canceled},
		{"parent cancelled, first used after", func(t *testing.T, parent context.Context, cancelParent context.CancelFunc) (context.Context, context.CancelFunc) {
			ctx, cancel := withLazyDeadline(parent, time.Now().Add(time.Hour))
			cancelParent()
			return ctx, cancel
		}, context.Canceled},
		{"released before any use", func(t *testing.T, parent context.Context, _ context.CancelFunc) (context.Context, context.CancelFunc) {
			ctx, cancel := withLazyDeadline(parent, time.Now().Add(time.Hour))
			cancel()
			// Made without a deadline, so without a timer.
			if _, ok := ctx.(*lazyDeadline).ctx.Deadline(); ok {
				t.Error("released before use, the context was made with its deadline (a timer)")
			}
			return ctx, cancel
		}, context.Canceled},
		{"released unused after its deadline", func(t *testing.T, parent context.Context, _ context.CancelFunc) (context.Context, context.CancelFunc) {
			ctx, cancel := withLazyDeadline(parent, time.Now().Add(-time.Millisecond))
			cancel()
			return ctx, cancel
		}, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
			defer cancelParent()
			ctx, cancel := tc.run(t, parent, cancelParent)
			defer cancel()
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("Done not closed")
			}
			if err := ctx.Err(); !errors.Is(err, tc.wantErr) {
				t.Errorf("Err = %v, want %v", err, tc.wantErr)
			}
			if err := context.Cause(ctx); !errors.Is(err, tc.wantErr) {
				t.Errorf("Cause = %v, want %v", err, tc.wantErr)
			}
			if v := ctx.Value(key{}); v != "v" {
				t.Errorf("Value = %v, want the parent's", v)
			}
		})
	}
}

// TestLazyDeadlineNotMade: its Deadline and the worker's own values do not
// make the context (no timer); its Deadline is the earlier of its own and
// its parent's.
func TestLazyDeadlineNotMade(t *testing.T) {
	at := time.Now().Add(time.Hour)
	ctx, cancel := withLazyDeadline(WithCall(context.Background(), nil, "00007"), at)
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || !d.Equal(at) {
		t.Errorf("Deadline = %v, %v; want %v", d, ok, at)
	}
	if id := CallIDFrom(ctx); id != "00007" {
		t.Errorf("CallIDFrom = %q", id)
	}
	if ctx.(*lazyDeadline).ctx != nil {
		t.Error("made by Deadline or the worker's values")
	}
	earlier := time.Now().Add(time.Minute)
	parent, cancelParent := context.WithDeadline(context.Background(), earlier)
	defer cancelParent()
	ctx, cancel = withLazyDeadline(parent, at)
	defer cancel()
	if d, _ := ctx.Deadline(); !d.Equal(earlier) {
		t.Errorf("Deadline = %v, want the parent's earlier %v", d, earlier)
	}
}

// TestLazyDeadlineShared: first used from several goroutines at once, and
// derived from, it is one context: every waiter, child and AfterFunc sees
// the same end.
func TestLazyDeadlineShared(t *testing.T) {
	ctx, cancel := withLazyDeadline(context.Background(), time.Now().Add(50*time.Millisecond))
	defer cancel()
	child, cancelChild := context.WithCancel(ctx)
	defer cancelChild()
	fired := make(chan struct{})
	context.AfterFunc(ctx, func() { close(fired) })
	var wg sync.WaitGroup
	dones := make([]<-chan struct{}, 8)
	for i := range dones {
		wg.Add(1)
		go func() { defer wg.Done(); dones[i] = ctx.Done() }()
	}
	wg.Wait()
	for i := range dones {
		if dones[i] != dones[0] {
			t.Fatal("Done differs between goroutines")
		}
	}
	for _, c := range []<-chan struct{}{dones[0], child.Done(), fired} {
		select {
		case <-c:
		case <-time.After(5 * time.Second):
			t.Fatal("not ended at the deadline")
		}
	}
	if err := context.Cause(child); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("child's Cause = %v", err)
	}
}
