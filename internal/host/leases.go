// Leases: the host keeps one lease per message it holds, so that the
// client can tell a slow call from a lost one.

package host

import (
	"context"
	"encoding/json"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
)

// heartbeat writes the lease of a delivery's calls (protocol.MessageLeaseKey)
// now, before the first call starts (until a call has a lease, a dead
// instance hides it), and again every Lease/3 until stopped, so that a
// client notices within Lease when this instance vanishes. One object for
// the message's calls, waiting and running: a message of many calls costs
// one write per round, not one per call. stop(true), once every call has
// ended, deletes the lease; stop(false) leaves it to go stale, so that the
// client retries the calls within Lease instead of waiting for the
// platform to deliver the message again.
func (h *Host) heartbeat(ctx context.Context, inv *protocol.Invocation, job *protocol.Job, calls []protocol.Call) (stop func(ended bool)) {
	key := protocol.MessageLeaseKey(inv.ExecutorID, inv.JobID, calls[0])
	body := protocol.Lease{Calls: make([]protocol.LeaseCall, len(calls))}
	for i, c := range calls {
		body.Calls[i] = protocol.LeaseCall{ID: c.ID, Attempt: c.Attempt}
	}
	beat := func() {
		body.At = time.Now().UTC()
		b, _ := json.Marshal(body)
		if err := h.opts.Storage.PutBytes(ctx, inv.Bucket, key, b); err != nil {
			h.opts.Logger.Debug("lease renewal failed", "key", key, "err", err)
		}
	}
	beat()
	done, exited := make(chan struct{}), make(chan struct{})
	interval := max(time.Duration(job.Lease/3*float64(time.Second)), 100*time.Millisecond)
	go func() {
		defer close(exited)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			beat()
		}
	}()
	return func(ended bool) {
		close(done)
		<-exited // no renewal after the delete
		if !ended {
			return
		}
		if err := h.opts.Storage.Delete(context.WithoutCancel(ctx), inv.Bucket, key); err != nil {
			h.opts.Logger.Debug("delete lease", "key", key, "err", err)
		}
	}
}
