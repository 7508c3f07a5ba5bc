package lithops

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/lithops-go/lithops/config"
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
