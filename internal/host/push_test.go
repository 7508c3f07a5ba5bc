package host

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
)

// recordingPusher keeps the messages pushed.
type recordingPusher struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (p *recordingPusher) Push(ctx context.Context, queue string, msg []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, msg)
	return nil
}

func (p *recordingPusher) batches(t *testing.T) [][]string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out [][]string
	for _, m := range p.msgs {
		var sts []protocol.Status
		if err := json.Unmarshal(m, &sts); err != nil {
			t.Fatalf("a completion message is not a JSON array of statuses: %v: %.80s", err, m)
		}
		if len(m) > maxPushBytes+1<<10 {
			t.Errorf("a completion message of %d bytes, bound %d", len(m), maxPushBytes)
		}
		var ids []string
		for _, s := range sts {
			ids = append(ids, s.CallID)
		}
		out = append(out, ids)
	}
	return out
}

func testStatus(call, pad string) *protocol.Status {
	return &protocol.Status{Version: protocol.Version, ExecutorID: "e", JobID: "M000", CallID: call,
		State: protocol.StateSuccess, HasResult: true, Result: []byte(pad)}
}

// TestPushBatches: statuses that end together share a message; a batch is
// cut at its size bound; close sends the rest before it returns; each
// status is pushed once.
func TestPushBatches(t *testing.T) {
	t.Run("together", func(t *testing.T) {
		rp := &recordingPusher{}
		h := &Host{opts: Options{Pusher: rp, Logger: discard()}}
		p := h.newPushBatch(context.Background(), &protocol.Invocation{ResultQueue: "q"})
		for i := range 10 {
			p.add(testStatus(fmt.Sprintf("%05d", i), ""))
		}
		p.close()
		if b := rp.batches(t); len(b) != 1 || len(b[0]) != 10 {
			t.Fatalf("10 statuses added at once went as %v, want one message", b)
		}
	})
	t.Run("size bound", func(t *testing.T) {
		rp := &recordingPusher{}
		h := &Host{opts: Options{Pusher: rp, Logger: discard()}}
		p := h.newPushBatch(context.Background(), &protocol.Invocation{ResultQueue: "q"})
		pad := strings.Repeat("x", 3000) // base64 in JSON: 4,000 bytes each
		for i := range 20 {
			p.add(testStatus(fmt.Sprintf("%05d", i), pad))
		}
		p.close()
		b := rp.batches(t)
		if len(b) < 3 {
			t.Fatalf("20 statuses of 4 KB went as %d message(s), want several under %d bytes", len(b), maxPushBytes)
		}
		var all []string
		for _, ids := range b {
			all = append(all, ids...)
		}
		if len(all) != 20 {
			t.Fatalf("%d statuses pushed, want each of 20 once: %v", len(all), b)
		}
	})
	t.Run("within PushDelay", func(t *testing.T) {
		rp := &recordingPusher{}
		h := &Host{opts: Options{Pusher: rp, Logger: discard()}}
		p := h.newPushBatch(context.Background(), &protocol.Invocation{ResultQueue: "q"})
		defer p.close()
		p.add(testStatus("00000", ""))
		deadline := time.Now().Add(10 * time.Second)
		for len(rp.batches(t)) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("a lone status was not pushed without close")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	t.Run("no queue", func(t *testing.T) {
		h := &Host{opts: Options{Pusher: &recordingPusher{}, Logger: discard()}}
		p := h.newPushBatch(context.Background(), &protocol.Invocation{})
		p.add(testStatus("00000", "")) // nil batch: a no-op
		p.close()
	})
}
