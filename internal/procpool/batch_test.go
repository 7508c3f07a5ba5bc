//go:build unix

package procpool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/driver"
)

// TestBatches: once its worker said Hello, the pool sends queued calls of
// one invocation in one request; every call still ends exactly once with
// the status recorded in storage, when a call of a batch kills its worker
// too; and an answer does not wait for a slow call after it.
func TestBatches(t *testing.T) {
	for _, batchRecords := range []bool{false, true} {
		t.Run(fmt.Sprintf("BatchRecords=%v", batchRecords), func(t *testing.T) { testBatches(t, batchRecords) })
	}
}

// endsPool returns a pool of one worker over e's storage, with edit's
// changes, and the channel its final statuses come on.
func endsPool(t *testing.T, e *testEnv, edit func(*Options)) (*Pool, chan protocol.Status) {
	t.Helper()
	ends := make(chan protocol.Status, 64)
	opts := e.options(1)
	opts.Notify = func(st *protocol.Status) {
		if st.State != protocol.StateRunning {
			ends <- *st
		}
	}
	if edit != nil {
		edit(&opts)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, ends
}

func testBatches(t *testing.T, batchRecords bool) {
	e := newTestEnv(t)
	p, ends := endsPool(t, e, func(o *Options) { o.BatchRecords = batchRecords })
	var edit func(*protocol.Job)
	start := func(inputs ...string) *protocol.Job {
		t.Helper()
		job, inv := e.job("mixed", "", len(inputs), edit)
		for i, in := range inputs {
			inv.Calls[i].Input = []byte(in)
		}
		if err := p.Invoke(context.Background(), job, inv); err != nil {
			t.Fatal(err)
		}
		return job
	}
	collect := func(job *protocol.Job) map[string]protocol.Status {
		t.Helper()
		got := map[string]protocol.Status{}
		for len(got) < job.Calls {
			select {
			case st := <-ends:
				if _, dup := got[st.CallID]; dup || st.JobID != job.JobID {
					t.Fatalf("call %s/%s ended again or out of its job: %+v", st.JobID, st.CallID, st)
				}
				got[st.CallID] = st
			case <-time.After(60 * time.Second):
				t.Fatalf("%d of %d calls ended within 60 s", len(got), job.Calls)
			}
		}
		// What was reported is what storage holds.
		for id, st := range got {
			rec, err := worker.Lookup(context.Background(), e.st, "b", st.ExecutorID, st.JobID, id)
			if err != nil || rec.State != st.State || string(rec.Result) != string(st.Result) {
				t.Fatalf("call %s reported %s %q, storage holds %+v (%v)", id, st.State, st.Result, rec, err)
			}
		}
		return got
	}
	repeat := func(s string, n int) []string { return strings.Split(strings.Repeat(s+",", n-1)+s, ",") }

	collect(start("pid")) // the worker starts and says Hello
	sent := p.sent.Load()
	got := collect(start(repeat("pid", 8)...))
	var pid string
	for id, st := range got {
		if st.State != protocol.StateSuccess || (pid != "" && string(st.Result) != pid) {
			t.Fatalf("call %s: %+v, want success in the one worker %s", id, st, pid)
		}
		pid = string(st.Result)
	}
	if n := p.sent.Load() - sent; n >= 8 {
		t.Fatalf("8 queued calls took %d requests, want batches", n)
	}

	got = collect(start("pid", "pid", "exit", "pid", "pid", "pid", "pid", "pid"))
	for id, st := range got {
		if id == protocol.CallID(2) {
			if st.State != protocol.StateError || st.Error.Kind != protocol.KindCrash {
				t.Fatalf("the call that exits: %+v, want a crash", st)
			}
			continue
		}
		if st.State != protocol.StateSuccess {
			t.Fatalf("call %s in the batch of a call that exits: %+v (%+v), want success", id, st, st.Error)
		}
	}

	// A call of a batch that overruns its timeout is charged with it; the
	// calls after it run.
	collect(start("pid")) // a fresh worker, warm
	edit = func(j *protocol.Job) { j.Timeout = 0.5 }
	got = collect(start("pid", "30s", "pid", "pid"))
	edit = nil
	for id, st := range got {
		if want := id == protocol.CallID(1); want != (st.State == protocol.StateError && st.Error.Kind == protocol.KindTimeout) ||
			!want && st.State != protocol.StateSuccess {
			t.Fatalf("call %s: %+v (%+v); want a timeout for call 00001 only", id, st, st.Error)
		}
	}

	collect(start("pid")) // a fresh worker, warm
	began := time.Now()
	job := start("pid", "5s", "pid", "pid") // the first request: the first two
	select {
	case st := <-ends:
		if st.CallID != protocol.CallID(0) || time.Since(began) > 3*time.Second {
			t.Fatalf("first answer: call %s after %v, want call 00000 long before the 5-s call ends", st.CallID, time.Since(began))
		}
		ends <- st
	case <-time.After(10 * time.Second):
		t.Fatal("no answer within 10 s")
	}
	collect(job)
}

// TestSalvage: when a worker dies before answering calls it recorded in a
// batch, the pool takes their statuses from the batch record instead of
// running them again, and runs the calls after them. A batch record it
// cannot read (damaged, or storage failing) saves nothing: the calls run
// again, alone, and the one that kills its worker is charged with it.
func TestSalvage(t *testing.T) {
	tests := []struct {
		name     string
		inputs   []string // of calls 0-3; the first request carries 0 and 1
		damaged  bool
		failRead bool
		// want per call: "recorded" (from the record), "crash" or "fresh"
		want []string
	}{
		{name: "recorded batch", inputs: []string{"exit", "pid", "pid", "pid"},
			want: []string{"recorded", "recorded", "fresh", "fresh"}},
		// The worker answered call 0, then died before the answer of call
		// 1, which the record (beginning at call 0) holds.
		{name: "answers cut within a batch", inputs: []string{"pid", "sleep-exit", "pid", "pid"},
			want: []string{"fresh", "recorded", "fresh", "fresh"}},
		{name: "damaged batch record", inputs: []string{"exit", "pid", "pid", "pid"}, damaged: true,
			want: []string{"crash", "fresh", "fresh", "fresh"}},
		{name: "storage fails", inputs: []string{"exit", "pid", "pid", "pid"}, failRead: true,
			want: []string{"crash", "fresh", "fresh", "fresh"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			p, ends := endsPool(t, e, func(o *Options) {
				o.BatchRecords = true
				if tc.failRead {
					o.Storage = storage.New(&failingGets{Driver: e.st.Driver(), key: "-0.json"}, "localhost", "b")
				}
			})
			warm, inv := e.job("pid", "", 1, nil)
			if err := p.Invoke(context.Background(), warm, inv); err != nil {
				t.Fatal(err)
			}
			<-ends // the worker said Hello
			// Calls 0 and 1 as a worker that died before answering left
			// them: in a batch record beginning at call 0.
			job, inv := e.job("mixed", "", 4, nil)
			for i, in := range tc.inputs {
				inv.Calls[i].Input = []byte(in)
			}
			var recorded []protocol.Status
			for _, id := range []string{"00000", "00001"} {
				recorded = append(recorded, protocol.Status{Version: protocol.Version, ExecutorID: job.ExecutorID, JobID: job.JobID, CallID: id,
					State: protocol.StateSuccess, HasResult: true, Result: []byte("recorded " + id)})
			}
			raw, _ := json.Marshal(protocol.StatusBatch{Version: protocol.Version, Statuses: recorded})
			if tc.damaged {
				raw = []byte("{garbage")
			}
			if err := e.st.PutBytes(context.Background(), "b", protocol.BatchKey(job.ExecutorID, job.JobID, inv.Calls[0]), raw); err != nil {
				t.Fatal(err)
			}
			if err := p.Invoke(context.Background(), job, inv); err != nil {
				t.Fatal(err)
			}
			got := map[string]protocol.Status{}
			for len(got) < 4 {
				select {
				case st := <-ends:
					got[st.CallID] = st
				case <-time.After(30 * time.Second):
					t.Fatalf("calls ended: %v", got)
				}
			}
			for i, want := range tc.want {
				id := protocol.CallID(i)
				st := got[id]
				recorded := strings.HasPrefix(string(st.Result), "recorded")
				switch {
				case want == "recorded" && (!recorded || string(st.Result) != "recorded "+id):
					t.Fatalf("call %s: %+v, want the recorded result", id, st)
				case want == "crash" && (st.State != protocol.StateError || st.Error.Kind != protocol.KindCrash):
					t.Fatalf("call %s: %+v, want a crash", id, st)
				case want == "fresh" && (st.State != protocol.StateSuccess || recorded):
					t.Fatalf("call %s: %+v (%+v), want a fresh success", id, st, st.Error)
				}
			}
		})
	}
}

// failingGets fails reads of keys containing key.
type failingGets struct {
	driver.Driver
	key string
}

func (d *failingGets) GetRange(ctx context.Context, bucket, key string, off, n int64) (io.ReadCloser, error) {
	if strings.Contains(key, d.key) {
		return nil, errors.New("injected read failure")
	}
	return d.Driver.GetRange(ctx, bucket, key, off, n)
}

// TestOldWorkerGetsOneCallAtATime: a worker that says no Hello (one built
// before batches) is sent one call per request, and every call ends.
func TestOldWorkerGetsOneCallAtATime(t *testing.T) {
	e := newTestEnv(t)
	p, ends := endsPool(t, e, func(o *Options) { o.Env = []string{"TEST_OLD_WORKER=1"} })
	job, inv := e.job("pid", "", 20, nil)
	if err := p.Invoke(context.Background(), job, inv); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		select {
		case st := <-ends:
			if st.State != protocol.StateSuccess {
				t.Fatalf("call %s: %+v", st.CallID, st)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("calls did not end within 30 s")
		}
	}
	if n := p.sent.Load(); n != 20 {
		t.Fatalf("20 calls took %d requests, want one each", n)
	}
}

// TestDeferBlocks: with DeferBlocks, the final statuses of a job with
// blocks reach Notify unrecorded (Deferred), whether the worker answered
// them (a success after a retry) or the pool made them (a crash); the
// attempt that is retried is still recorded here; a job without blocks is
// recorded as always.
func TestDeferBlocks(t *testing.T) {
	e := newTestEnv(t)
	p, ends := endsPool(t, e, func(o *Options) { o.DeferBlocks = true })
	blocks := func(j *protocol.Job) { j.Block, j.Retries = 16, 1 }
	flaky, flakyInv := e.job("flaky", "1", 4, blocks)
	crash, crashInv := e.job("exit", "", 1, func(j *protocol.Job) { j.Block = 16 })
	plain, plainInv := e.job("pid", "", 2, nil)
	for _, j := range []struct {
		job *protocol.Job
		inv protocol.Invocation
	}{{flaky, flakyInv}, {crash, crashInv}, {plain, plainInv}} {
		if err := p.Invoke(context.Background(), j.job, j.inv); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]protocol.Status{}
	for range 7 {
		select {
		case st := <-ends:
			got[st.JobID+"/"+st.CallID] = st
		case <-time.After(30 * time.Second):
			t.Fatalf("calls did not end within 30 s; ended: %d", len(got))
		}
	}
	ctx := context.Background()
	own := func(job *protocol.Job, call string) bool {
		_, err := e.st.GetBytes(ctx, "b", protocol.StatusKey(job.ExecutorID, job.JobID, call))
		return err == nil
	}
	for i := range 4 {
		id := protocol.CallID(i)
		st := got[flaky.JobID+"/"+id]
		if st.State != protocol.StateSuccess || st.Attempt != 1 || !st.Deferred || own(flaky, id) {
			t.Fatalf("flaky call %s: %+v (own record %v), want an unrecorded success at attempt 1", id, st, own(flaky, id))
		}
		if _, err := e.st.GetBytes(ctx, "b", protocol.AttemptKey(flaky.ExecutorID, flaky.JobID, id, 0)); err != nil {
			t.Fatalf("flaky call %s: the retried attempt was not recorded: %v", id, err)
		}
	}
	if st := got[crash.JobID+"/00000"]; st.State != protocol.StateError || !st.Deferred || own(crash, "00000") {
		t.Fatalf("crash: %+v, want an unrecorded failure", st)
	}
	for i := range 2 {
		id := protocol.CallID(i)
		if st := got[plain.JobID+"/"+id]; st.State != protocol.StateSuccess || st.Deferred || !own(plain, id) {
			t.Fatalf("plain call %s: %+v, want a recorded success", id, st)
		}
	}
}
