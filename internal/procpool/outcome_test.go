package procpool

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
)

// TestOutcomeAttemptsOnlyGoUp: whatever status comes back for an attempt
// (one of an earlier attempt, as another execution's final record read by
// a worker that cannot say it is final), the next attempt is after the one
// that ran, and none follows the last: a call runs at most retries+1 times.
func TestOutcomeAttemptsOnlyGoUp(t *testing.T) {
	for _, tc := range []struct {
		name          string
		ran, returned int // attempt that ran, attempt of the status back
		retries       int
		wantNotified  bool
		wantNext      int
	}{
		{name: "its own failure, retries left", ran: 0, returned: 0, retries: 2, wantNext: 1},
		{name: "an earlier attempt's status back", ran: 1, returned: 0, retries: 3, wantNext: 2},
		{name: "an earlier attempt's status back at the last attempt", ran: 2, returned: 0, retries: 2, wantNotified: true},
		{name: "its own failure at the last attempt", ran: 2, returned: 2, retries: 2, wantNotified: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var notified []*protocol.Status
			p := &Pool{opts: Options{Size: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Notify: func(st *protocol.Status) {
				mu.Lock()
				notified = append(notified, st)
				mu.Unlock()
			}}}
			p.cond = sync.NewCond(&p.mu)
			p.slots = 1 // no slot starts: a retry stays queued, to be read here
			c := &call{ctx: context.Background(), retries: tc.retries,
				inv: protocol.Invocation{ExecutorID: "e", JobID: "j", Calls: []protocol.Call{{ID: "00000", Attempt: tc.ran}}}}
			st := protocol.Failed("e", "j", protocol.Call{ID: "00000", Attempt: tc.returned}, protocol.KindUser, "x", "no")
			p.outcome(c, st)
			if tc.wantNotified {
				mu.Lock()
				defer mu.Unlock()
				if len(notified) != 1 || notified[0] != st {
					t.Fatalf("notified %v; want the status back, once", notified)
				}
				return
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				p.mu.Lock()
				queued := p.queue[p.head:]
				p.mu.Unlock()
				if len(queued) == 1 {
					if got := queued[0].Invocation.Calls[0].Attempt; got != tc.wantNext {
						t.Fatalf("next attempt %d, want %d", got, tc.wantNext)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no next attempt queued")
				}
				time.Sleep(20 * time.Millisecond)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(notified) != 0 {
				t.Fatalf("notified %v while retrying", notified)
			}
		})
	}
}
