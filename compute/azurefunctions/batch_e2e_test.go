package azurefunctions_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/internal/azure/naming"
	"github.com/lithops-go/lithops/internal/azure/queues"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
)

// napCount notes each execution of call I in a file of its own, then
// naps: how many times each call ran is visible to the test.
var napCount = lithops.Func("af_nap_count", func(ctx context.Context, in struct {
	Dir string
	I   int
	Nap time.Duration
}) (int, error) {
	f, err := os.OpenFile(filepath.Join(in.Dir, fmt.Sprint(in.I)), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	f.Write([]byte("x"))
	f.Close()
	time.Sleep(in.Nap)
	return in.I, nil
})

// statuses reads the job's final statuses, by call (own records and block
// records), each as JSON; a call with a final status in two places fails
// the test.
func statuses(ctx context.Context, t *testing.T, ex *lithops.Executor, jobID string) map[string][]byte {
	t.Helper()
	st := ex.Storage()
	finals, twice, err := worker.Finals(ctx, st, st.Bucket(), ex.ID(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	if len(twice) > 0 {
		t.Fatalf("calls %v have a second final status", twice)
	}
	out := make(map[string][]byte, len(finals))
	for c, s := range finals {
		out[c], _ = json.Marshal(s)
	}
	return out
}

// TestBatchedDuplicateMessage: every message of a batched map is
// delivered a second time, as a first delivery (the client's send
// retried): the duplicate runs its calls again (a first delivery reads no
// statuses), and each call still has one status, the first, which the
// client got.
func TestBatchedDuplicateMessage(t *testing.T) {
	e := startRuntime(t, 2)
	ex := newExecutor(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n, chunk = 24, 8
	in := make([]int, n)
	for i := range in {
		in[i] = i
	}
	fs, err := lithops.Map(ctx, ex, addSeven, in, lithops.WithChunkSize(chunk))
	if err != nil {
		t.Fatal(err)
	}
	jobID := fs.At(0).JobID()
	// The same invocations again, built as Invoke does, while the first
	// ones run.
	st := ex.Storage()
	raw, err := st.GetBytes(ctx, st.Bucket(), protocol.JobKey(ex.ID(), jobID))
	if err != nil {
		t.Fatal(err)
	}
	var job protocol.Job
	if err := json.Unmarshal(raw, &job); err != nil {
		t.Fatal(err)
	}
	svc, err := queues.NewService(e.cfg.AzureStorage)
	if err != nil {
		t.Fatal(err)
	}
	before := e.double.Stats().Succeeded
	for i := 0; i < n; i += chunk {
		inv := protocol.Invocation{Version: protocol.Version, Bucket: st.Bucket(), ExecutorID: ex.ID(), JobID: jobID,
			Program: job.Program, ResultQueue: naming.ResultQueue(ex.ID())}
		for c := i; c < i+chunk; c++ {
			inv.Calls = append(inv.Calls, protocol.Call{ID: protocol.CallID(c), Index: c})
		}
		msg, _ := json.Marshal(inv)
		if _, err := svc.NewQueueClient(e.names.Queue).EnqueueMessage(ctx, base64.StdEncoding.EncodeToString(msg), nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := fs.Results(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantAddSeven(t, got)
	first := statuses(ctx, t, ex, jobID)
	if len(first) != n {
		t.Fatalf("%d status records, want %d", len(first), n)
	}
	// Every message, originals and duplicates, answered 2xx.
	for e.double.Stats().Succeeded < before+2*n/chunk {
		if ctx.Err() != nil {
			t.Fatalf("the duplicates were not all run: %+v", e.double.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	after := statuses(ctx, t, ex, jobID)
	for k, v := range first {
		if !bytes.Equal(after[k], v) {
			t.Fatalf("status %s changed after a duplicate delivery:\n%s\n%s", k, v, after[k])
		}
	}
	if len(after) != n {
		t.Fatalf("%d status records after the duplicates, want %d", len(after), n)
	}
}

// TestBatchedHostKilledMidBatch: the handler running a message of eight
// calls, two at a time, is killed after some of them are recorded. The
// message comes back (a redelivery): the calls recorded are not run
// again, the others are, and every call has its result.
func TestBatchedHostKilledMidBatch(t *testing.T) {
	e := startRuntime(t, 1)
	ex := newExecutor(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	type input = struct {
		Dir string
		I   int
		Nap time.Duration
	}
	dir := t.TempDir()
	const n = 8
	in := make([]input, n)
	for i := range in {
		in[i] = input{Dir: dir, I: i, Nap: time.Second}
	}
	fs, err := lithops.Map(ctx, ex, napCount, in, lithops.WithChunkSize(n))
	if err != nil {
		t.Fatal(err)
	}
	jobID := fs.At(0).JobID()
	var recorded map[string][]byte
	for {
		if recorded = statuses(ctx, t, ex, jobID); len(recorded) >= 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no call of the batch was recorded")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(recorded) == n {
		t.Fatal("the whole batch ended before the kill")
	}
	e.double.Kill(0)
	got, err := fs.Results(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("result %d = %d", i, v)
		}
	}
	if s := e.double.Stats(); s.Restarts == 0 || s.Failed == 0 {
		t.Fatalf("the killed invocation was not failed and redelivered: %+v", s)
	}
	for call := range recorded {
		var idx int
		fmt.Sscan(call, &idx)
		b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprint(idx)))
		if len(b) != 1 {
			t.Errorf("call %s was recorded before the kill but ran %d times", call, len(b))
		}
	}
	statuses(ctx, t, ex, jobID) // one final status a call
}

// TestCompletionQueueLost: no completion message reaches the client (its
// queue is gone, pushes fail): the storage poll finds every status.
func TestCompletionQueueLost(t *testing.T) {
	e := startRuntime(t, 2)
	ex := newExecutor(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc, err := queues.NewService(e.cfg.AzureStorage)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DeleteQueue(ctx, naming.ResultQueue(ex.ID()), nil); err != nil {
		t.Fatal(err)
	}
	mapAddSeven(ctx, t, ex, 40)
}
