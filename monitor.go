// The monitor: statuses pushed by the backend (notify), the storage poll that
// is the safety net, lease-based loss detection and the client's retries.

package lithops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
)

// notify receives statuses pushed by the backend.
func (e *Executor) notify(st *protocol.Status) {
	e.mu.Lock()
	js, _ := e.lookup(st.JobID)
	e.mu.Unlock()
	if js == nil || st.ExecutorID != e.id {
		return
	}
	idx, err := strconv.Atoi(st.CallID)
	if err != nil || idx < 0 || idx >= len(js.calls) {
		return
	}
	js.lastPush.Store(time.Now().UnixNano())
	c := js.calls[idx]
	if err := st.Validate(); err != nil {
		e.log.Warn("invalid status pushed by backend", "job", st.JobID, "call", st.CallID, "err", err)
		return
	}
	if st.State == protocol.StateRunning {
		c.setRunning(st)
		return
	}
	if !protocol.Final(st, js.job.Retries) {
		// The runtime handed an attempt back: the next one is ours to run.
		e.escalate(js, c, st)
		return
	}
	c.finish(st, nil)
}

// poll is the storage safety net: it reads the statuses of calls that the
// backend has not reported.
func (e *Executor) poll() {
	defer close(e.pollDone)
	interval := time.Duration(e.cfg.Lithops.MonitoringInterval * float64(time.Second))
	if interval < 50*time.Millisecond {
		interval = 50 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-e.stopPoll:
			return
		case <-t.C:
		}
		e.mu.Lock()
		var pending []*jobState
		for _, j := range e.running() {
			if j.remaining.Load() > 0 && e.pollDue(j, interval) {
				pending = append(pending, j)
			}
		}
		e.mu.Unlock()
		for _, j := range pending {
			j.lastPoll.Store(time.Now().UnixNano())
			e.pollJob(j)
		}
	}
}

// memoryEscalator is a backend with larger memory sizes to retry on.
type memoryEscalator interface {
	NextMemory(mb int) (int, bool)
}

// escalate runs the next attempt of a call whose attempt ran out of memory,
// on the next memory size the backend offers (the same size if none).
func (e *Executor) escalate(js *jobState, c *callState, st *protocol.Status) {
	if c.isDone() {
		return
	}
	c.mu.Lock()
	if st.Attempt+1 <= c.handedBack {
		c.mu.Unlock()
		return // this attempt was handed back before (a redelivery)
	}
	c.handedBack = st.Attempt + 1
	mem := c.memory
	if mem == 0 {
		mem = js.job.Memory
	}
	if esc, ok := e.backend.(memoryEscalator); ok && st.Error != nil && st.Error.Kind == protocol.KindOOM && js.job.EscalateMemory {
		if next, ok := esc.NextMemory(mem); ok {
			mem = next
		}
	}
	c.memory = mem
	c.mu.Unlock()
	job := *js.job
	job.Memory = mem
	inv := protocol.Invocation{Version: protocol.Version, Bucket: job.Bucket, ExecutorID: e.id, JobID: job.JobID,
		Calls: []protocol.Call{{ID: c.id, Index: c.index, Attempt: st.Attempt + 1}}}
	e.log.Info("retrying call with more memory", "job", job.JobID, "call", c.id, "attempt", st.Attempt+1, "memory_mb", mem)
	go func() {
		// The runtime deleted the attempt's lease before handing it back; a
		// lease seen before belongs to the old attempt. (Here, not in the
		// caller: the poller may hold the job's lock for a while.)
		js.forgetLease(c, st.Attempt+1)
		js.invokeAgain(c, &job, inv, fmt.Sprintf("escalate to %d MB", mem))
	}()
}

// pollDue says whether a job should be listed now. While the backend's
// pushes flow, listing a big job every interval only loads storage, so the
// poller backs off; it still lists often enough to catch a missed lease, and
// at every interval once pushes stop.
func (e *Executor) pollDue(j *jobState, interval time.Duration) bool {
	now := time.Now().UnixNano()
	sincePush := time.Duration(now - j.lastPush.Load())
	sincePoll := time.Duration(now - j.lastPoll.Load())
	if sincePush >= 3*interval {
		return true
	}
	slow := 10 * interval
	if j.job.Lease > 0 {
		slow = min(slow, time.Duration(j.job.Lease*float64(time.Second))/2)
	}
	return sincePoll >= slow
}

func (e *Executor) pollJob(j *jobState) {
	j.pollMu.Lock()
	defer j.pollMu.Unlock()
	// Bounded by the executor's life: Close does not wait for a poll that
	// a storage outage holds up.
	ctx, cancel := context.WithTimeout(e.life, 30*time.Second)
	defer cancel()
	prefix := protocol.JobPrefix(e.id, j.job.JobID)
	infos, err := e.st.List(ctx, e.bucket, prefix)
	if err != nil {
		e.log.Debug("poll: list failed", "job", j.job.JobID, "err", err)
		return
	}
	var leases []leaseInfo
	var batches []batchRef
	attempts := map[int]int{}
	for _, o := range infos {
		k, ok := protocol.ParseKey(o.Key)
		if !ok || k.Executor != e.id || k.Job != j.job.JobID {
			continue
		}
		idx, err := strconv.Atoi(k.Call)
		if err != nil || idx < 0 || idx >= len(j.calls) {
			continue
		}
		switch k.Kind {
		case protocol.KindLease:
			leases = append(leases, leaseInfo{k, o})
			continue
		case protocol.KindAttempt:
			attempts[idx]++
			continue
		case protocol.KindStatus:
		default:
			continue
		}
		if k.Batch {
			// After the calls' own records: a call re-run after its batch
			// record proved unreadable has one.
			batches = append(batches, batchRef{k, o.Key})
			continue
		}
		c := j.calls[idx]
		if c.isDone() {
			continue
		}
		raw, err := e.st.GetBytes(ctx, e.bucket, o.Key)
		if err != nil {
			continue
		}
		st, err := protocol.ParseStatus(raw)
		if err == nil && st.State == protocol.StateRunning {
			err = errors.New("a final status record says running")
		}
		if err == nil && (st.CallID != c.id || st.JobID != j.job.JobID) {
			err = fmt.Errorf("the record is of call %s/%s", st.JobID, st.CallID)
		}
		if err != nil {
			// A record that cannot be read stays unreadable: the call ends
			// with a named failure (Rerun replaces the record) instead of
			// waiting for ever.
			e.log.Warn("poll: unreadable status", "key", o.Key, "err", err)
			c.finish(nil, fmt.Errorf("%w: %s://%s/%s: %v", ErrCorrupt, e.st.Backend(), e.bucket, o.Key, err))
			continue
		}
		c.finish(st, nil)
	}
	for _, b := range batches {
		e.pollBatch(ctx, j, b.k, b.key)
	}
	e.checkLeases(ctx, j, leases, attempts)
}

// batchRef is a batch record met in a listing.
type batchRef struct {
	k   protocol.Key
	key string
}

// pollBatch finishes the calls of a batch record (protocol.BatchKey) that
// have not finished yet. A record that cannot be decoded ends its first
// call with a named failure, once, as an unreadable status record does; the
// others wait, as calls never recorded do, for a Rerun.
func (e *Executor) pollBatch(ctx context.Context, j *jobState, k protocol.Key, key string) {
	if j.batchesRead[key] {
		return
	}
	if j.batchesRead == nil {
		j.batchesRead = map[string]bool{}
	}
	first, _ := strconv.Atoi(k.Call) // a call of the job: pollJob checked
	if b := j.job.Block; b > 0 {
		// A block record (or fence): nothing to read once every call of
		// the block has finished.
		if !slices.ContainsFunc(j.calls[first:min(first+b, len(j.calls))], func(c *callState) bool { return !c.isDone() }) {
			j.batchesRead[key] = true
			return
		}
	} else if c := j.calls[first]; c.isDone() && c.state() == StateSuccess {
		// The first call's success is recorded here only, and reached this
		// process with the batch's other answers (a worker answers a batch
		// at once; when it dies, the pool takes them from this record), or
		// from this record: nothing to read.
		j.batchesRead[key] = true
		return
	}
	raw, err := e.st.GetBytes(ctx, e.bucket, key)
	if err != nil {
		return
	}
	sts, err := protocol.ParseStatusBatch(k, raw)
	if err != nil {
		// Once: a Rerun of that call then waits for its own record.
		e.log.Warn("poll: unreadable batch record", "key", key, "err", err)
		j.calls[first].finish(nil, fmt.Errorf("%w: %s://%s/%s: %v", ErrCorrupt, e.st.Backend(), e.bucket, key, err))
		j.batchesRead[key] = true
		return
	}
	for i := range sts {
		idx, err := strconv.Atoi(sts[i].CallID)
		if err != nil || idx < 0 || idx >= len(j.calls) || j.calls[idx].id != sts[i].CallID {
			e.log.Warn("poll: batch record names a call the job does not have", "key", key, "call", sts[i].CallID)
			continue
		}
		if c := j.calls[idx]; !c.isDone() {
			c.finish(&sts[i], nil)
		}
	}
	j.batchesRead[key] = true
}

// lost handles a call whose worker vanished: the next attempt if retries
// are left, else a final "lost" failure. Records are create-if-absent, so a
// worker that was only slow and finishes after all keeps its result, and
// one that recorded its final status first ends the call with it. It
// returns the error of recording the lost attempt: nothing else happens
// then, and the next poll tries again.
func (e *Executor) lost(ctx context.Context, j *jobState, c *callState, attempt int, silent time.Duration) error {
	st := protocol.Failed(e.id, j.job.JobID, protocol.Call{ID: c.id, Attempt: attempt}, protocol.KindLost, "lost",
		fmt.Sprintf("the worker stopped renewing the call's lease %v ago (lease %vs): it vanished", silent.Round(time.Second), j.job.Lease))
	rec, err := worker.RecordStatus(ctx, e.st, e.bucket, j.job.Block, j.job.Retries, st)
	if err != nil {
		e.log.Warn("cannot record a lost call", "job", j.job.JobID, "call", c.id, "err", err)
		return err
	}
	c.leaseKey = "" // j.pollMu is held; checkLeases deletes the stale lease
	c.minLeaseAttempt = max(c.minLeaseAttempt, attempt+1)
	if protocol.Final(rec, j.job.Retries) {
		// The worker's own final record, if it wrote one first: a worker
		// that was slow, not gone, needs no next attempt.
		c.finish(rec, nil)
		return nil
	}
	e.log.Info("call lost; retrying", "job", j.job.JobID, "call", c.id, "attempt", attempt+1)
	inv := protocol.Invocation{Version: protocol.Version, Bucket: j.job.Bucket, ExecutorID: e.id, JobID: j.job.JobID,
		Calls: []protocol.Call{{ID: c.id, Index: c.index, Attempt: attempt + 1}}}
	job := *j.job
	c.mu.Lock()
	if c.memory != 0 {
		job.Memory = c.memory // the size an escalation moved the call to
	}
	c.mu.Unlock()
	go j.invokeAgain(c, &job, inv, "retry lost") // not under j.pollMu
	return nil
}
