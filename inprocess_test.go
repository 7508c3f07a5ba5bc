package lithops_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/lithops-go/lithops"
)

func TestInProcess(t *testing.T) {
	ctx := ctxT(t)
	e, err := lithops.NewExecutor(ctx, lithops.InProcess(), lithops.WithMaxWorkers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Backend() != "inprocess" || e.Storage().Backend() != "memory" {
		t.Fatalf("backend %s, storage %s", e.Backend(), e.Storage().Backend())
	}
	fs, err := lithops.Map(ctx, e, sumPair, pairs)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fs.Results(ctx); err != nil || fmt.Sprint(got) != "[2 4 6 8]" {
		t.Fatalf("map: %v, %v", got, err)
	}
	r, err := lithops.MapReduce(ctx, e, sumPair, pairs, sumInts)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := r.Result(ctx); err != nil || v != 20 {
		t.Fatalf("map-reduce: %v, %v", v, err)
	}
	bad, err := lithops.Map(ctx, e, misbehave, []string{"error", "panic", "ok"})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{lithops.ErrUser, lithops.ErrPanic, nil} {
		_, err := bad.At(i).Result(ctx)
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("call %d: %v, want %v", i, err, want)
		}
	}
	f, err := lithops.CallAsync(ctx, e, deterministicFailure, failScript{Dir: t.TempDir(), Codes: map[int][]int{0: {-1}}, I: 0}, lithops.WithRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(ctx); err != nil || v != 0 {
		t.Fatalf("retries in process: %v, %v", v, err)
	}
	if s, _ := f.Stats(); s.Attempt != 1 {
		t.Fatalf("succeeded on attempt %d, want 1", s.Attempt)
	}
}
