package lithops

import (
	"context"
	"sync"
	"testing"
	"time"

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
func (b *handBack) Close() error { return nil }

func (b *handBack) Invoke(ctx context.Context, job *protocol.Job, inv protocol.Invocation) error {
	for _, c := range inv.Calls {
		b.mu.Lock()
		b.calls = append(b.calls, c)
		b.mu.Unlock()
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
	e, err := NewExecutor(ctx, InProcess())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.backend.Close()
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
