// Leases: the host renews each running call's lease so that the client can
// tell a slow call from a lost one.

package host

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"golang.org/x/sync/errgroup"
)

// leaseTarget is a call whose lease the host renews once it runs.
type leaseTarget struct {
	key string

	// mu is held across a renewal, so that end waits for one in flight:
	// after end no renewal of this attempt reaches storage.
	mu    sync.Mutex
	ended bool
}

// end stops the renewals.
func (lt *leaseTarget) end() {
	lt.mu.Lock()
	lt.ended = true
	lt.mu.Unlock()
}

// heartbeat renews the leases of the invocation's running calls every
// Lease/3 until stopped, so that a client notices within Lease when this
// instance vanishes.
func (h *Host) heartbeat(ctx context.Context, inv *protocol.Invocation, job *protocol.Job, calls []protocol.Call) (stop func()) {
	targets := make([]*leaseTarget, len(calls))
	h.mu.Lock()
	for i, c := range calls {
		targets[i] = &leaseTarget{key: protocol.LeaseKey(inv.ExecutorID, inv.JobID, c.ID)}
		k := waiterKey(inv.ExecutorID, inv.JobID, c.ID)
		h.leases[k] = append(h.leases[k], targets[i])
	}
	h.mu.Unlock()
	done := make(chan struct{})
	interval := time.Duration(job.Lease / 3 * float64(time.Second))
	beat := func(lt *leaseTarget) {
		lt.mu.Lock()
		defer lt.mu.Unlock()
		if lt.ended {
			return
		}
		b := fmt.Sprintf(`{"at":%q}`, time.Now().UTC().Format(time.RFC3339Nano))
		if err := h.opts.Storage.PutBytes(ctx, inv.Bucket, lt.key, []byte(b)); err != nil {
			h.opts.Logger.Debug("lease renewal failed", "key", lt.key, "err", err)
		}
	}
	// The leases are written together, 16 at a time: a message of many
	// calls waiting for workers renews them all each round, and one by one
	// a round on a slow store could outlast the lease itself.
	beatAll := func() {
		var g errgroup.Group
		g.SetLimit(16)
		for _, lt := range targets {
			g.Go(func() error { beat(lt); return nil })
		}
		g.Wait()
	}
	// The arrival leases are written before the first call starts: until a
	// call has one, a dead instance hides it.
	beatAll()
	go func() {
		t := time.NewTicker(max(interval, 100*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			beatAll()
		}
	}()
	return func() {
		close(done)
		h.mu.Lock()
		for i, c := range calls {
			k := waiterKey(inv.ExecutorID, inv.JobID, c.ID)
			h.leases[k] = slices.DeleteFunc(h.leases[k], func(lt *leaseTarget) bool { return lt == targets[i] })
			if len(h.leases[k]) == 0 {
				delete(h.leases, k)
			}
		}
		h.mu.Unlock()
	}
}
