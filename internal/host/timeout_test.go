package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/memory"
)

// stuckProgram writes a "user program" that never answers a call, compiled
// into the host as a custom runtime's is, and returns its path and hash.
func stuckProgram(t *testing.T) (string, string) {
	return shProgram(t, "stuck", "exec sleep 120")
}

// shProgram writes a shell script with body as a worker program and
// returns its path and hash.
func shProgram(t *testing.T, name, body string) (string, string) {
	t.Helper()
	prog := []byte("#!/bin/sh\n" + body + "\n")
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, prog, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(prog)
	return path, hex.EncodeToString(sum[:])
}

// putJob stores the manifest of job e/j with n calls.
func putJob(t *testing.T, st *storage.Storage, sha string, timeout float64, n int) *protocol.Invocation {
	t.Helper()
	job := protocol.Job{Version: protocol.Version, ExecutorID: "e", JobID: "j", Function: "f", Calls: n,
		Inputs: make([]protocol.Range, n), Timeout: timeout, Bucket: "b", Program: sha}
	raw, _ := json.Marshal(job)
	if err := st.PutBytes(context.Background(), "b", protocol.JobKey("e", "j"), raw); err != nil {
		t.Fatal(err)
	}
	inv := &protocol.Invocation{Version: protocol.Version, Bucket: "b", ExecutorID: "e", JobID: "j", Program: sha}
	for i := 0; i < n; i++ {
		inv.Calls = append(inv.Calls, protocol.Call{ID: protocol.CallID(i)})
	}
	return inv
}

// TestCallTimeoutCappedBelowFunctionTimeout: on a runtime whose function
// timeout is 8 s, a call of a job with a 60-s timeout is killed at 3 s
// (8 − 5) and recorded as a timeout, before the platform would kill the
// whole handler.
func TestCallTimeoutCappedBelowFunctionTimeout(t *testing.T) {
	st := storage.New(memory.New(), "memory", "b")
	st.CreateBucket(context.Background(), "b")
	path, sha := stuckProgram(t)
	h, err := New(Options{Storage: st, CacheDir: t.TempDir(), Workers: 1, CompiledPath: path, CompiledSHA: sha,
		Meta: protocol.RuntimeMeta{TimeoutS: 8}, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	inv := putJob(t, st, sha, 60, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := h.Run(ctx, inv); err != nil {
		t.Fatalf("run: %v (after %v)", err, time.Since(start))
	}
	took := time.Since(start)
	raw, err := st.GetBytes(context.Background(), "b", protocol.StatusKey("e", "j", inv.Calls[0].ID))
	var s protocol.Status
	if err != nil || json.Unmarshal(raw, &s) != nil || s.Error == nil || s.Error.Kind != protocol.KindTimeout {
		t.Fatalf("status %s, %v; want a recorded timeout", raw, err)
	}
	if !strings.Contains(s.Error.Message, "3s") || took > 7*time.Second {
		t.Fatalf("call ended after %v with %q; want killed at its timeout capped to 3s", took, s.Error.Message)
	}
}

func TestCallTimeoutCap(t *testing.T) {
	for _, tc := range []struct {
		timeoutS int
		want     time.Duration
	}{{0, 0}, {5, 0}, {6, time.Second}, {300, 295 * time.Second}} {
		if got := CallTimeoutCap(tc.timeoutS); got != tc.want {
			t.Errorf("CallTimeoutCap(%d) = %v, want %v", tc.timeoutS, got, tc.want)
		}
	}
	h := &Host{opts: Options{Meta: protocol.RuntimeMeta{TimeoutS: 300}, Logger: discard()}}
	for _, tc := range []struct{ in, want float64 }{{10, 10}, {295, 295}, {600, 295}, {0, 295}} {
		if got := h.capTimeout(&protocol.Job{Timeout: tc.in}).Timeout; got != tc.want {
			t.Errorf("job timeout %v on a 300-s runtime: %v, want %v", tc.in, got, tc.want)
		}
	}
}
