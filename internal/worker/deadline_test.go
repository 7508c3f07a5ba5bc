package worker

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLazyDeadline: once used, the context is WithDeadline's: it ends at
// its deadline or with its parent, says why (Err, Cause), and holds the
// parent's values; released before any use it is cancelled, and no timer
// was armed for it.
func TestLazyDeadline(t *testing.T) {
	type key struct{}
	tests := []struct {
		name    string
		run     func(t *testing.T, parent context.Context, cancelParent context.CancelFunc) (context.Context, context.CancelFunc)
		wantErr error
	}{
		{"deadline passes, used before", func(t *testing.T, parent context.Context, _ context.CancelFunc) (context.Context, context.CancelFunc) {
			ctx, cancel := withLazyDeadline(parent, time.Now().Add(30*time.Millisecond))
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
			if d := ctx.(*lazyDeadline); d.ctx == nil {
				t.Error("released, the context was not made")
			}
			return ctx, cancel
		}, context.Canceled},
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

// TestLazyDeadlineUnusedArmsNothing: a context nobody looks at is never
// made, and its Deadline is the one asked for.
func TestLazyDeadlineUnusedArmsNothing(t *testing.T) {
	at := time.Now().Add(time.Hour)
	ctx, cancel := withLazyDeadline(context.Background(), at)
	if d := ctx.(*lazyDeadline); d.ctx != nil {
		t.Fatal("made before any use")
	}
	if d, ok := ctx.Deadline(); !ok || !d.Equal(at) {
		t.Errorf("Deadline = %v, %v; want %v", d, ok, at)
	}
	cancel()
	if ctx.Err() != context.Canceled {
		t.Errorf("Err after release = %v", ctx.Err())
	}
}
