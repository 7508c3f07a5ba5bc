package worker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/memory"
)

// TestDuplicateExecutionsOneResult: two executions of one call race; both
// report the same final status, and the result it names is the one its
// execution produced.
func TestDuplicateExecutionsOneResult(t *testing.T) {
	ctx := context.Background()
	st := storage.New(memory.New(), "memory", "b")
	st.CreateBucket(ctx, "b")
	var mu sync.Mutex
	produced := map[string]bool{}
	funcs := map[string]*Func{"rnd": {Name: "rnd", Signature: "sig", Call: func(ctx context.Context, c protocol.Codec, in []byte) ([]byte, error) {
		b := make([]byte, 3*protocol.InlineLimit) // big: stored as its own object
		rand.Read(b)
		mu.Lock()
		produced[string(b)] = true
		mu.Unlock()
		return b, nil
	}}}
	w := New("w", st, funcs, nil)
	job := protocol.Job{Version: protocol.Version, ExecutorID: "e", JobID: "j", Function: "rnd", Signature: "sig",
		Registry: protocol.Registry{"rnd": "sig"}, Codec: "gob", Calls: 1, Bucket: "b", Inputs: []protocol.Range{{Offset: 0, Size: 0}}}
	raw, _ := json.Marshal(job)
	st.PutBytes(ctx, "b", protocol.JobKey("e", "j"), raw)
	inv := protocol.Invocation{Version: protocol.Version, Bucket: "b", ExecutorID: "e", JobID: "j", Calls: []protocol.Call{{ID: "00000", HasInput: true}}}
	var wg sync.WaitGroup
	sts := make([]*protocol.Status, 4)
	for i := range sts {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := w.Run(ctx, &inv, inv.Calls[0])
			if err != nil {
				t.Error(err)
			}
			sts[i] = s
		}(i)
	}
	wg.Wait()
	for _, s := range sts[1:] {
		if s.ResultKey != sts[0].ResultKey {
			t.Fatalf("executions report different results: %s vs %s", s.ResultKey, sts[0].ResultKey)
		}
	}
	stored, _ := st.GetBytes(ctx, "b", protocol.StatusKey("e", "j", "00000"))
	var final protocol.Status
	json.Unmarshal(stored, &final)
	if final.ResultKey != sts[0].ResultKey {
		t.Fatalf("stored status names %s", final.ResultKey)
	}
	res, err := st.GetBytes(ctx, "b", final.ResultKey)
	if err != nil || !produced[string(res)] || !bytes.Equal(res, res) {
		t.Fatalf("the final status's result is not one an execution produced: %v", err)
	}
}

// TestGatherFailures: a gathering call whose references are wrong fails as
// a handler error that names the problem; it never runs the function.
func TestGatherFailures(t *testing.T) {
	ctx := context.Background()
	st := storage.New(memory.New(), "memory", "b")
	st.CreateBucket(ctx, "b")
	st.PutBytes(ctx, "b", "r/ok", []byte("12345"))
	ran := false
	funcs := map[string]*Func{
		"sum": {Name: "sum", Signature: "sig",
			Call: func(ctx context.Context, c protocol.Codec, in []byte) ([]byte, error) { return nil, nil },
			CallParts: func(ctx context.Context, c protocol.Codec, parts [][]byte) ([]byte, error) {
				ran = true
				return nil, nil
			}},
		"scalar": {Name: "scalar", Signature: "sig", Call: func(ctx context.Context, c protocol.Codec, in []byte) ([]byte, error) { return nil, nil }},
	}
	w := New("w", st, funcs, nil)
	tests := []struct {
		name, fn, input, want string
	}{
		{"malformed", "sum", `{"parts":`, "not valid JSON"},
		{"missing object", "sum", `{"parts":[{"key":"r/ok","size":5},{"key":"r/gone"}]}`, "read result 1 (r/gone)"},
		{"short object", "sum", `{"parts":[{"key":"r/ok","size":9}]}`, "has 5 bytes, want 9"},
		{"not a slice", "scalar", `{"parts":[]}`, "does not take a slice"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jobID := fmt.Sprintf("R%03d", i)
			job := protocol.Job{Version: protocol.Version, ExecutorID: "e", JobID: jobID, Function: tc.fn, Signature: "sig", Gather: true,
				Registry: protocol.Registry{"sum": "sig", "scalar": "sig"}, Codec: "gob", Calls: 1, Bucket: "b", Inputs: []protocol.Range{{Offset: 0, Size: 0}}}
			w.Registry = job.Registry
			raw, _ := json.Marshal(job)
			st.PutBytes(ctx, "b", protocol.JobKey("e", jobID), raw)
			inv := protocol.Invocation{Version: protocol.Version, Bucket: "b", ExecutorID: "e", JobID: jobID,
				Calls: []protocol.Call{{ID: "00000", HasInput: true, Input: []byte(tc.input)}}}
			s, err := w.Run(ctx, &inv, inv.Calls[0])
			if err != nil {
				t.Fatal(err)
			}
			if s.State != protocol.StateError || s.Error.Kind != protocol.KindHandler || !strings.Contains(s.Error.Message, tc.want) {
				t.Fatalf("status %s %+v; want a handler error containing %q", s.State, s.Error, tc.want)
			}
			if ran {
				t.Fatal("the function ran")
			}
		})
	}
}

// A call's records never contradict each other: a hand-back of an attempt
// that another execution already settled is not written; the final status
// is returned instead.
func TestHandBackAfterFinalNotWritten(t *testing.T) {
	ctx := context.Background()
	st := storage.New(memory.New(), "memory", "b")
	st.CreateBucket(ctx, "b")
	final := &protocol.Status{Version: protocol.Version, ExecutorID: "e", JobID: "M000", CallID: "00000", Attempt: 0, State: protocol.StateSuccess, Result: []byte("x"), HasResult: true}
	if _, err := Record(ctx, st, "b", protocol.StatusKey("e", "M000", "00000"), final); err != nil {
		t.Fatal(err)
	}
	handBack := &protocol.Status{Version: protocol.Version, ExecutorID: "e", JobID: "M000", CallID: "00000", Attempt: 0, State: protocol.StateError,
		Error: &protocol.ErrorRecord{Kind: protocol.KindOOM, Message: "over"}}
	got, err := Record(ctx, st, "b", protocol.AttemptKey("e", "M000", "00000", 0), handBack)
	if err != nil || got.State != protocol.StateSuccess {
		t.Fatalf("hand-back after the final status: %+v, %v", got, err)
	}
	if _, err := st.Head(ctx, "b", protocol.AttemptKey("e", "M000", "00000", 0)); err == nil {
		t.Fatal("a hand-back record was written next to the final status")
	}
}
