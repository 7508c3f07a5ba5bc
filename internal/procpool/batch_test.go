//go:build unix

package procpool

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
)

// TestBatches: once its worker said Hello, the pool sends queued calls of
// one invocation in one request; every call still ends exactly once with
// the status recorded in storage, when a call of a batch kills its worker
// too; and an answer does not wait for a slow call after it.
func TestBatches(t *testing.T) {
	e := newTestEnv(t)
	ends := make(chan protocol.Status, 64)
	opts := e.options(1)
	opts.Notify = func(st *protocol.Status) {
		if st.State != protocol.StateRunning {
			ends <- *st
		}
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
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
			raw, err := e.st.GetBytes(context.Background(), "b", protocol.StatusKey(st.ExecutorID, st.JobID, id))
			var rec protocol.Status
			if err != nil || json.Unmarshal(raw, &rec) != nil || rec.State != st.State || string(rec.Result) != string(st.Result) {
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
