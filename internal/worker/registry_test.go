package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/memory"
)

// TestRegistryTold: a pipe's request may leave out its carried job's
// registry when an earlier request carried it (RegistryTold); the worker
// runs the call as if it were there, compares it by digest, and says how a
// different one differs. A request that leaves out a registry it never
// carried, or leaves it out of no job, is answered with an error, and the
// worker goes on.
func TestRegistryTold(t *testing.T) {
	ctx := context.Background()
	st := storage.New(memory.New(), "memory", "b")
	st.CreateBucket(ctx, "b")
	funcs := runFuncs(os.Stderr)
	w := New("w1", st, funcs, nil)
	same := protocol.Freeze(w.Registry)
	other := cloneRegistry(w.Registry)
	other["ghost"] = "func(context.Context, int) (int, error)"
	ghost := protocol.Freeze(other)

	type step struct {
		reg  *protocol.FrozenRegistry // the job's; nil: no job carried
		told bool                     // the registry is left out
		want string                   // the answer: "ok", or a substring of its error
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"carried, then told", []step{{same, false, "ok"}, {same, true, "ok"}, {same, true, "ok"}}},
		{"told, never carried", []step{{same, true, "no earlier request on this pipe carried"}, {same, false, "ok"}}},
		{"told of no job", []step{{same, false, "ok"}, {nil, true, "carries no job"}, {same, true, "ok"}}},
		{"a different registry, carried then told", []step{
			{ghost, false, `function "ghost" is registered in the client but not in the worker`},
			{ghost, true, `function "ghost" is registered in the client but not in the worker`},
			{same, false, "ok"}, {same, true, "ok"},
		}},
	}
	for ti, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in bytes.Buffer
			for i, s := range tc.steps {
				id := fmt.Sprintf("T%d%02d", ti, i) // a worker keeps the manifests of the jobs it ran
				req := PipeRequest{RegistryTold: s.told, Invocation: protocol.Invocation{Version: protocol.Version, Bucket: "b", ExecutorID: "e", JobID: id,
					Calls: []protocol.Call{{ID: "00000", HasInput: true, Input: []byte("hi")}}}}
				if s.reg != nil {
					job := &protocol.Job{Version: protocol.Version, ExecutorID: "e", JobID: id, Function: "echo", Signature: funcs["echo"].Signature,
						Calls: 1, Bucket: "b", Inputs: make([]protocol.Range, 1)}
					job.SetRegistry(s.reg)
					if s.told {
						job.Registry = nil
					}
					req.Invocation.Job = job
				}
				line, err := json.Marshal(req)
				if err != nil {
					t.Fatal(err)
				}
				in.Write(append(line, '\n'))
			}
			var out bytes.Buffer
			if err := ServePipe(ctx, w, &in, &out); err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(&out)
			for i, s := range tc.steps {
				var resp PipeResponse
				if err := dec.Decode(&resp); err != nil {
					t.Fatalf("answer %d: %v", i, err)
				}
				msg := resp.Error
				if st := resp.Status; msg == "" && st != nil && st.Error != nil {
					msg = st.Error.Message
				}
				switch {
				case s.want == "ok" && (msg != "" || resp.Status == nil || string(resp.Status.Result) != "hi"):
					t.Fatalf("answer %d: %+v (%s), want the result", i, resp, msg)
				case s.want != "ok" && !strings.Contains(msg, s.want):
					t.Fatalf("answer %d: %+v (%s), want an error with %q", i, resp, msg, s.want)
				}
			}
		})
	}
}

// TestToldRegistriesBounded: a pipe's worker keeps the last few
// registries carried, not every one a confused client sends.
func TestToldRegistriesBounded(t *testing.T) {
	var told toldRegistries
	var first string
	for i := range maxTold + 3 {
		f := protocol.Freeze(protocol.Registry{fmt.Sprintf("f%d", i): "sig"})
		job := &protocol.Job{}
		job.SetRegistry(f)
		if err := told.fill(job, false); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = f.Digest()
		}
	}
	if len(told.digests) != maxTold || len(told.regs) != maxTold {
		t.Fatalf("%d registries kept, want %d", len(told.digests), maxTold)
	}
	if err := told.fill(&protocol.Job{RegistryDigest: first}, true); err == nil {
		t.Fatal("the oldest registry is still told")
	}
}
