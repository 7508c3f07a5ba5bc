// Blocks: the runtime host records the final statuses of a job with blocks
// (protocol.Job.Block) itself, a block's successes in one record.

package host

import (
	"context"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
	"github.com/lithops-go/lithops/storage"
)

// BlockDelay is the longest a deferred final status waits for the other
// calls of its block in the same delivery before it is recorded: a block of
// quick calls costs one write, and a slow call does not hold the results
// of the quick ones beside it (they are then recorded without it, and it
// gets a record of its own).
const BlockDelay = time.Second

// blocks gathers the deferred final statuses (protocol.Status.Deferred)
// of one delivery's calls and records them block by block: a block's
// successes with worker.RecordBlock, its failures one by one with
// worker.RecordFinal.
type blocks struct {
	st     *storage.Storage
	bucket string
	size   int
	delay  time.Duration
	left   map[string]int // by block key: the delivery's calls not ended
	pend   map[string][]*protocol.Status
	since  map[string]time.Time // when the oldest of pend arrived
}

func newBlocks(st *storage.Storage, inv *protocol.Invocation, size int, calls []protocol.Call) *blocks {
	b := &blocks{st: st, bucket: inv.Bucket, size: size, delay: BlockDelay,
		left: map[string]int{}, pend: map[string][]*protocol.Status{}, since: map[string]time.Time{}}
	for _, c := range calls {
		if k, ok := protocol.BlockKey(inv.ExecutorID, inv.JobID, c.ID, size); ok {
			b.left[k]++
		}
	}
	return b
}

// add takes a deferred status. Without blocks (size 0) every status is
// its own group, due at once, and recorded on its own.
func (b *blocks) add(s *protocol.Status, now time.Time) {
	k, _ := protocol.BlockKey(s.ExecutorID, s.JobID, s.CallID, b.size)
	if len(b.pend[k]) == 0 {
		b.since[k] = now
	}
	b.pend[k] = append(b.pend[k], s)
	b.left[k]--
}

// due removes and returns the groups to record now: the blocks whose
// calls have all ended, and those whose oldest status waited delay.
func (b *blocks) due(now time.Time) [][]*protocol.Status {
	var out [][]*protocol.Status
	for k, sts := range b.pend {
		if len(sts) > 0 && (b.left[k] <= 0 || now.Sub(b.since[k]) >= b.delay) {
			out = append(out, sts)
			delete(b.pend, k)
		}
	}
	return out
}

// next is when the next group falls due by age (zero: none waits).
func (b *blocks) next() time.Time {
	var t time.Time
	for k, sts := range b.pend {
		if len(sts) > 0 && (t.IsZero() || b.since[k].Before(t)) {
			t = b.since[k]
		}
	}
	if t.IsZero() {
		return t
	}
	return t.Add(b.delay)
}

// pending returns the statuses not recorded, marked Unrecorded: what
// giveUp must write when the delivery ends before they are recorded.
func (b *blocks) pending() []*protocol.Status {
	var out []*protocol.Status
	for _, sts := range b.pend {
		for _, s := range sts {
			out = append(out, unrecorded(s))
		}
	}
	return out
}

// unrecorded is a copy of s, deferred or not, marked as the status of a
// call that ended but could not be recorded (what giveUp writes).
func unrecorded(s *protocol.Status) *protocol.Status {
	u := *s
	u.Deferred, u.Unrecorded = false, true
	return &u
}

// record writes one group of a block and returns each call's recorded
// status, or its own marked Unrecorded when it could not be written.
func (b *blocks) record(ctx context.Context, sts []*protocol.Status) []*protocol.Status {
	var ok []*protocol.Status
	out := make([]*protocol.Status, 0, len(sts))
	// Successes first: a failure's own record fences a block not yet
	// written, which would leave every success a record of its own.
	for _, s := range sts {
		if s.State == protocol.StateSuccess && b.size > 0 {
			ok = append(ok, s)
		}
	}
	if len(ok) > 0 {
		recs, errs := worker.RecordBlock(ctx, b.st, b.bucket, b.size, ok)
		for i, rec := range recs {
			if errs[i] != nil {
				rec = unrecorded(ok[i])
			}
			rec.Deferred = false
			out = append(out, rec)
		}
	}
	for _, s := range sts {
		if s.State == protocol.StateSuccess && b.size > 0 {
			continue
		}
		rec, err := worker.RecordFinal(ctx, b.st, b.bucket, b.size, s)
		if err != nil {
			rec = unrecorded(s)
		}
		rec.Deferred = false
		out = append(out, rec)
	}
	return out
}
