package lithops_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
)

// failScript is Lithops' deterministic_failure input: per input, the codes
// of its successive invocations; code c ≥ 0 sleeps c seconds and succeeds,
// c < 0 sleeps -c seconds and fails. Invocations are counted in files.
type failScript struct {
	Dir   string
	Codes map[int][]int
	I     int
}

var deterministicFailure = lithops.Func("deterministic_failure", func(ctx context.Context, s failScript) (int, error) {
	path := filepath.Join(s.Dir, strconv.Itoa(s.I))
	b, _ := os.ReadFile(path)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := os.WriteFile(path, []byte(strconv.Itoa(n+1)), 0o644); err != nil {
		return 0, err
	}
	codes := s.Codes[s.I]
	if n < len(codes) {
		c := codes[n]
		if c >= 0 {
			time.Sleep(time.Duration(c) * time.Second)
			return s.I, nil
		}
		time.Sleep(time.Duration(-c) * time.Second)
		return 0, fmt.Errorf("RuntimeError: deterministic failure of input %d, invocation %d", s.I, n)
	}
	return s.I, nil
})

// runRetries is Lithops' run_test: a map over range(3) with timeout 5 s and
// 2 retries; it returns the set of results, the invocation counts and the
// first error.
func runRetries(t *testing.T, e *lithops.Executor, codes map[int][]int) (map[int]bool, map[int]int, error) {
	ctx := ctxT(t)
	dir := t.TempDir()
	in := make([]failScript, 3)
	for i := range in {
		in[i] = failScript{Dir: dir, Codes: codes, I: i}
	}
	fs, err := lithops.Map(ctx, e, deterministicFailure, in, lithops.WithTimeout(5*time.Second), lithops.WithRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := lithops.Wait(ctx, fs); err != nil || p.Done != 3 {
		t.Fatalf("wait: %+v, %v", p, err)
	}
	out := map[int]bool{}
	var first error
	for i := range in {
		v, err := fs.At(i).Result(ctx)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		out[v] = true
	}
	counts := map[int]int{}
	for i := range in {
		b, _ := os.ReadFile(filepath.Join(dir, strconv.Itoa(i)))
		counts[i], _ = strconv.Atoi(string(b))
	}
	return out, counts, first
}

func TestRetries(t *testing.T) {
	if testing.Short() {
		t.Skip("sleeps up to 10 s")
	}
	e := newExecutor(t, lithops.WithMaxWorkers(3))
	expected := func(codes map[int][]int, retries int) map[int]int {
		want := map[int]int{}
		for i := 0; i < 3; i++ {
			want[i] = min(len(codes[i])+1, retries+1)
		}
		return want
	}
	success := []map[int][]int{
		{},
		{0: {-1}, 1: {-1}, 2: {-1}},
		{0: {-1, -1}, 1: {-1, -1}, 2: {-1, -1}},
		{0: {20}}, // the first run exceeds the 5 s timeout, is killed and retried
	}
	for _, codes := range success {
		t.Run(fmt.Sprint("success ", codes), func(t *testing.T) {
			out, counts, err := runRetries(t, e, codes)
			if err != nil || fmt.Sprint(out) != "map[0:true 1:true 2:true]" {
				t.Fatalf("results %v, %v; want {0,1,2}", out, err)
			}
			if want := expected(codes, 2); fmt.Sprint(counts) != fmt.Sprint(want) {
				t.Fatalf("invocation counts %v, want %v", counts, want)
			}
		})
	}
	t.Run("failure", func(t *testing.T) {
		codes := map[int][]int{0: {-1}, 1: {-1}, 2: {-1, -1, -1}}
		_, counts, err := runRetries(t, e, codes)
		if !errors.Is(err, lithops.ErrUser) || !strings.Contains(err.Error(), "RuntimeError") {
			t.Fatalf("got %v, want the user's RuntimeError from the exhausted call", err)
		}
		var ce *lithops.CallError
		if errors.As(err, &ce); ce.Attempt != 2 {
			t.Errorf("the error is from attempt %d, want 2 (the third)", ce.Attempt)
		}
		if fmt.Sprint(counts) != "map[0:2 1:2 2:3]" {
			t.Fatalf("invocation counts %v, want {0:2, 1:2, 2:3}", counts)
		}
	})
}

func TestMemoryEscalation(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector inflates the workers' memory past the 512 MiB step")
	}
	ctx := ctxT(t)
	e := newExecutor(t, lithops.WithMaxWorkers(1))
	// 400 MiB resident: over 128 and 256 MiB, under 512 MiB.
	f, err := lithops.CallAsync(ctx, e, misbehave, "hog", lithops.WithMemory(128), lithops.WithRetries(2), lithops.WithMemoryEscalation())
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.Result(ctx)
	if err != nil || v != fmt.Sprint(400<<20) {
		t.Fatalf("got %q, %v", v, err)
	}
	if s, _ := f.Stats(); s.Attempt != 2 {
		t.Fatalf("succeeded on attempt %d, want 2 (128 → 256 → 512 MiB)", s.Attempt)
	}
}
