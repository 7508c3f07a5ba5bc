package lithops

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
)

var double = Func("double_for_jobs_test", func(ctx context.Context, x int) (int, error) { return 2 * x, nil })

// A finished job's state lives as long as the user's futures of it, not as
// long as the executor: its summary stays, and the job can be read back
// from storage.
func TestFinishedJobsAreReleased(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := config.Default()
	cfg.Lithops.Backend, cfg.Lithops.Storage = "inprocess", "memory"
	e, err := NewExecutor(ctx, WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fs, err := Map(ctx, e, double, []int{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Results(ctx); err != nil {
		t.Fatal(err)
	}
	id := fs.At(0).JobID()
	e.mu.Lock()
	ref := e.jobs[id]
	held := ref.strong != nil
	e.mu.Unlock()
	if held {
		t.Fatal("the executor still holds a finished job")
	}
	if _, alive := e.lookup(id); !alive {
		t.Fatal("the job is forgotten while its futures exist")
	}
	fs = nil
	released := false
	for range 20 { // a weak pointer clears after a GC cycle or two
		runtime.GC()
		if ref.weak.Value() == nil {
			released = true
			break
		}
	}
	if !released {
		t.Fatal("the finished job's state outlived its futures")
	}
	if infos := e.Jobs(); len(infos) != 1 || infos[0].ID != id || infos[0].Done != 3 || infos[0].Calls != 3 {
		t.Fatalf("Jobs after release: %+v", infos)
	}
	again, err := JobFutures[int](e, id)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := again.Results(ctx); err != nil || len(got) != 3 || got[2] != 6 {
		t.Fatalf("results read back: %v, %v", got, err)
	}
	if err := e.Clean(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := JobFutures[int](e, id); err == nil {
		t.Fatal("a cleaned job is still known")
	}
}

// A job whose inputs total at most protocol.InlineLimit carries them in its
// manifest: no inputs object is written, and a call invoked without its
// input (a retry, a rerun) reads it from the manifest.
func TestSmallInputsTravelInTheManifest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := config.Default()
	cfg.Localhost.StorageRoot = t.TempDir()
	e, err := NewExecutor(ctx, WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, tc := range []struct {
		name   string
		inputs []int
		inline bool
	}{
		{"small", []int{1, 2, 3}, true},
		{"over the inline limit", make([]int, 2000), false},
	} {
		fs, err := Map(ctx, e, double, tc.inputs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fs.Results(ctx); err != nil {
			t.Fatal(err)
		}
		id := fs.At(0).JobID()
		_, err = e.st.Head(ctx, e.bucket, protocol.InputsKey(e.id, id))
		if hasObject := err == nil; hasObject == tc.inline {
			t.Errorf("%s: inputs object written = %v", tc.name, hasObject)
		}
		// Rerun every call without its inline input: the worker reads it
		// from the manifest or the inputs object.
		js, _ := e.job(ctx, id)
		inv := protocol.Invocation{Version: protocol.Version, Bucket: e.bucket, ExecutorID: e.id, JobID: id}
		for i := range js.calls {
			js.calls[i].reset(time.Now())
			js.remaining.Add(1)
			inv.Calls = append(inv.Calls, protocol.Call{ID: protocol.CallID(i), Index: i})
			e.st.Delete(ctx, e.bucket, protocol.StatusKey(e.id, id, protocol.CallID(i)))
		}
		e.mu.Lock()
		e.hold(js)
		e.mu.Unlock()
		if err := e.backend.Invoke(ctx, js.job, inv); err != nil {
			t.Fatal(err)
		}
		again := &Futures[int]{list: make([]*Future[int], len(js.calls))}
		for i, c := range js.calls {
			again.list[i] = &Future[int]{c: c}
		}
		got, err := again.Results(ctx)
		if err != nil || len(got) != len(tc.inputs) || got[len(got)-1] != 2*tc.inputs[len(tc.inputs)-1] {
			t.Fatalf("%s: calls without their inline input: %v", tc.name, err)
		}
	}
}

// A released job whose manifest cannot be read back is an error that names
// it; nothing is deleted and the executor still knows the job.
func TestReleasedJobUnreadable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := config.Default()
	cfg.Lithops.Backend, cfg.Lithops.Storage = "inprocess", "memory"
	e, err := NewExecutor(ctx, WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fs, err := Map(ctx, e, double, []int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Results(ctx); err != nil {
		t.Fatal(err)
	}
	id := fs.At(0).JobID()
	e.mu.Lock()
	ref := e.jobs[id]
	e.mu.Unlock()
	fs = nil
	for range 20 {
		runtime.GC()
		if ref.weak.Value() == nil {
			break
		}
	}
	if ref.weak.Value() != nil {
		t.Skip("the job's state was not collected; nothing to read back")
	}
	if err := e.st.PutBytes(ctx, e.bucket, protocol.JobKey(e.id, id), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := JobFutures[int](e, id); err == nil || !strings.Contains(err.Error(), id) {
		t.Fatalf("JobFutures of an unreadable released job: %v", err)
	}
	if _, err := e.st.Head(ctx, e.bucket, protocol.StatusKey(e.id, id, protocol.CallID(1))); err != nil {
		t.Fatalf("a record went: %v", err)
	}
	if infos := e.Jobs(); len(infos) != 1 || infos[0].ID != id {
		t.Fatalf("Jobs after the failed read-back: %+v", infos)
	}
}
