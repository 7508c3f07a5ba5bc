// Block records: how the final statuses of a job with blocks (Job.Block)
// are written. protocol.BlockKey states the invariant; these two functions
// are the only writers of a final record of such a job's call.

package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
)

// RecordFinal writes st, a final status of a call of a job whose calls are
// in blocks of block calls (Job.Block; 0: none), and returns the status
// recorded for the call: st, or the one another execution recorded first.
// With blocks it first makes sure the call's block record exists, writing
// a fence when it does not: when that record lists the call, its status
// there is the call's; otherwise st goes in the call's own record,
// create-if-absent (Record). Nothing is written when the block record
// cannot be read (a storage error): the caller tries again or reports.
func RecordFinal(ctx context.Context, s *storage.Storage, bucket string, block int, st *protocol.Status) (*protocol.Status, error) {
	key := protocol.StatusKey(st.ExecutorID, st.JobID, st.CallID)
	bkey, ok := protocol.BlockKey(st.ExecutorID, st.JobID, st.CallID, block)
	if !ok {
		return Record(ctx, s, bucket, key, st)
	}
	listed, err := fenceBlock(ctx, s, bucket, bkey, block)
	if err != nil {
		return st, err
	}
	if i := indexOf(listed, st.CallID); i >= 0 {
		return &listed[i], nil
	}
	return Record(ctx, s, bucket, key, st)
}

// RecordStatus writes st, an ended attempt of a call of a job with retries
// retries and blocks of block calls (0: none), where it belongs: a final
// status with RecordFinal, one that is retried or handed back with
// RecordAttempt. It returns the status recorded for the call.
func RecordStatus(ctx context.Context, s *storage.Storage, bucket string, block, retries int, st *protocol.Status) (*protocol.Status, error) {
	if protocol.Final(st, retries) {
		return RecordFinal(ctx, s, bucket, block, st)
	}
	return RecordAttempt(ctx, s, bucket, block, st)
}

// RecordAttempt writes st, a status that is not final (an attempt that is
// retried, or handed back to the client), at its attempt key, as Record
// does, unless the call already has a final status — in its own record or,
// for a job with blocks, in its block's record — which it returns instead,
// so that nobody retries a call that has ended.
func RecordAttempt(ctx context.Context, s *storage.Storage, bucket string, block int, st *protocol.Status) (*protocol.Status, error) {
	if bkey, ok := protocol.BlockKey(st.ExecutorID, st.JobID, st.CallID, block); ok {
		listed, err := ReadBlock(ctx, s, bucket, bkey)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return st, err
		}
		if i := indexOf(listed, st.CallID); i >= 0 {
			return &listed[i], nil
		}
	}
	return Record(ctx, s, bucket, protocol.AttemptKey(st.ExecutorID, st.JobID, st.CallID, st.Attempt), st)
}

// RecordBlock writes sts, successes of calls of one block of a job whose
// calls are in blocks of block calls, in the block's record
// (protocol.BlockKey), create-if-absent, and returns each call's recorded
// status and error, as RecordFinal would. When the block record exists
// already (a fence, or another delivery's record) a call it lists keeps
// that status and the others get records of their own.
func RecordBlock(ctx context.Context, s *storage.Storage, bucket string, block int, sts []*protocol.Status) ([]*protocol.Status, []error) {
	recs, errs := make([]*protocol.Status, len(sts)), make([]error, len(sts))
	copy(recs, sts)
	fail := func(err error) ([]*protocol.Status, []error) {
		for i := range errs {
			errs[i] = err
		}
		return recs, errs
	}
	if len(sts) == 0 {
		return recs, errs
	}
	first := sts[0]
	key, ok := protocol.BlockKey(first.ExecutorID, first.JobID, first.CallID, block)
	if !ok {
		return fail(fmt.Errorf("record block: call %s of a job with block size %d has no block", first.CallID, block))
	}
	b := protocol.StatusBatch{Version: protocol.Version, Block: block, Statuses: make([]protocol.Status, len(sts))}
	for i, st := range sts {
		k, _ := protocol.BlockKey(st.ExecutorID, st.JobID, st.CallID, block)
		if k != key || st.State != protocol.StateSuccess {
			return fail(fmt.Errorf("record block %s: call %s (%s) is not a success of that block", key, st.CallID, st.State))
		}
		b.Statuses[i] = *st
		b.Statuses[i].Settled = false // what the key says already
	}
	data, err := b.Encode()
	if err != nil {
		return fail(fmt.Errorf("encode block record: %w", err))
	}
	err = s.PutIfAbsent(ctx, bucket, key, bytes.NewReader(data))
	if err != nil && !errors.Is(err, storage.ErrExists) && holds(ctx, s, bucket, key, sts) {
		err = nil // the write failed on the way back, not on the way in
	}
	if err == nil {
		for _, st := range sts {
			st.Settled = true
		}
		return recs, errs
	}
	if !errors.Is(err, storage.ErrExists) {
		return fail(fmt.Errorf("write block record: %w", err))
	}
	listed, err := ReadBlock(ctx, s, bucket, key)
	if err != nil {
		return fail(err)
	}
	for i, st := range sts {
		if j := indexOf(listed, st.CallID); j >= 0 {
			recs[i] = &listed[j]
		} else {
			recs[i], errs[i] = Record(ctx, s, bucket, protocol.StatusKey(st.ExecutorID, st.JobID, st.CallID), st)
		}
	}
	return recs, errs
}

// fenceBlock makes sure the block record at key exists, writing a fence
// when it does not, and returns the statuses it lists.
func fenceBlock(ctx context.Context, s *storage.Storage, bucket, key string, block int) ([]protocol.Status, error) {
	data, _ := (&protocol.StatusBatch{Version: protocol.Version, Block: block, Fence: true}).Encode()
	err := s.PutIfAbsent(ctx, bucket, key, bytes.NewReader(data))
	if err == nil {
		return nil, nil
	}
	listed, rerr := ReadBlock(ctx, s, bucket, key)
	if rerr != nil {
		if errors.Is(err, storage.ErrExists) {
			return nil, rerr
		}
		return nil, fmt.Errorf("fence block record %s: %w", key, err)
	}
	return listed, nil // it exists: ours (a write whose answer was lost) or another's
}

// ReadBlock returns the statuses the block record at key lists, Settled
// (each is its call's final record). A record that cannot be decoded lists
// none: its calls get records of their own, which every reader takes
// before a block record. A missing record is an error wrapping
// storage.ErrNotFound.
func ReadBlock(ctx context.Context, s *storage.Storage, bucket, key string) ([]protocol.Status, error) {
	raw, err := s.GetBytes(ctx, bucket, key)
	if err != nil {
		return nil, fmt.Errorf("read block record %s: %w", key, err)
	}
	k, _ := protocol.ParseKey(key)
	listed, err := protocol.ParseStatusBatch(k, raw)
	if err != nil {
		return nil, nil
	}
	for i := range listed {
		listed[i].Settled = true
	}
	return listed, nil
}

// holds reports whether the batch or block record at key holds exactly
// sts, as written by their execution (same worker, same start).
func holds(ctx context.Context, s *storage.Storage, bucket, key string, sts []*protocol.Status) bool {
	raw, err := s.GetBytes(ctx, bucket, key)
	if err != nil {
		return false
	}
	k, _ := protocol.ParseKey(key)
	got, err := protocol.ParseStatusBatch(k, raw)
	if err != nil || len(got) != len(sts) {
		return false
	}
	for i := range got {
		if got[i].CallID != sts[i].CallID || got[i].WorkerID != sts[i].WorkerID || !got[i].Start.Equal(sts[i].Start) {
			return false
		}
	}
	return true
}

func indexOf(sts []protocol.Status, callID string) int {
	for i := range sts {
		if sts[i].CallID == callID {
			return i
		}
	}
	return -1
}

// Finals reads every final status of job from its records, its calls' own
// and its batch or block records (fences hold none), by call. A call with
// a final status in two places breaks the invariant of protocol.BlockKey
// (or BatchKey): it is listed in twice, with the first status read kept.
// A batch record that cannot be decoded is skipped, as writers skip it; an
// own record that cannot be decoded is an error.
func Finals(ctx context.Context, s *storage.Storage, bucket, executorID, jobID string) (finals map[string]protocol.Status, twice []string, err error) {
	infos, err := s.List(ctx, bucket, protocol.StatusPrefix(executorID, jobID))
	if err != nil {
		return nil, nil, err
	}
	finals = map[string]protocol.Status{}
	add := func(st protocol.Status) {
		if _, dup := finals[st.CallID]; dup {
			twice = append(twice, st.CallID)
			return
		}
		finals[st.CallID] = st
	}
	for _, o := range infos {
		k, ok := protocol.ParseKey(o.Key)
		if !ok || k.Kind != protocol.KindStatus {
			continue
		}
		raw, err := s.GetBytes(ctx, bucket, o.Key)
		if err != nil {
			return nil, nil, err
		}
		if k.Batch {
			sts, err := protocol.ParseStatusBatch(k, raw)
			if err != nil {
				continue
			}
			for _, st := range sts {
				add(st)
			}
			continue
		}
		st, err := protocol.ParseStatus(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", o.Key, err)
		}
		add(*st)
	}
	return finals, twice, nil
}
