package azurefunctions

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/lithops-go/lithops/internal/azure/build"
	"github.com/lithops-go/lithops/internal/azure/naming"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
	"github.com/lithops-go/lithops/storage"
)

// watchPoison fails, for good, the calls of this executor whose invocation
// the platform gave up on: a runtime that crashes on every delivery never
// records anything, and without this its calls would wait for ever. Storage
// stays the source of truth: the failure is recorded there first
// (create-if-absent, so a status already written wins).
func (b *Backend) watchPoison(every time.Duration) {
	defer close(b.poisonDone)
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-b.stop; cancel() }() // Close does not wait for a slow round
	for {
		select {
		case <-b.stop:
			return
		case <-time.After(every):
		}
		b.tierMu.Lock()
		queues := make([]string, 0, len(b.tiers))
		for _, t := range b.tiers {
			queues = append(queues, t.names.Queue)
		}
		b.tierMu.Unlock()
		for _, q := range queues {
			ctx, cancel := context.WithTimeout(base, time.Minute)
			if err := b.drainPoison(ctx, naming.PoisonQueue(q)); err != nil {
				b.opts.Logger.Debug("poison queue", "queue", naming.PoisonQueue(q), "err", err)
			}
			b.checkConsumed(ctx, q)
			cancel()
		}
	}
}

// checkConsumed warns, once per stall, when the oldest message of a
// runtime's queue has waited Options.StalledAfter without a single
// delivery while no completion came back either: the function app is
// stopped, deleted or failing to start, and the calls wait. A backlog
// behind busy instances is not a stall: their completions keep coming.
func (b *Backend) checkConsumed(ctx context.Context, queue string) {
	if time.Since(time.Unix(0, b.heard.Load())) < b.opts.StalledAfter {
		b.stalled.Delete(queue)
		return
	}
	resp, err := b.svc.NewQueueClient(queue).PeekMessages(ctx, &azqueue.PeekMessagesOptions{NumberOfMessages: to.Ptr(int32(1))})
	if err != nil || len(resp.Messages) == 0 {
		b.stalled.Delete(queue)
		return
	}
	m := resp.Messages[0]
	if m.InsertionTime == nil || m.DequeueCount == nil || *m.DequeueCount > 0 {
		b.stalled.Delete(queue)
		return
	}
	waited := time.Since(*m.InsertionTime)
	if waited < b.opts.StalledAfter {
		return
	}
	if _, warned := b.stalled.LoadOrStore(queue, true); !warned {
		b.opts.Logger.Warn(fmt.Sprintf("azure_functions: the oldest invocation in queue %s has waited %v and was never delivered: is the runtime's function app running? (lithops runtime list -b azure_functions)", queue, waited.Round(time.Second)),
			"queue", queue)
	}
}

// drainPoison reads a poison queue in a few batches. Messages of other
// executors are hidden for 2 s only, so that their own watchers, which
// share the queue, keep seeing them; this executor's are hidden for a
// minute while their calls are recorded.
func (b *Backend) drainPoison(ctx context.Context, queue string) error {
	q := b.svc.NewQueueClient(queue)
	for range 8 {
		resp, err := q.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: to.Ptr(int32(32)), VisibilityTimeout: to.Ptr(int32(2))})
		if err != nil {
			return err // includes a poison queue that does not exist yet
		}
		if len(resp.Messages) == 0 {
			return nil
		}
		for _, m := range resp.Messages {
			if m.MessageText == nil || m.MessageID == nil || m.PopReceipt == nil {
				continue
			}
			inv, ok := decodeInvocation(*m.MessageText)
			if !ok || inv.ExecutorID != b.opts.ExecutorID {
				continue
			}
			held, err := q.UpdateMessage(ctx, *m.MessageID, *m.PopReceipt, *m.MessageText, &azqueue.UpdateMessageOptions{VisibilityTimeout: to.Ptr(int32(60))})
			if err != nil || held.PopReceipt == nil {
				continue // gone or taken meanwhile: the next round sees it again if it is still there
			}
			if err := b.failPoisoned(ctx, queue, inv); err != nil {
				return err // the message stays; the next round tries again
			}
			if _, err := q.DeleteMessage(ctx, *m.MessageID, *held.PopReceipt, nil); err != nil {
				b.opts.Logger.Debug("delete poison message", "queue", queue, "err", err)
			}
		}
	}
	return nil
}

// failPoisoned records and reports each call of inv as failed.
func (b *Backend) failPoisoned(ctx context.Context, queue string, inv *protocol.Invocation) error {
	// Whether the job's calls are in blocks decides where their records go.
	block := 0
	raw, err := b.st.GetBytes(ctx, inv.Bucket, protocol.JobKey(inv.ExecutorID, inv.JobID))
	switch {
	case err == nil:
		if job, jerr := protocol.ParseJob(raw); jerr != nil {
			// No runtime could read it either, so it wrote no block record.
			b.opts.Logger.Warn("azure_functions: unreadable manifest of a poisoned message's job", "job", inv.JobID, "err", jerr)
		} else {
			block = job.Block
		}
	case !errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("poisoned message of job %s: read manifest: %w", inv.JobID, err)
	}
	for _, c := range inv.Calls {
		st := protocol.Failed(inv.ExecutorID, inv.JobID, c, protocol.KindHandler, "poison",
			fmt.Sprintf("the runtime failed this call's invocation %d times and the platform moved it to the queue %s; see the function app's logs", build.MaxDequeue, queue))
		rec, err := worker.RecordFinal(ctx, b.st, inv.Bucket, block, st)
		if err != nil {
			return fmt.Errorf("record poisoned call %s: %w", c.ID, err)
		}
		if b.opts.Notify != nil {
			b.opts.Notify(rec)
		}
	}
	return nil
}

// decodeInvocation reads a queue message's text as an invocation.
func decodeInvocation(text string) (*protocol.Invocation, bool) {
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		raw = []byte(text) // a message that was not base64-encoded
	}
	var inv protocol.Invocation
	if json.Unmarshal(raw, &inv) != nil || inv.Validate() != nil || inv.Op != protocol.OpRun {
		return nil, false
	}
	return &inv, true
}
