// Lease tracking: which lease object vouches for each running call, and
// when each object last changed.
//
// A runtime writes one lease per message it holds (protocol.MessageLeaseKey)
// and rewrites it every Lease/3 while the message's calls wait and run. The
// poller reads a lease's body once, when its key first appears, to learn
// which calls (at which attempts) it vouches for; after that a listing's
// ETags say whether it is alive. A call belongs to the lease naming its
// newest attempt; a call whose lease stopped changing for longer than the
// job's Lease has lost its runtime (Executor.lost).

package lithops

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
)

// leaseObj is what the poller knows of one lease object, under pollMu.
type leaseObj struct {
	etag  string
	seen  time.Time // client clock: when its ETag last changed
	calls []int     // indexes of the calls mapped to it when it was read
}

// leaseInfo is a lease object in a listing.
type leaseInfo struct {
	key  protocol.Key
	info storage.ObjectInfo
}

// checkLeases updates the job's leases from a listing and hands the calls of
// leases that stopped changing to lost. j.pollMu is held.
func (e *Executor) checkLeases(ctx context.Context, j *jobState, listed []leaseInfo, attempts map[int]int) {
	now := time.Now()
	if j.leases == nil {
		j.leases = map[string]*leaseObj{}
	}
	present := make(map[string]bool, len(listed))
	for _, l := range listed {
		present[l.info.Key] = true
		if o := j.leases[l.info.Key]; o != nil {
			if o.etag != l.info.ETag {
				o.etag, o.seen = l.info.ETag, now
			}
			continue
		}
		calls, ok := e.leaseCalls(ctx, j, l)
		if !ok {
			continue // not readable now: the next poll tries again
		}
		o := &leaseObj{etag: l.info.ETag, seen: now}
		for _, lc := range calls {
			idx, err := strconv.Atoi(lc.ID)
			if err != nil || idx < 0 || idx >= len(j.calls) {
				continue
			}
			c := j.calls[idx]
			if c.isDone() || lc.Attempt < c.minLeaseAttempt || (c.leaseKey != "" && lc.Attempt < c.leaseAttempt) {
				continue // an attempt the client has moved past
			}
			c.leaseKey, c.leaseAttempt = l.info.Key, lc.Attempt
			o.calls = append(o.calls, idx)
		}
		j.leases[l.info.Key] = o
	}
	for k := range j.leases {
		if !present[k] {
			delete(j.leases, k) // its calls ended (the runtime deleted it) or were lost
		}
	}
	if j.job.Lease <= 0 {
		return
	}
	lease := time.Duration(j.job.Lease * float64(time.Second))
	for key, o := range j.leases {
		silent := now.Sub(o.seen)
		if silent <= lease {
			continue
		}
		recorded := true
		for _, idx := range o.calls {
			if c := j.calls[idx]; !c.isDone() && c.leaseKey == key {
				if err := e.lost(ctx, j, c, attempts[idx], silent); err != nil {
					recorded = false
				}
			}
		}
		if !recorded {
			continue // kept, so that the next poll tries the calls not recorded lost again
		}
		// Its runtime is gone and its calls are recorded lost: the object
		// goes (best effort; a stale one left behind only costs a listing
		// entry), and so does what the poller knew of it, so that a key
		// written again is read again.
		if err := e.st.Delete(ctx, e.bucket, key); err != nil && !errors.Is(err, storage.ErrNotFound) {
			e.log.Debug("delete stale lease", "key", key, "err", err)
		}
		delete(j.leases, key)
	}
}

// leaseCalls returns the calls a lease vouches for: those its body lists
// for a message lease, the call it is named after for a lease of one call
// (runtimes before message leases). ok is false when the body cannot be
// read now; an unreadable body vouches for nothing.
func (e *Executor) leaseCalls(ctx context.Context, j *jobState, l leaseInfo) (calls []protocol.LeaseCall, ok bool) {
	if !l.key.Message {
		idx, err := strconv.Atoi(l.key.Call)
		if err != nil || idx < 0 || idx >= len(j.calls) {
			return nil, true
		}
		return []protocol.LeaseCall{{ID: l.key.Call, Attempt: j.calls[idx].minLeaseAttempt}}, true
	}
	raw, err := e.st.GetBytes(ctx, e.bucket, l.info.Key)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			e.log.Debug("poll: read lease", "key", l.info.Key, "err", err)
		}
		return nil, false
	}
	lease, err := protocol.ParseLease(raw)
	if err != nil {
		e.log.Warn("poll: unreadable lease; its calls are not watched", "key", l.info.Key, "err", err)
		return nil, true
	}
	return lease.Calls, true
}

// forgetLease drops c's lease for its next attempt, next: only a lease
// naming that attempt or a later one vouches for c again.
func (j *jobState) forgetLease(c *callState, next int) {
	j.pollMu.Lock()
	c.leaseKey = ""
	c.minLeaseAttempt = max(c.minLeaseAttempt, next)
	j.pollMu.Unlock()
}

// dropLeases deletes the job's lease objects and what the poller knew of
// them, before a rerun.
func (e *Executor) dropLeases(ctx context.Context, j *jobState) error {
	infos, err := e.st.List(ctx, j.job.Bucket, protocol.LeasesPrefix(e.id, j.job.JobID))
	if err != nil {
		return err
	}
	keys := make([]string, len(infos))
	for i, o := range infos {
		keys[i] = o.Key
	}
	if len(keys) > 0 {
		if err := e.st.Delete(ctx, j.job.Bucket, keys...); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	j.pollMu.Lock()
	defer j.pollMu.Unlock()
	j.leases = nil
	for _, c := range j.calls {
		c.leaseKey = ""
	}
	return nil
}
