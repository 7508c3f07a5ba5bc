package inprocess_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lithops-go/lithops/compute/inprocess"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/memory"
)

// env is a storage, the functions of a worker over it, and what the
// backend notified.
type env struct {
	t     *testing.T
	st    *storage.Storage
	funcs map[string]*worker.Func
	jobs  int

	mu       sync.Mutex
	statuses []protocol.Status
	ends     chan protocol.Status
}

func newEnv(t *testing.T, funcs map[string]func(ctx context.Context, in []byte) ([]byte, error)) *env {
	st := storage.New(memory.New(), "memory", "b")
	st.CreateBucket(context.Background(), "b")
	e := &env{t: t, st: st, funcs: map[string]*worker.Func{}, ends: make(chan protocol.Status, 64)}
	for name, fn := range funcs {
		e.funcs[name] = &worker.Func{Name: name, Signature: "func([]byte) []byte",
			Call: func(ctx context.Context, _ protocol.Codec, in []byte) ([]byte, error) { return fn(ctx, in) }}
	}
	return e
}

func (e *env) notify(st *protocol.Status) {
	e.mu.Lock()
	e.statuses = append(e.statuses, *st)
	e.mu.Unlock()
	if st.State != protocol.StateRunning {
		e.ends <- *st
	}
}

// backend returns a backend of workers goroutines, closed with the test.
func (e *env) backend(workers int) *inprocess.Backend {
	b := inprocess.New(worker.New("inprocess", e.st, e.funcs, nil), workers, e.notify)
	e.t.Cleanup(func() { b.Close() })
	return b
}

// job stores a manifest of n calls of fn with retries and returns it and
// an invocation of its calls, call i with input "i".
func (e *env) job(fn string, n, retries int) (*protocol.Job, protocol.Invocation) {
	e.t.Helper()
	e.jobs++
	reg := protocol.Registry{}
	for name, f := range e.funcs {
		reg[name] = f.Signature
	}
	job := &protocol.Job{Version: protocol.Version, ExecutorID: "e", JobID: fmt.Sprintf("J%03d", e.jobs), Function: fn,
		Signature: e.funcs[fn].Signature, Registry: reg, Calls: n, Inputs: make([]protocol.Range, n), Bucket: "b", Retries: retries}
	raw, _ := json.Marshal(job)
	if err := e.st.PutBytes(context.Background(), "b", protocol.JobKey("e", job.JobID), raw); err != nil {
		e.t.Fatal(err)
	}
	inv := protocol.Invocation{Version: protocol.Version, Bucket: "b", ExecutorID: "e", JobID: job.JobID}
	for i := range n {
		inv.Calls = append(inv.Calls, protocol.Call{ID: protocol.CallID(i), Index: i, HasInput: true, Input: []byte(fmt.Sprint(i))})
	}
	return job, inv
}

// end waits for the next final (or unrecorded) status.
func (e *env) end() protocol.Status {
	e.t.Helper()
	select {
	case s := <-e.ends:
		return s
	case <-time.After(20 * time.Second):
		e.t.Fatal("no call ended within 20 s")
		return protocol.Status{}
	}
}

// TestInvoke: each call runs, under its job's retries, and its running
// statuses and its final one are notified; the final one is in storage.
func TestInvoke(t *testing.T) {
	var flakyRuns sync.Map // call input → *atomic.Int32
	flaky := func(fails int32) func(context.Context, []byte) ([]byte, error) {
		return func(ctx context.Context, in []byte) ([]byte, error) {
			n, _ := flakyRuns.LoadOrStore(fmt.Sprint(fails, "/", worker.CallIDFrom(ctx)), new(atomic.Int32))
			if n.(*atomic.Int32).Add(1) <= fails {
				return nil, errors.New("flaky")
			}
			return in, nil
		}
	}
	funcs := map[string]func(context.Context, []byte) ([]byte, error){
		"echo":    func(_ context.Context, in []byte) ([]byte, error) { return in, nil },
		"fail":    func(context.Context, []byte) ([]byte, error) { return nil, errors.New("always") },
		"panic":   func(context.Context, []byte) ([]byte, error) { panic("boom") },
		"flaky2":  flaky(2),
		"timeout": func(ctx context.Context, _ []byte) ([]byte, error) { <-ctx.Done(); return nil, ctx.Err() },
	}
	tests := []struct {
		name, fn     string
		calls        int
		retries      int
		timeout      float64
		wantState    protocol.State
		wantKind     protocol.ErrorKind
		wantAttempt  int
		wantRunnings int // per call
	}{
		{name: "success", fn: "echo", calls: 3, wantState: protocol.StateSuccess, wantRunnings: 1},
		{name: "retried until it succeeds", fn: "flaky2", calls: 2, retries: 2, wantState: protocol.StateSuccess, wantAttempt: 2, wantRunnings: 3},
		{name: "out of retries", fn: "fail", calls: 1, retries: 1, wantState: protocol.StateError, wantKind: protocol.KindUser, wantAttempt: 1, wantRunnings: 2},
		{name: "no retries", fn: "fail", calls: 1, wantState: protocol.StateError, wantKind: protocol.KindUser, wantRunnings: 1},
		{name: "panic", fn: "panic", calls: 1, wantState: protocol.StateError, wantKind: protocol.KindPanic, wantRunnings: 1},
		{name: "timeout cancels the function's ctx", fn: "timeout", calls: 1, timeout: 0.05, wantState: protocol.StateError, wantKind: protocol.KindTimeout, wantRunnings: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, funcs)
			b := e.backend(2)
			if b.Name() != "inprocess" {
				t.Fatalf("name %q", b.Name())
			}
			job, inv := e.job(tc.fn, tc.calls, tc.retries)
			job.Timeout = tc.timeout
			raw, _ := json.Marshal(job)
			e.st.PutBytes(context.Background(), "b", protocol.JobKey("e", job.JobID), raw)
			if err := b.Invoke(context.Background(), job, inv); err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for range tc.calls {
				s := e.end()
				if seen[s.CallID] {
					t.Fatalf("call %s ended twice", s.CallID)
				}
				seen[s.CallID] = true
				if s.State != tc.wantState || s.Attempt != tc.wantAttempt || (s.Error == nil) != (tc.wantKind == "") || (s.Error != nil && s.Error.Kind != tc.wantKind) {
					t.Fatalf("call %s ended %s attempt %d %+v; want %s attempt %d kind %q", s.CallID, s.State, s.Attempt, s.Error, tc.wantState, tc.wantAttempt, tc.wantKind)
				}
				if s.State == protocol.StateSuccess && string(s.Result) != fmt.Sprint(s.CallID[len(s.CallID)-1:]) {
					t.Fatalf("call %s answered %q", s.CallID, s.Result)
				}
				raw, err := e.st.GetBytes(context.Background(), "b", protocol.StatusKey("e", job.JobID, s.CallID))
				var rec protocol.Status
				if err != nil || json.Unmarshal(raw, &rec) != nil || rec.State != s.State || rec.Attempt != s.Attempt {
					t.Fatalf("stored status of %s: %s, %v", s.CallID, raw, err)
				}
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			runnings := map[string]int{}
			for _, s := range e.statuses {
				if s.State == protocol.StateRunning {
					runnings[s.CallID]++
				}
			}
			for id := range seen {
				if runnings[id] != tc.wantRunnings {
					t.Fatalf("call %s notified running %d times, want %d", id, runnings[id], tc.wantRunnings)
				}
			}
		})
	}
}

// TestConcurrencyBound: no more than workers calls run at once.
func TestConcurrencyBound(t *testing.T) {
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			var running, most atomic.Int32
			e := newEnv(t, map[string]func(context.Context, []byte) ([]byte, error){
				"work": func(_ context.Context, in []byte) ([]byte, error) {
					n := running.Add(1)
					defer running.Add(-1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					time.Sleep(5 * time.Millisecond) // work, so that calls overlap
					return in, nil
				},
			})
			b := e.backend(workers)
			const n = 12
			job, inv := e.job("work", n, 0)
			if err := b.Invoke(context.Background(), job, inv); err != nil {
				t.Fatal(err)
			}
			for range n {
				if s := e.end(); s.State != protocol.StateSuccess {
					t.Fatalf("call %s: %+v", s.CallID, s.Error)
				}
			}
			if m := most.Load(); m > int32(workers) || m < 1 {
				t.Fatalf("%d calls ran at once with %d workers", m, workers)
			}
		})
	}
}

// TestClose: Close waits for the running call, drops the calls not
// started, and Invoke afterwards fails; a call whose ctx ended is not run.
func TestClose(t *testing.T) {
	release := make(chan struct{})
	started := make(chan string, 8)
	e := newEnv(t, map[string]func(context.Context, []byte) ([]byte, error){
		"block": func(ctx context.Context, in []byte) ([]byte, error) {
			started <- string(in)
			<-release
			return in, nil
		},
	})
	b := e.backend(1)
	job, inv := e.job("block", 3, 0)
	if err := b.Invoke(context.Background(), job, inv); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("no call started")
	}
	closed := make(chan struct{})
	go func() {
		b.Close()
		close(closed)
	}()
	// Once Invoke refuses, Close has cancelled the calls not started:
	// only then is the running one released.
	deadline := time.Now().Add(20 * time.Second)
	for b.Invoke(context.Background(), job, protocol.Invocation{}) == nil {
		if time.Now().After(deadline) {
			t.Fatal("Invoke still accepted calls 20 s after Close")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a call was running")
	default:
	}
	close(release)
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return")
	}
	if s := e.end(); s.State != protocol.StateSuccess {
		t.Fatalf("the running call ended %+v", s)
	}
	select {
	case in := <-started:
		t.Fatalf("call %s started after Close", in)
	default:
	}
	if err := b.Invoke(context.Background(), job, inv); err == nil {
		t.Fatal("Invoke after Close accepted")
	}

	// A call whose ctx has ended is not run.
	e2 := newEnv(t, map[string]func(context.Context, []byte) ([]byte, error){
		"block": func(ctx context.Context, in []byte) ([]byte, error) { started <- string(in); return in, nil },
	})
	b2 := e2.backend(1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	job2, inv2 := e2.job("block", 2, 0)
	if err := b2.Invoke(ctx, job2, inv2); err != nil {
		t.Fatal(err)
	}
	b2.Close()
	select {
	case in := <-started:
		t.Fatalf("call %s of a cancelled ctx ran", in)
	default:
	}
	e2.mu.Lock()
	defer e2.mu.Unlock()
	if len(e2.statuses) != 0 {
		t.Fatalf("a cancelled call was notified: %+v", e2.statuses)
	}
}
