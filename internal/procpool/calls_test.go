//go:build unix

package procpool

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
)

// notifications collects what Invoke notifies.
type notifications struct {
	mu  sync.Mutex
	all []protocol.Status
	end chan protocol.Status // statuses other than running
}

func newNotifications() *notifications { return &notifications{end: make(chan protocol.Status, 16)} }

func (n *notifications) notify(st *protocol.Status) {
	n.mu.Lock()
	n.all = append(n.all, *st)
	n.mu.Unlock()
	if st.State != protocol.StateRunning {
		n.end <- *st
	}
}

// TestInvoke: the call policy over the pool: what each way a call ends
// leaves in storage and reports, retries included.
func TestInvoke(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		name        string
		fn, in      string
		edit        func(*protocol.Job)
		escalateOOM bool
		linux       bool
		// want is the final (or handed-back) status reported; key is
		// where it must be recorded.
		wantState    protocol.State
		wantKind     protocol.ErrorKind
		wantAttempt  int
		wantMessage  string
		handedBack   bool
		wantRunnings int
		// settled: a runtime host's handler error is in the call's final
		// record before it runs (a delivery that gave up on it).
		settled bool
	}{
		{name: "success", fn: "pid", wantState: protocol.StateSuccess, wantRunnings: 1},
		{name: "user error, retried until it succeeds", fn: "flaky", in: "2", edit: func(j *protocol.Job) { j.Retries = 2 },
			wantState: protocol.StateSuccess, wantAttempt: 2, wantRunnings: 3},
		{name: "user error, out of retries", fn: "flaky", in: "9", edit: func(j *protocol.Job) { j.Retries = 1 },
			wantState: protocol.StateError, wantKind: protocol.KindUser, wantAttempt: 1, wantRunnings: 2},
		{name: "worker crash recorded by the pool", fn: "exit",
			wantState: protocol.StateError, wantKind: protocol.KindCrash, wantMessage: "exited with status 3", wantRunnings: 1},
		{name: "timeout recorded by the pool", fn: "sleep", in: "60s", edit: func(j *protocol.Job) { j.Timeout = 0.2 },
			wantState: protocol.StateError, wantKind: protocol.KindTimeout, wantMessage: "timeout of 200ms", wantRunnings: 1},
		{name: "a final record written meanwhile ends the call", fn: "flaky", in: "9", edit: func(j *protocol.Job) { j.Retries = 2 }, settled: true,
			wantState: protocol.StateError, wantKind: protocol.KindHandler, wantMessage: "gave up", wantRunnings: 1},
		{name: "out of memory handed back", fn: "alloc", in: "256", linux: true, escalateOOM: true,
			edit:      func(j *protocol.Job) { j.Memory, j.EscalateMemory, j.Retries = 64, true, 2 },
			wantState: protocol.StateError, wantKind: protocol.KindOOM, handedBack: true, wantRunnings: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.linux && runtime.GOOS != "linux" {
				t.Skip("memory limits are enforced on Linux only")
			}
			n := newNotifications()
			opts := e.options(1)
			opts.Notify = n.notify
			opts.EscalateOOM = tc.escalateOOM
			p, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			job, inv := e.job(tc.fn, tc.in, 1, tc.edit)
			if tc.settled {
				raw, _ := json.Marshal(protocol.Failed(job.ExecutorID, job.JobID, inv.Calls[0], protocol.KindHandler, "delivery", "the host gave up"))
				if err := e.st.PutBytes(context.Background(), "b", protocol.StatusKey(job.ExecutorID, job.JobID, inv.Calls[0].ID), raw); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Invoke(context.Background(), job, inv); err != nil {
				t.Fatal(err)
			}
			var got protocol.Status
			select {
			case got = <-n.end:
			case <-time.After(60 * time.Second):
				t.Fatal("the call did not end within 60 s")
			}
			if got.State != tc.wantState || got.Attempt != tc.wantAttempt || (got.Error == nil) != (tc.wantKind == "") ||
				(got.Error != nil && (got.Error.Kind != tc.wantKind || !strings.Contains(got.Error.Message, tc.wantMessage))) {
				t.Fatalf("reported %s attempt %d %+v; want %s attempt %d kind %q %q", got.State, got.Attempt, got.Error, tc.wantState, tc.wantAttempt, tc.wantKind, tc.wantMessage)
			}
			key := protocol.StatusKey(got.ExecutorID, got.JobID, got.CallID)
			if tc.handedBack {
				key = protocol.AttemptKey(got.ExecutorID, got.JobID, got.CallID, got.Attempt)
				if _, err := e.st.Head(context.Background(), "b", protocol.StatusKey(got.ExecutorID, got.JobID, got.CallID)); err == nil {
					t.Fatal("a handed-back call has a final status")
				}
			}
			raw, err := e.st.GetBytes(context.Background(), "b", key)
			var rec protocol.Status
			if err != nil || json.Unmarshal(raw, &rec) != nil || rec.State != got.State || rec.Attempt != got.Attempt {
				t.Fatalf("recorded at %s: %s, %v; want what was reported", key, raw, err)
			}
			n.mu.Lock()
			defer n.mu.Unlock()
			var runnings int
			for _, s := range n.all {
				if s.State == protocol.StateRunning {
					runnings++
				}
			}
			if runnings != tc.wantRunnings || len(n.all) != runnings+1 {
				t.Fatalf("notified %d running and %d in all; want %d running and one end", runnings, len(n.all), tc.wantRunnings)
			}
		})
	}
}

// TestInvokeCancelled: a call whose ctx ends is neither recorded nor
// reported by the pool (the executor fails it), and its worker is killed.
func TestInvokeCancelled(t *testing.T) {
	e := newTestEnv(t)
	n := newNotifications()
	opts := e.options(1)
	opts.Notify = n.notify
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	job, inv := e.job("sleep", "60s", 1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.Invoke(ctx, job, inv); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the call runs", func() bool { return p.Stats().Running == 1 })
	cancel()
	eventually(t, 10*time.Second, "the worker is killed", func() bool { s := p.Stats(); return s.Processes == 0 && s.Running == 0 })
	if _, err := e.st.Head(context.Background(), "b", protocol.StatusKey("e", job.JobID, inv.Calls[0].ID)); err == nil {
		t.Fatal("a cancelled call was recorded")
	}
	select {
	case s := <-n.end:
		t.Fatalf("a cancelled call was reported: %+v", s)
	default:
	}
}

func TestInvokeNeedsStorage(t *testing.T) {
	p, err := New(Options{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Invoke(context.Background(), &protocol.Job{}, protocol.Invocation{}); err == nil {
		t.Fatal("Invoke without storage accepted")
	}
}

// TestInvokeFeedsAWindow: a big invocation queues a few tasks per worker,
// not one per call, and every call still ends exactly once.
func TestInvokeFeedsAWindow(t *testing.T) {
	e := newTestEnv(t)
	const calls = 300
	var mu sync.Mutex
	ended := map[string]int{}
	allEnded := make(chan struct{})
	opts := e.options(1)
	opts.Notify = func(st *protocol.Status) {
		if st.State == protocol.StateRunning {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		ended[st.CallID]++
		if len(ended) == calls {
			close(allEnded)
		}
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	job, inv := e.job("pid", "", calls, nil)
	if err := p.Invoke(context.Background(), job, inv); err != nil {
		t.Fatal(err)
	}
	if q := p.Stats().Queued; q > p.window() {
		t.Errorf("%d tasks queued for %d calls on one worker; want a window of at most %d", q, calls, p.window())
	}
	select {
	case <-allEnded:
	case <-time.After(60 * time.Second):
		mu.Lock()
		t.Fatalf("%d of %d calls ended within 60 s", len(ended), calls)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, n := range ended {
		if n != 1 {
			t.Errorf("call %s ended %d times", id, n)
		}
	}
}

// TestInvokeCarriesSmallManifests: a small job's calls carry its manifest
// (the worker does not read it from storage); a big job's workers read it.
func TestInvokeCarriesSmallManifests(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		name     string
		calls    int
		wantFail bool // the manifest is gone from storage
	}{
		{"small job: manifest carried", 3, false},
		{"big job: manifest read from storage", inlineManifestCalls + 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			ended := map[string]protocol.Status{}
			all := make(chan struct{})
			opts := e.options(1)
			opts.Notify = func(st *protocol.Status) {
				if st.State == protocol.StateRunning {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				ended[st.CallID] = *st
				if len(ended) == tc.calls {
					close(all)
				}
			}
			p, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			job, inv := e.job("pid", "", tc.calls, nil)
			if err := e.st.Delete(context.Background(), "b", protocol.JobKey(job.ExecutorID, job.JobID)); err != nil {
				t.Fatal(err)
			}
			if err := p.Invoke(context.Background(), job, inv); err != nil {
				t.Fatal(err)
			}
			select {
			case <-all:
			case <-time.After(60 * time.Second):
				t.Fatal("calls did not end within 60 s")
			}
			mu.Lock()
			defer mu.Unlock()
			for id, st := range ended {
				if failed := st.State == protocol.StateError; failed != tc.wantFail {
					t.Fatalf("call %s: state %s (%+v), want failed = %v", id, st.State, st.Error, tc.wantFail)
				}
			}
		})
	}
}
