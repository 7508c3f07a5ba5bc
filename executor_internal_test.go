package lithops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
)

// handBack is a backend that fails attempt 0 of every call out of memory
// (handing the retry back to the executor, as the Azure runtime does) and
// runs later attempts after a moment, but only if the Invoke context is
// still alive then, as the localhost backend does.
type handBack struct {
	notify func(*protocol.Status)
	mu     sync.Mutex
	calls  []protocol.Call
}

func (b *handBack) Name() string { return "handback" }

// invoked notes that c was invoked.
func (b *handBack) invoked(c protocol.Call) {
	b.mu.Lock()
	b.calls = append(b.calls, c)
	b.mu.Unlock()
}

// fakeExecutor returns an executor whose backend the test sets (closed
// with the test).
func fakeExecutor(ctx context.Context, t *testing.T) *Executor {
	t.Helper()
	e, err := NewExecutor(ctx, InProcess())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	e.backend.Close()
	return e
}
func (b *handBack) Close() error { return nil }

func (b *handBack) Invoke(ctx context.Context, job *protocol.Job, inv protocol.Invocation) error {
	for _, c := range inv.Calls {
		b.invoked(c)
		st := &protocol.Status{Version: protocol.Version, ExecutorID: inv.ExecutorID, JobID: inv.JobID, CallID: c.ID, Attempt: c.Attempt, End: time.Now()}
		go func() {
			time.Sleep(20 * time.Millisecond)
			if ctx.Err() != nil {
				return // a cancelled task is skipped
			}
			if c.Attempt == 0 {
				st.State = protocol.StateError
				st.Error = &protocol.ErrorRecord{Kind: protocol.KindOOM, Type: "oom", Message: "over the limit"}
			} else {
				raw, _ := protocol.Gob.Marshal(envelope[int]{V: 42})
				st.State, st.Result, st.HasResult = protocol.StateSuccess, raw, true
			}
			b.notify(st)
		}()
	}
	return nil
}

// TestHandedBackAttemptRuns: an attempt the backend hands back is invoked by
// the executor with a context that outlives the invoking goroutine, so the
// next attempt runs and the call finishes (it once hung on localhost).
func TestHandedBackAttemptRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := fakeExecutor(ctx, t)
	fake := &handBack{notify: e.notify}
	e.backend = fake
	f, err := CallAsync(ctx, e, echoInt, 1, WithRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(ctx); err != nil || v != 42 {
		t.Fatalf("got %v, %v; want the second attempt's 42", v, err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.calls) != 2 || fake.calls[1].Attempt != 1 {
		t.Fatalf("invocations %+v, want attempts 0 and 1", fake.calls)
	}
}

var echoInt = Func("internal_echo_int", func(ctx context.Context, x int) (int, error) { return x, nil })

// A new executor whose id has records in storage (a kept or crashed
// executor of the same id) draws another id instead of reading those
// records as its own (issue 9, repro 4).
func TestExecutorIDCollision(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := config.Default()
	cfg.Localhost.StorageRoot = t.TempDir()
	if len(sessionID) != 16 {
		t.Fatalf("session id %q: want 64 random bits", sessionID)
	}
	next := fmt.Sprintf("%s-%d", sessionID, executorCount.Load())
	st, err := OpenStorage(ctx, WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// An old job M000 of that id, finished with other answers.
	old := &protocol.Status{Version: protocol.Version, ExecutorID: next, JobID: "M000", CallID: protocol.CallID(0), State: protocol.StateSuccess}
	raw, _ := protocol.Gob.Marshal(envelope[int]{V: 3})
	old.Result, old.HasResult = raw, true
	b, _ := json.Marshal(old)
	if err := st.PutBytes(ctx, st.Bucket(), protocol.StatusKey(next, "M000", protocol.CallID(0)), b); err != nil {
		t.Fatal(err)
	}
	e, err := NewExecutor(ctx, WithConfig(cfg), WithBackend("inprocess"))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.ID() == next {
		t.Fatalf("executor took the id %s whose records exist", next)
	}
	fs, err := Map(ctx, e, echoInt, []int{303})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fs.Results(ctx); err != nil || got[0] != 303 {
		t.Fatalf("results %v, %v: want [303]", got, err)
	}
}

// failInvoke is a backend whose Invoke fails.
type failInvoke struct{}

func (failInvoke) Name() string { return "failinvoke" }
func (failInvoke) Close() error { return nil }
func (failInvoke) Invoke(context.Context, *protocol.Job, protocol.Invocation) error {
	return errors.New("queue unavailable")
}

// A Rerun that cannot invoke ends the calls it reset with the reason, so
// futures and Wait do not hang (issue 9, point 5).
func TestFailedRerunEndsCalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := config.Default()
	cfg.Localhost.StorageRoot = t.TempDir()
	e, err := NewExecutor(ctx, WithConfig(cfg), InProcess())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	f, err := CallAsync(ctx, e, failOnce, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Result(ctx); !errors.Is(err, ErrUser) {
		t.Fatalf("first run: %v", err)
	}
	e.backend.Close()
	e.backend = failInvoke{}
	if _, err := e.Rerun(ctx, f.JobID()); err == nil || !strings.Contains(err.Error(), "queue unavailable") {
		t.Fatalf("rerun: %v", err)
	}
	again, _ := JobFutures[int](e, f.JobID())
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if _, err := again.At(0).Result(wctx); err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "queue unavailable") {
		t.Fatalf("call after a failed rerun: %v (want the rerun's failure, not a hang)", err)
	}
}

var failOnce = Func("internal_fail_once", func(ctx context.Context, x int) (int, error) { return 0, errors.New("fails") })

// dupHandBack hands attempt 0 back twice (a redelivered message), pushes an
// invalid hand-back, and succeeds at attempt 1.
type dupHandBack struct {
	handBack
}

func (b *dupHandBack) Invoke(ctx context.Context, job *protocol.Job, inv protocol.Invocation) error {
	for _, c := range inv.Calls {
		b.invoked(c)
		st := &protocol.Status{Version: protocol.Version, ExecutorID: inv.ExecutorID, JobID: inv.JobID, CallID: c.ID, Attempt: c.Attempt, End: time.Now()}
		if c.Attempt == 0 {
			st.State = protocol.StateError
			st.Error = &protocol.ErrorRecord{Kind: protocol.KindOOM, Type: "oom", Message: "over the limit"}
			bad := *st
			bad.Version = 99 // not a status this client reads
			bad.Attempt = 5
			go func() {
				b.notify(&bad)
				b.notify(st)
				b.notify(st) // the same hand-back again
			}()
			continue
		}
		raw, _ := protocol.Gob.Marshal(envelope[int]{V: 42})
		st.State, st.Result, st.HasResult = protocol.StateSuccess, raw, true
		go func() {
			time.Sleep(50 * time.Millisecond)
			b.notify(st)
		}()
	}
	return nil
}

// A hand-back delivered twice starts the next attempt once; an invalid one
// starts nothing (issue 9, point 12).
func TestHandBackOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := fakeExecutor(ctx, t)
	fake := &dupHandBack{handBack{notify: e.notify}}
	e.backend = fake
	f, err := CallAsync(ctx, e, echoInt, 1, WithRetries(3))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(ctx); err != nil || v != 42 {
		t.Fatalf("got %v, %v", v, err)
	}
	// A second escalation, had the duplicate started one, would invoke
	// after protocol.RetryDelay(0), at most 150 ms: wait well past that.
	time.Sleep(500 * time.Millisecond)
	fake.mu.Lock()
	defer fake.mu.Unlock()
	var attempts []int
	for _, c := range fake.calls {
		attempts = append(attempts, c.Attempt)
	}
	if fmt.Sprint(attempts) != "[0 1]" {
		t.Fatalf("attempts invoked %v, want [0 1]", attempts)
	}
}

// settledBackend pushes, for each call, a handler error at attempt 0 that
// is the call's final record (a runtime host gave up on its delivery):
// Settled, as the host pushes it.
type settledBackend struct {
	handBack
}

func (b *settledBackend) Invoke(ctx context.Context, job *protocol.Job, inv protocol.Invocation) error {
	for _, c := range inv.Calls {
		b.invoked(c)
		st := protocol.Failed(inv.ExecutorID, inv.JobID, c, protocol.KindHandler, "delivery", "the host gave up")
		st.Settled = true
		raw, _ := json.Marshal(st) // as a completion message carries it
		var pushed protocol.Status
		json.Unmarshal(raw, &pushed)
		go b.notify(&pushed)
	}
	return nil
}

// TestSettledFailureEndsTheCall: a failure pushed as the call's final
// record ends the call even with retries left; it is not taken for an
// attempt handed back.
func TestSettledFailureEndsTheCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := fakeExecutor(ctx, t)
	fake := &settledBackend{handBack{notify: e.notify}}
	e.backend = fake
	f, err := CallAsync(ctx, e, echoInt, 1, WithRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Result(ctx); err == nil || !strings.Contains(err.Error(), "the host gave up") {
		t.Fatalf("Result: %v; want the host's handler error", err)
	}
	time.Sleep(300 * time.Millisecond) // a retry would have been invoked by now
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.calls) != 1 {
		t.Fatalf("invocations %+v; want the first only", fake.calls)
	}
}
