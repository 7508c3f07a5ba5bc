package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/procpool"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/driver"
	"github.com/lithops-go/lithops/storage/localfs"
)

// The test binary is also a worker program (procpool.WorkerEnv): the
// host's pool runs it with the functions below on a localfs storage whose
// root comes on procpool.ConfigFD.
func TestMain(m *testing.M) {
	if os.Getenv(procpool.WorkerEnv) == "localhost" {
		if err := serveTestWorker(); err != nil {
			fmt.Fprintln(os.Stderr, "test worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testFuncs: inputs are plain strings; "fail" fails, "sleep:D" sleeps D,
// "exit" kills the worker; anything else is echoed.
var testFuncs = map[string]*worker.Func{
	"f": {Name: "f", Signature: "func(string) string", Call: func(ctx context.Context, _ protocol.Codec, in []byte) ([]byte, error) {
		s := string(in)
		switch {
		case s == "fail":
			return nil, errors.New("told to fail")
		case s == "exit":
			os.Exit(3)
		case strings.HasPrefix(s, "sleep:"):
			d, _ := time.ParseDuration(strings.TrimPrefix(s, "sleep:"))
			time.Sleep(d)
		}
		return in, nil
	}},
}

func serveTestWorker() error {
	raw, err := io.ReadAll(os.NewFile(procpool.ConfigFD, "config"))
	if err != nil {
		return err
	}
	st, err := localStorage(string(raw))
	if err != nil {
		return err
	}
	w := worker.New(os.Getenv("LITHOPS_WORKER_ID"), st, testFuncs, nil)
	return worker.ServePipe(context.Background(), w, os.NewFile(3, "requests"), os.NewFile(4, "responses"))
}

func localStorage(root string) (*storage.Storage, error) {
	d, err := localfs.New(root)
	if err != nil {
		return nil, err
	}
	st := storage.New(d, "localhost", "b")
	return st, st.CreateBucket(context.Background(), "b")
}

// blockHost is a host whose program is this test binary, on a localfs
// storage it shares with its workers.
func blockHost(t *testing.T, workers int) (*Host, *storage.Storage) {
	t.Helper()
	root := t.TempDir()
	st, err := localStorage(root)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Storage: st, CacheDir: t.TempDir(), Workers: workers, CompiledPath: exe, CompiledSHA: "test",
		WorkerConfig: []byte(root), Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, st
}

// blockJob stores the manifest of a job with blocks of block calls, one
// call per input, and returns an invocation of all its calls.
func blockJob(t *testing.T, st *storage.Storage, block int, inputs ...string) *protocol.Invocation {
	t.Helper()
	n := len(inputs)
	job := protocol.Job{Version: protocol.Version, ExecutorID: "e", JobID: "j", Function: "f", Signature: "func(string) string",
		Registry: protocol.Registry{"f": "func(string) string"}, Calls: n, Inputs: make([]protocol.Range, n), Timeout: 30,
		Bucket: "b", Program: "test", Block: block}
	raw, _ := json.Marshal(job)
	if err := st.PutBytes(context.Background(), "b", protocol.JobKey("e", "j"), raw); err != nil {
		t.Fatal(err)
	}
	inv := &protocol.Invocation{Version: protocol.Version, Bucket: "b", ExecutorID: "e", JobID: "j", Program: "test"}
	for i, in := range inputs {
		inv.Calls = append(inv.Calls, protocol.Call{ID: protocol.CallID(i), Index: i, HasInput: true, Input: []byte(in)})
	}
	return inv
}

// records lists the job's status keys (under status.) and every call's
// final status, failing the test when a call has two.
func records(t *testing.T, st *storage.Storage) (keys []string, finals map[string]protocol.Status) {
	t.Helper()
	ctx := context.Background()
	finals, twice, err := worker.Finals(ctx, st, "b", "e", "j")
	if err != nil {
		t.Fatal(err)
	}
	if len(twice) > 0 {
		t.Fatalf("calls %v have a second final status", twice)
	}
	// Listed after: records are never deleted, so every key that held the
	// statuses read is there (a record written meanwhile may be too).
	infos, err := st.List(ctx, "b", protocol.StatusPrefix("e", "j"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range infos {
		keys = append(keys, strings.TrimPrefix(o.Key, protocol.StatusPrefix("e", "j")))
	}
	return keys, finals
}

// TestHostRecordsBlocks: the host records the successes of a job with
// blocks a block at a time (one object for each block of the delivery),
// a failure on its own beside its block's record, a block whose slow call
// holds it past BlockDelay without that call (which then gets its own
// record); a redelivery reads the block records and runs nothing again.
func TestHostRecordsBlocks(t *testing.T) {
	tests := []struct {
		name     string
		block    int
		inputs   []string
		wantKeys string
		wantErr  []string // calls that end failed
	}{
		{name: "whole blocks", block: 4, inputs: []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"},
			wantKeys: "00000-0.json 00004-0.json 00008-0.json"},
		{name: "a failure", block: 4, inputs: []string{"a", "fail", "c", "d", "e"},
			wantKeys: "00000-0.json 00001.json 00004-0.json", wantErr: []string{"00001"}},
		{name: "a slow call", block: 4, inputs: []string{"a", "b", "sleep:2.5s", "d"},
			wantKeys: "00000-0.json 00002.json"},
		{name: "a worker that dies", block: 4, inputs: []string{"a", "b", "exit", "d"},
			wantKeys: "00000-0.json 00002.json", wantErr: []string{"00002"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, st := blockHost(t, 2)
			inv := blockJob(t, st, tc.block, tc.inputs...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := h.Run(ctx, inv); err != nil {
				t.Fatal(err)
			}
			keys, finals := records(t, st)
			if got := strings.Join(keys, " "); got != tc.wantKeys {
				t.Fatalf("status records %q, want %q", got, tc.wantKeys)
			}
			if len(finals) != len(tc.inputs) {
				t.Fatalf("%d calls recorded, want %d", len(finals), len(tc.inputs))
			}
			for i, in := range tc.inputs {
				s := finals[protocol.CallID(i)]
				failed := strings.Contains(strings.Join(tc.wantErr, " "), s.CallID)
				switch {
				case failed && s.State != protocol.StateError:
					t.Fatalf("call %s: %+v, want a failure", s.CallID, s)
				case !failed && (s.State != protocol.StateSuccess || string(s.Result) != in):
					t.Fatalf("call %s: %+v, want %q", s.CallID, s, in)
				}
			}
			// The same message again: every call is found recorded.
			logs, err := h.Run(ctx, inv)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("%d call(s) already recorded; not run again", len(tc.inputs)); len(logs) == 0 || logs[0] != want {
				t.Fatalf("redelivery: %q, want %q", logs, want)
			}
			if again, _ := records(t, st); strings.Join(again, " ") != tc.wantKeys {
				t.Fatalf("records after the redelivery: %q", again)
			}
		})
	}
}

// failingPuts fails writes of keys containing key while on is set.
type failingPuts struct {
	driver.Driver
	key string
	on  atomic.Bool
}

func (d *failingPuts) Put(ctx context.Context, bucket, key string, r io.Reader, opts driver.PutOptions) error {
	if d.on.Load() && strings.Contains(key, d.key) {
		return errors.New("injected write failure")
	}
	return d.Driver.Put(ctx, bucket, key, r, opts)
}

// TestHostBlockNotWritten: when a block record cannot be written, the
// delivery fails (the message comes back) with each call's outcome kept
// as unrecorded, and on the last delivery giveUp records those outcomes,
// results included, each in its own record behind a fence: nothing that
// ran is lost or turned into a failure.
func TestHostBlockNotWritten(t *testing.T) {
	root := t.TempDir()
	local, err := localStorage(root)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := localfs.New(root)
	faulty := &failingPuts{Driver: d, key: "/status."}
	faulty.on.Store(true)
	st := storage.New(faulty, "localhost", "b")
	exe, _ := os.Executable()
	h, err := New(Options{Storage: st, CacheDir: t.TempDir(), Workers: 2, CompiledPath: exe, CompiledSHA: "test",
		WorkerConfig: []byte(root), Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	inputs := []string{"a", "b", "c", "d"}
	inv := blockJob(t, local, 4, inputs...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	settled := map[string]*protocol.Status{}
	_, err = h.run(ctx, inv, settled, false)
	if err == nil || !strings.Contains(err.Error(), "4 call(s) finished but their status could not be written") {
		t.Fatalf("run: %v, want the calls unrecorded", err)
	}
	if keys, _ := records(t, local); len(keys) != 0 {
		t.Fatalf("records %v after a failed block write", keys)
	}
	for i, in := range inputs {
		s := settled[protocol.CallID(i)]
		if s == nil || !s.Unrecorded || s.State != protocol.StateSuccess || string(s.Result) != in {
			t.Fatalf("call %d settled as %+v, want its unrecorded success %q", i, s, in)
		}
	}
	faulty.on.Store(false)
	if err := h.giveUp(ctx, inv, settled, "last delivery"); err != nil {
		t.Fatal(err)
	}
	keys, finals := records(t, local)
	if got := strings.Join(keys, " "); got != "00000-0.json 00000.json 00001.json 00002.json 00003.json" {
		t.Fatalf("records %q, want a fence and a record a call", got)
	}
	for i, in := range inputs {
		if s := finals[protocol.CallID(i)]; s.State != protocol.StateSuccess || string(s.Result) != in {
			t.Fatalf("call %d recorded as %+v, want %q", i, s, in)
		}
	}
}

// TestHostOrphanOutcome: a deferred outcome that reaches the host after
// its delivery stopped waiting (a deadline between the worker's answer and
// the host's next round) is recorded, in its own record behind its
// block's fence, not lost; one of a job the host does not know is left.
func TestHostOrphanOutcome(t *testing.T) {
	h, st := blockHost(t, 1)
	inv := blockJob(t, st, 4, "a", "b")
	job, err := h.job(context.Background(), inv)
	if err != nil {
		t.Fatal(err)
	}
	s := &protocol.Status{Version: protocol.Version, ExecutorID: job.ExecutorID, JobID: job.JobID, CallID: "00001",
		WorkerID: "w", State: protocol.StateSuccess, HasResult: true, Result: []byte("b"), Deferred: true}
	unknown := *s
	unknown.JobID = "other"
	h.deliver(&unknown)
	h.deliver(s)
	deadline := time.Now().Add(10 * time.Second)
	for {
		keys, finals := records(t, st)
		if len(finals) == 1 {
			if got := strings.Join(keys, " "); got != "00000-0.json 00001.json" {
				t.Fatalf("records %q, want a fence and the call's record", got)
			}
			if f := finals["00001"]; f.State != protocol.StateSuccess || string(f.Result) != "b" {
				t.Fatalf("recorded %+v", f)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outcome was not recorded: records %v", keys)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if infos, _ := st.List(context.Background(), "b", protocol.JobPrefix("e", "other")); len(infos) != 0 {
		t.Fatalf("records of an unknown job: %v", infos)
	}
}

// TestHostOrphanOutcomeAfterManyJobs: the host's manifest cache is bounded,
// but a job whose delivery just ended is still known when its late outcome
// arrives, however many other jobs came between (up to the cache's bound):
// the outcome is recorded, not dropped.
func TestHostOrphanOutcomeAfterManyJobs(t *testing.T) {
	h, st := blockHost(t, 1)
	ctx := context.Background()
	inv := blockJob(t, st, 4, "a", "b")
	if _, err := h.job(ctx, inv); err != nil {
		t.Fatal(err)
	}
	for i := range jobCacheSize + 1 {
		other := protocol.Job{Version: protocol.Version, ExecutorID: "e", JobID: fmt.Sprintf("o%04d", i), Function: "f",
			Calls: 1, Inputs: make([]protocol.Range, 1), Bucket: "b"}
		raw, _ := json.Marshal(other)
		if err := st.PutBytes(ctx, "b", protocol.JobKey("e", other.JobID), raw); err != nil {
			t.Fatal(err)
		}
		if _, err := h.job(ctx, &protocol.Invocation{Bucket: "b", ExecutorID: "e", JobID: other.JobID}); err != nil {
			t.Fatal(err)
		}
	}
	h.deliver(&protocol.Status{Version: protocol.Version, ExecutorID: "e", JobID: "j", CallID: "00001",
		WorkerID: "w", State: protocol.StateSuccess, HasResult: true, Result: []byte("b"), Deferred: true})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, finals := records(t, st); len(finals) == 1 && string(finals["00001"].Result) == "b" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the late outcome of a job seen before many others was not recorded")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHostRedeliveryPushesSettled: a redelivery finds calls recorded — in
// a block record, or in their own record, as a handler error a delivery
// that gave up wrote at attempt 0 of a job with retries — and pushes them
// Settled, so that the client ends those calls with them instead of
// taking the failure for a hand-back and running the call again.
func TestHostRedeliveryPushesSettled(t *testing.T) {
	h, st := blockHost(t, 1)
	rp := &recordingPusher{}
	h.opts.Pusher = rp
	inv := blockJob(t, st, 4, "a", "b", "c", "d", "e")
	inv.ResultQueue = "results"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gaveUp := protocol.Failed("e", "j", inv.Calls[4], protocol.KindHandler, "delivery", "given up")
	raw, _ := json.Marshal(gaveUp)
	if err := st.PutBytes(ctx, "b", protocol.StatusKey("e", "j", inv.Calls[4].ID), raw); err != nil {
		t.Fatal(err)
	}
	blockKey, _ := protocol.BlockKey("e", "j", "00004", 4)
	fence, _ := json.Marshal(protocol.StatusBatch{Version: protocol.Version, Block: 4, Fence: true})
	if err := st.PutBytes(ctx, "b", blockKey, fence); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Run(ctx, inv); err != nil { // runs calls 0 to 3; call 4 is recorded
		t.Fatal(err)
	}
	rp.mu.Lock()
	rp.msgs = nil
	rp.mu.Unlock()
	if _, err := h.Run(ctx, inv); err != nil { // the redelivery
		t.Fatal(err)
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	pushed := map[string]protocol.Status{}
	for _, m := range rp.msgs {
		var sts []protocol.Status
		if err := json.Unmarshal(m, &sts); err != nil {
			t.Fatal(err)
		}
		for _, s := range sts {
			pushed[s.CallID] = s
		}
	}
	if len(pushed) != 5 {
		t.Fatalf("the redelivery pushed %d statuses, want 5", len(pushed))
	}
	for id, s := range pushed {
		if !s.Settled || !protocol.Final(&s, 2) {
			t.Errorf("call %s pushed %s attempt %d, settled %v: the client would not take it as final", id, s.State, s.Attempt, s.Settled)
		}
	}
}
