// Completion pushes: the statuses of one invocation's calls reach the
// executor's completion queue in batches, one message per batch.

package host

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
)

// Bounds of a completion message (see pushBatch).
const (
	// PushDelay is the longest a status waits for others of its
	// invocation to share its completion message, while some still run:
	// the calls of a message end one after another, each some tens of
	// milliseconds after the last on a loaded instance. The statuses left
	// when the last call ends go at once, so a lone call is not delayed.
	PushDelay = 200 * time.Millisecond
	// maxPushBytes bounds the JSON of one completion message. A queue
	// message holds 64 KiB; the SDK sends the text XML-escaped, and every
	// quote of the JSON may count as several characters there.
	maxPushBytes = 24 << 10
	// maxPushStatuses bounds the statuses of one completion message.
	maxPushStatuses = 256
)

// pushBatch gathers the statuses one run reports and pushes them as JSON
// arrays: when maxPushStatuses or maxPushBytes are reached, PushDelay
// after the first status of a batch, and at close. Pushes are best effort
// (storage is the source of truth): a failed one is only logged.
type pushBatch struct {
	h     *Host
	ctx   context.Context
	queue string

	mu      sync.Mutex
	pending []json.RawMessage
	size    int
	timer   *time.Timer
	sending sync.WaitGroup
}

// newPushBatch returns the batch of inv's pushes, or nil when inv names no
// completion queue or the host has no Pusher (add and close accept nil).
func (h *Host) newPushBatch(ctx context.Context, inv *protocol.Invocation) *pushBatch {
	if inv.ResultQueue == "" || h.opts.Pusher == nil {
		return nil
	}
	return &pushBatch{h: h, ctx: context.WithoutCancel(ctx), queue: inv.ResultQueue}
}

// add queues s for the next message.
func (p *pushBatch) add(s *protocol.Status) {
	if p == nil {
		return
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return
	}
	p.mu.Lock()
	if len(p.pending) > 0 && p.size+len(raw)+1 > maxPushBytes {
		p.flushLocked() // s would not fit: what is there goes first
	}
	p.pending = append(p.pending, raw)
	p.size += len(raw) + 1
	switch {
	case len(p.pending) >= maxPushStatuses || p.size >= maxPushBytes:
		p.flushLocked()
	case p.timer == nil:
		p.timer = time.AfterFunc(PushDelay, func() {
			p.mu.Lock()
			p.timer = nil
			p.flushLocked()
			p.mu.Unlock()
		})
	}
	p.mu.Unlock()
}

// flushLocked sends what is pending, in the background; p.mu is held.
func (p *pushBatch) flushLocked() {
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	if len(p.pending) == 0 {
		return
	}
	msg := make([]byte, 0, p.size+1)
	msg = append(msg, '[')
	for i, raw := range p.pending {
		if i > 0 {
			msg = append(msg, ',')
		}
		msg = append(msg, raw...)
	}
	msg = append(msg, ']')
	n := len(p.pending)
	p.pending, p.size = nil, 0
	p.sending.Add(1)
	go func() {
		defer p.sending.Done()
		if err := p.h.opts.Pusher.Push(p.ctx, p.queue, msg); err != nil {
			p.h.opts.Logger.Debug("push statuses", "queue", p.queue, "statuses", n, "err", err)
		}
	}()
}

// close sends what is pending and waits until every push has been sent
// (or failed): a run reports before it answers.
func (p *pushBatch) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.flushLocked()
	p.mu.Unlock()
	p.sending.Wait()
}
