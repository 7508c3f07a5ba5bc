package procpool

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
)

// TestSendTellsRegistryOnce: a worker that said Hello with Registry is sent
// a carried job's registry once; later requests with the same registry
// leave it out (RegistryTold), a different one goes in full, and a worker
// that did not say so always gets it.
func TestSendTellsRegistryOnce(t *testing.T) {
	a := protocol.Freeze(protocol.Registry{"pid": "func(string) string"})
	b := protocol.Freeze(protocol.Registry{"pid": "func(string) string", "env": "func(string) string"})
	tests := []struct {
		name  string
		hello bool
		regs  []*protocol.FrozenRegistry
		told  []bool
	}{
		{"told once", true, []*protocol.FrozenRegistry{a, a, a}, []bool{false, true, true}},
		{"a different registry in full", true, []*protocol.FrozenRegistry{a, b, b, a}, []bool{false, false, true, false}},
		{"a worker that did not say Registry", false, []*protocol.FrozenRegistry{a, a}, []bool{false, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, wr, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			w := &proc{req: wr, enc: json.NewEncoder(wr)}
			w.registry.Store(tc.hello)
			jobs := make([]*protocol.Job, len(tc.regs))
			for i, f := range tc.regs {
				jobs[i] = &protocol.Job{Version: protocol.Version, ExecutorID: "e", JobID: "A000", Function: "pid"}
				jobs[i].SetRegistry(f)
				if err := w.send(worker.PipeRequest{Invocation: protocol.Invocation{Job: jobs[i]}}); err != nil {
					t.Fatal(err)
				}
			}
			wr.Close()
			var out bytes.Buffer
			out.ReadFrom(r)
			dec := json.NewDecoder(&out)
			for i, f := range tc.regs {
				var req worker.PipeRequest
				if err := dec.Decode(&req); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				j := req.Invocation.Job
				switch {
				case req.RegistryTold != tc.told[i]:
					t.Fatalf("request %d: told %v, want %v", i, req.RegistryTold, tc.told[i])
				case j.RegistryDigest != f.Digest():
					t.Fatalf("request %d: digest %q, want %q", i, j.RegistryDigest, f.Digest())
				case tc.told[i] && j.Registry != nil:
					t.Fatalf("request %d: told, yet carries %v", i, j.Registry)
				case !tc.told[i] && j.Registry.Digest() != f.Digest():
					t.Fatalf("request %d: carries %v, want %v", i, j.Registry, f.Registry())
				}
				if jobs[i].Registry == nil {
					t.Fatalf("request %d: send left the registry out of the caller's job", i)
				}
			}
		})
	}
}

// broken fails every write.
type broken struct{}

func (broken) Write(p []byte) (int, error) { return 0, errors.New("pipe broken") }

// TestSendFailedTellsNothing: a registry whose request was not sent is
// not told (a worker whose pipe broke is replaced, and its successor is
// told afresh anyway).
func TestSendFailedTellsNothing(t *testing.T) {
	w := &proc{enc: json.NewEncoder(broken{})}
	w.registry.Store(true)
	job := &protocol.Job{Version: protocol.Version, ExecutorID: "e", JobID: "A000", Function: "pid"}
	job.SetRegistry(protocol.Freeze(protocol.Registry{"pid": "func(string) string"}))
	if err := w.send(worker.PipeRequest{Invocation: protocol.Invocation{Job: job}}); err == nil {
		t.Fatal("send on a broken pipe: no error")
	}
	if w.told != "" {
		t.Fatalf("told %q after a send that failed", w.told)
	}
}
