package worker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/driver"
	"github.com/lithops-go/lithops/storage/memory"
)

const blockExec, blockJob = "e", "j"

func blockSuccess(call, worker string) *protocol.Status {
	return &protocol.Status{Version: protocol.Version, ExecutorID: blockExec, JobID: blockJob, CallID: call,
		WorkerID: worker, State: protocol.StateSuccess, HasResult: true, Result: []byte(call + worker)}
}

func blockFailure(call, worker string) *protocol.Status {
	st := blockSuccess(call, worker)
	st.State, st.HasResult, st.Result = protocol.StateError, false, nil
	st.Error = &protocol.ErrorRecord{Kind: protocol.KindUser, Message: "no"}
	return st
}

// memStorage is an empty in-memory store with bucket "b".
func memStorage() (*memory.Driver, *storage.Storage) {
	mem := memory.New()
	mem.CreateBucket(context.Background(), "b")
	return mem, storage.New(mem, "memory", "b")
}

// finals reads every final status of the job, by call, and fails the
// test when a call has two.
func finals(t *testing.T, st *storage.Storage) map[string]*protocol.Status {
	t.Helper()
	all, twice, err := Finals(context.Background(), st, "b", blockExec, blockJob)
	if err != nil {
		t.Fatal(err)
	}
	if len(twice) > 0 {
		t.Fatalf("calls %v have a second final status", twice)
	}
	out := make(map[string]*protocol.Status, len(all))
	for c, s := range all {
		out[c] = &s
	}
	return out
}

// before writes what a block key holds before the test: "record" (calls
// 00004 and 00005 by worker "other"), "fence", "damaged" or nothing.
func before(t *testing.T, st *storage.Storage, what string) {
	t.Helper()
	key, _ := protocol.BlockKey(blockExec, blockJob, "00000", 16)
	var raw []byte
	switch what {
	case "":
		return
	case "record":
		raw, _ = json.Marshal(protocol.StatusBatch{Version: protocol.Version, Block: 16,
			Statuses: []protocol.Status{*blockSuccess("00004", "other"), *blockSuccess("00005", "other")}})
	case "fence":
		raw, _ = json.Marshal(protocol.StatusBatch{Version: protocol.Version, Block: 16, Fence: true})
	case "damaged":
		raw = []byte("{")
	}
	if err := st.PutBytes(context.Background(), "b", key, raw); err != nil {
		t.Fatal(err)
	}
}

// TestRecordFinal: a final status of a call of a job with blocks goes in
// the call's own record only once its block record exists (a fence is
// written when it does not) and does not list the call; when the block
// record cannot be read or fenced, nothing is written.
func TestRecordFinal(t *testing.T) {
	tests := []struct {
		name    string
		block   int
		before  string
		fault   string // faultyDriver op on the block key
		st      *protocol.Status
		wantErr bool
		want    string // the recorded status's worker
		fence   bool   // the block key holds a fence afterwards
		own     bool   // the call has its own record afterwards
	}{
		{name: "no blocks", block: 0, st: blockSuccess("00004", "me"), want: "me", own: true},
		{name: "a fresh block is fenced first", block: 16, st: blockSuccess("00004", "me"), want: "me", fence: true, own: true},
		{name: "a failure too", block: 16, st: blockFailure("00004", "me"), want: "me", fence: true, own: true},
		{name: "the block record lists the call", block: 16, before: "record", st: blockSuccess("00004", "me"), want: "other"},
		{name: "the block record lists the call, a failure", block: 16, before: "record", st: blockFailure("00005", "me"), want: "other"},
		{name: "the block record lacks the call", block: 16, before: "record", st: blockSuccess("00006", "me"), want: "me", own: true},
		{name: "a fence", block: 16, before: "fence", st: blockSuccess("00004", "me"), want: "me", fence: true, own: true},
		{name: "a damaged block record", block: 16, before: "damaged", st: blockSuccess("00004", "me"), want: "me", own: true},
		{name: "the block record cannot be read", block: 16, before: "record", fault: "get", st: blockSuccess("00006", "me"), wantErr: true},
		{name: "the fence cannot be written", block: 16, fault: "put", st: blockSuccess("00004", "me"), wantErr: true},
		{name: "the fence written, its answer lost", block: 16, fault: "putlate", st: blockSuccess("00004", "me"), want: "me", fence: true, own: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem, st := memStorage()
			before(t, st, tc.before)
			bkey, _ := protocol.BlockKey(blockExec, blockJob, "00000", 16)
			var d driver.Driver = mem
			if tc.fault != "" {
				d = &faultyDriver{Driver: mem, op: tc.fault, key: bkey}
			}
			rec, err := RecordFinal(context.Background(), storage.New(d, "memory", "b"), "b", tc.block, tc.st)
			if (err != nil) != tc.wantErr {
				t.Fatalf("RecordFinal: %v, want error %v", err, tc.wantErr)
			}
			all := finals(t, st) // at most one final status a call
			_, ownErr := st.GetBytes(context.Background(), "b", protocol.StatusKey(blockExec, blockJob, tc.st.CallID))
			if own := ownErr == nil; own != tc.own {
				t.Fatalf("own record: %v, want %v", own, tc.own)
			}
			if tc.wantErr {
				if all[tc.st.CallID] != nil {
					t.Fatalf("a failed RecordFinal left a record: %+v", all[tc.st.CallID])
				}
				return
			}
			if rec.WorkerID != tc.want || all[tc.st.CallID] == nil || all[tc.st.CallID].WorkerID != tc.want {
				t.Fatalf("recorded %+v (storage %+v), want worker %s's", rec, all[tc.st.CallID], tc.want)
			}
			raw, _ := st.GetBytes(context.Background(), "b", bkey)
			var b protocol.StatusBatch
			json.Unmarshal(raw, &b)
			if b.Fence != tc.fence {
				t.Fatalf("block key holds %s, want fence %v", raw, tc.fence)
			}
		})
	}
}

// TestRecordBlock: a block's successes go in one record; when that record
// exists already, the statuses it lists stand and the other calls get
// records of their own; a write that fails leaves every call unrecorded
// (its error), one that lands but fails on the way back counts.
func TestRecordBlock(t *testing.T) {
	tests := []struct {
		name    string
		before  string
		fault   string
		calls   []string
		wantErr bool
		want    map[string]string // call → recording worker
		inBlock []string          // calls the block record lists afterwards
	}{
		{name: "a fresh block", calls: []string{"00001", "00004", "00015"},
			want: map[string]string{"00001": "me", "00004": "me", "00015": "me"}, inBlock: []string{"00001", "00004", "00015"}},
		{name: "another delivery's record", before: "record", calls: []string{"00004", "00006"},
			want: map[string]string{"00004": "other", "00005": "other", "00006": "me"}, inBlock: []string{"00004", "00005"}},
		{name: "a fence", before: "fence", calls: []string{"00004", "00006"},
			want: map[string]string{"00004": "me", "00006": "me"}},
		{name: "a damaged record", before: "damaged", calls: []string{"00004"}, want: map[string]string{"00004": "me"}},
		{name: "the write fails", fault: "put", calls: []string{"00001", "00002"}, wantErr: true, want: map[string]string{}},
		{name: "the write lands, its answer lost", fault: "putlate", calls: []string{"00001", "00002"},
			want: map[string]string{"00001": "me", "00002": "me"}, inBlock: []string{"00001", "00002"}},
		{name: "the existing record cannot be read", before: "record", fault: "get", calls: []string{"00006"}, wantErr: true,
			want: map[string]string{"00004": "other", "00005": "other"}, inBlock: []string{"00004", "00005"}},
		{name: "calls of two blocks", calls: []string{"00001", "00016"}, wantErr: true, want: map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem, st := memStorage()
			before(t, st, tc.before)
			bkey, _ := protocol.BlockKey(blockExec, blockJob, "00000", 16)
			var d driver.Driver = mem
			if tc.fault != "" {
				d = &faultyDriver{Driver: mem, op: tc.fault, key: bkey}
			}
			var sts []*protocol.Status
			for _, c := range tc.calls {
				sts = append(sts, blockSuccess(c, "me"))
			}
			recs, errs := RecordBlock(context.Background(), storage.New(d, "memory", "b"), "b", 16, sts)
			for i, c := range tc.calls {
				if (errs[i] != nil) != tc.wantErr {
					t.Fatalf("call %s: error %v, want error %v", c, errs[i], tc.wantErr)
				}
				if !tc.wantErr && recs[i].WorkerID != tc.want[c] {
					t.Fatalf("call %s recorded by %s, want %s", c, recs[i].WorkerID, tc.want[c])
				}
			}
			all := finals(t, st)
			if len(all) != len(tc.want) {
				t.Fatalf("%d calls recorded, want %d", len(all), len(tc.want))
			}
			for c, w := range tc.want {
				if all[c] == nil || all[c].WorkerID != w {
					t.Fatalf("call %s in storage: %+v, want worker %s's", c, all[c], w)
				}
			}
			raw, err := st.GetBytes(context.Background(), "b", bkey)
			var listed []string
			if err == nil {
				k, _ := protocol.ParseKey(bkey)
				sts, _ := protocol.ParseStatusBatch(k, raw)
				for _, s := range sts {
					listed = append(listed, s.CallID)
				}
			} else if !errors.Is(err, storage.ErrNotFound) {
				t.Fatal(err)
			}
			if !slices.Equal(listed, tc.inBlock) {
				t.Fatalf("block record lists %v, want %v", listed, tc.inBlock)
			}
		})
	}
}

// TestLookupIn: a call of a job with blocks is found in its own record or
// in its block's record, read directly; a call in neither is not found.
func TestLookupIn(t *testing.T) {
	ctx := context.Background()
	_, st := memStorage()
	before(t, st, "record") // calls 00004 and 00005 in the block of 00000
	own := blockSuccess("00006", "me")
	if _, err := Record(ctx, st, "b", protocol.StatusKey(blockExec, blockJob, "00006"), own); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		call, want string // want: the recording worker, "" not found
	}{{"00004", "other"}, {"00006", "me"}, {"00007", ""}, {"00020", ""}} {
		got, err := LookupIn(ctx, st, "b", blockExec, blockJob, tc.call, 16)
		switch {
		case tc.want == "" && !errors.Is(err, storage.ErrNotFound):
			t.Errorf("call %s: %+v, %v; want not found", tc.call, got, err)
		case tc.want != "" && (err != nil || got.WorkerID != tc.want):
			t.Errorf("call %s: %+v, %v; want worker %s's status", tc.call, got, err, tc.want)
		}
		// Lookup, which lists, agrees.
		got2, err2 := Lookup(ctx, st, "b", blockExec, blockJob, tc.call)
		if (err2 == nil) != (tc.want != "") || (err2 == nil && got2.WorkerID != tc.want) {
			t.Errorf("Lookup(%s) = %+v, %v; LookupIn found %q", tc.call, got2, err2, tc.want)
		}
	}
}

// TestRecordAttempt: an attempt that is retried is recorded at its attempt
// key unless the call has a final status, in its block's record or its
// own, which is returned instead; nothing is written when the block record
// cannot be read.
func TestRecordAttempt(t *testing.T) {
	for _, tc := range []struct {
		name, before, fault, call string
		want                      string // the returned status's worker
		wantErr, attempt          bool   // attempt: an attempt record written
	}{
		{name: "no final status", call: "00006", want: "me", attempt: true},
		{name: "in the block record", before: "record", call: "00004", want: "other"},
		{name: "not in the block record", before: "record", call: "00006", want: "me", attempt: true},
		{name: "a fence", before: "fence", call: "00004", want: "me", attempt: true},
		{name: "the block record unreadable", before: "record", fault: "get", call: "00006", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			mem, st := memStorage()
			before(t, st, tc.before)
			var d driver.Driver = mem
			if tc.fault != "" {
				bkey, _ := protocol.BlockKey(blockExec, blockJob, "00000", 16)
				d = &faultyDriver{Driver: mem, op: tc.fault, key: bkey}
			}
			rec, err := RecordAttempt(ctx, storage.New(d, "memory", "b"), "b", 16, blockFailure(tc.call, "me"))
			if (err != nil) != tc.wantErr {
				t.Fatalf("RecordAttempt: %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && rec.WorkerID != tc.want {
				t.Fatalf("returned %+v, want worker %s's status", rec, tc.want)
			}
			_, aerr := st.GetBytes(ctx, "b", protocol.AttemptKey(blockExec, blockJob, tc.call, 0))
			if (aerr == nil) != tc.attempt {
				t.Fatalf("attempt record: %v, want written %v", aerr, tc.attempt)
			}
		})
	}
}

// TestFinals: every final status of a job by call, from own and block
// records, fences and damaged block records skipped; a call with a final
// status in two places is named.
func TestFinals(t *testing.T) {
	ctx := context.Background()
	_, st := memStorage()
	before(t, st, "record") // 00004 and 00005 in the block of 00000
	for _, s := range []*protocol.Status{blockSuccess("00006", "me"), blockFailure("00005", "me")} {
		if _, err := Record(ctx, st, "b", protocol.StatusKey(blockExec, blockJob, s.CallID), s); err != nil {
			t.Fatal(err)
		}
	}
	fence, _ := json.Marshal(protocol.StatusBatch{Version: protocol.Version, Block: 16, Fence: true})
	key, _ := protocol.BlockKey(blockExec, blockJob, "00016", 16)
	st.PutBytes(ctx, "b", key, fence)
	damaged, _ := protocol.BlockKey(blockExec, blockJob, "00032", 16)
	st.PutBytes(ctx, "b", damaged, []byte("{"))
	all, twice, err := Finals(ctx, st, "b", blockExec, blockJob)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all["00004"].WorkerID != "other" || all["00006"].WorkerID != "me" || !slices.Equal(twice, []string{"00005"}) {
		t.Fatalf("Finals = %v, twice %v; want 00004, 00005 and 00006, 00005 twice", all, twice)
	}
	st.PutBytes(ctx, "b", protocol.StatusKey(blockExec, blockJob, "00007"), []byte("not json"))
	if _, _, err := Finals(ctx, st, "b", blockExec, blockJob); err == nil {
		t.Fatal("an own record that is not JSON: no error")
	}
}

// TestRecordStatusSettled: whatever RecordStatus returns from a call's
// final record — its own record or its block's — ends the call (Settled,
// so protocol.Final), even a failure at an attempt with retries left (a
// runtime host's handler error); another attempt record of the same
// attempt does not; a record at the key that is of another call is an
// error, not the call's status.
func TestRecordStatusSettled(t *testing.T) {
	const retries = 2
	handler := blockFailure("00006", "host")
	handler.Error.Kind = protocol.KindHandler
	for _, tc := range []struct {
		name    string
		block   int
		key     string           // where the other execution's record is
		other   *protocol.Status // what it is
		want    string           // worker of the returned status
		final   bool             // protocol.Final of it
		wantErr bool
	}{
		{name: "nothing recorded", want: "me"},
		{name: "a handler error recorded", key: "status", other: handler, want: "host", final: true},
		{name: "a success recorded", key: "status", other: blockSuccess("00006", "other"), want: "other", final: true},
		{name: "the same attempt recorded", key: "attempt", other: blockFailure("00006", "other"), want: "other"},
		{name: "in the block record", block: 16, key: "block", want: "other", final: true},
		{name: "another call's record at the attempt key", key: "attempt", other: blockFailure("00007", "other"), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			_, st := memStorage()
			call := "00006"
			switch tc.key {
			case "status":
				raw, _ := json.Marshal(tc.other)
				st.PutBytes(ctx, "b", protocol.StatusKey(blockExec, blockJob, call), raw)
			case "attempt":
				raw, _ := json.Marshal(tc.other)
				st.PutBytes(ctx, "b", protocol.AttemptKey(blockExec, blockJob, call, 0), raw)
			case "block":
				key, _ := protocol.BlockKey(blockExec, blockJob, call, 16)
				raw, _ := json.Marshal(protocol.StatusBatch{Version: protocol.Version, Block: 16,
					Statuses: []protocol.Status{*blockSuccess(call, "other")}})
				st.PutBytes(ctx, "b", key, raw)
			}
			mine := blockFailure(call, "me") // attempt 0 of 2 retries: not final by itself
			rec, err := RecordStatus(ctx, st, "b", tc.block, retries, mine)
			if (err != nil) != tc.wantErr {
				t.Fatalf("RecordStatus: %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if rec.WorkerID != tc.want || protocol.Final(rec, retries) != tc.final {
				t.Fatalf("returned worker %s's status, final %v; want worker %s's, final %v", rec.WorkerID, protocol.Final(rec, retries), tc.want, tc.final)
			}
		})
	}
	// A final status written is returned Settled, and stored without the
	// mark: its key says it.
	ctx := context.Background()
	_, st := memStorage()
	last := blockFailure("00006", "me")
	last.Attempt = retries
	rec, err := RecordStatus(ctx, st, "b", 0, retries, last)
	if err != nil || !rec.Settled {
		t.Fatalf("final status written: %+v, %v; want it Settled", rec, err)
	}
	marked := blockSuccess("00007", "me")
	marked.Settled = true // as a status handed on from a worker's answer is
	if _, err := RecordStatus(ctx, st, "b", 0, retries, marked); err != nil {
		t.Fatal(err)
	}
	for _, call := range []string{"00006", "00007"} {
		raw, _ := st.GetBytes(ctx, "b", protocol.StatusKey(blockExec, blockJob, call))
		if strings.Contains(string(raw), "settled") {
			t.Fatalf("stored %s: the mark is not the record's", raw)
		}
	}
	inBlock := blockSuccess("00001", "me")
	inBlock.Settled = true
	recs, errs := RecordBlock(ctx, st, "b", 16, []*protocol.Status{inBlock, blockSuccess("00002", "me")})
	if errs[0] != nil || errs[1] != nil || !recs[1].Settled {
		t.Fatalf("block record: %v, %v; the statuses written are Settled: %v", errs[0], errs[1], recs[1].Settled)
	}
	key, _ := protocol.BlockKey(blockExec, blockJob, "00001", 16)
	if raw, _ := st.GetBytes(ctx, "b", key); strings.Contains(string(raw), "settled") {
		t.Fatalf("block record %s carries the mark", raw)
	}
}
