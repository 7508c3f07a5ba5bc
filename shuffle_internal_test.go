package lithops

import (
	"context"
	"iter"
	"math"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
)

var (
	dupMapper = MapperFunc("test_dup_map", func(ctx context.Context, n int, emit func(int, int)) error {
		for i := range n {
			emit(i%10, 1)
		}
		return nil
	})
	dupReducer = ReducerFunc("test_dup_reduce", func(ctx context.Context, k int, vs iter.Seq[int]) (int, error) {
		t := 0
		for v := range vs {
			t += v
		}
		return t, nil
	})
)

// TestShuffleDuplicateMapper delivers a mapper call a second time after it
// finished, as an at-least-once queue may: the duplicate execution writes
// segments of its own, and the reducers, which read only what the final
// status names, count every pair once.
func TestShuffleDuplicateMapper(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := config.Default()
	cfg.Localhost.StorageRoot = t.TempDir()
	e, err := NewExecutor(ctx, WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	duplicated := 0
	testHookShuffleMapped = func(mjs *jobState) {
		defer func() { testHookShuffleMapped = nil }()
		inv := protocol.Invocation{Version: protocol.Version, Bucket: mjs.job.Bucket, ExecutorID: e.id, JobID: mjs.job.JobID,
			Calls: []protocol.Call{{ID: protocol.CallID(0), Index: 0}}}
		if err := e.backend.Invoke(ctx, mjs.job, inv); err != nil {
			t.Errorf("duplicate delivery: %v", err)
			return
		}
		// Wait for the duplicate's segment object (a condition, polled).
		prefix := protocol.JobPrefix(e.id, mjs.job.JobID) + "shuffle/" + protocol.CallID(0) + "-"
		for ctx.Err() == nil {
			objs, err := e.st.List(ctx, e.bucket, prefix)
			if err == nil && len(objs) == 2 {
				duplicated = len(objs)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	defer func() { testHookShuffleMapped = nil }()
	sh, err := MapShuffle(ctx, e, dupMapper, []int{1000, 500, 300}, dupReducer, Reducers(3))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range sh.All(ctx) {
		total += n
	}
	if err := sh.Err(); err != nil {
		t.Fatal(err)
	}
	if duplicated != 2 {
		t.Fatalf("the duplicate execution wrote no segment object of its own (%d objects)", duplicated)
	}
	if total != 1800 {
		t.Errorf("reducers counted %d pairs, want 1800 (a duplicate's pairs were read: %v)", total, total > 1800)
	}
	stats, _ := sh.Stats(ctx)
	if !strings.HasPrefix(stats.MapJob, "M") {
		t.Errorf("map job %q", stats.MapJob)
	}
}

// withFanIn sets how many segments a reducer merges at once.
func withFanIn(n int) ShuffleOption { return func(o *shuffleOptions) { o.fanIn = n } }

// TestShuffleReducerRuns: a reducer with more segments than it merges at
// once merges them into sorted runs on local disk first; the output is the
// same.
func TestShuffleReducerRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := config.Default()
	cfg.Localhost.StorageRoot = t.TempDir()
	e, err := NewExecutor(ctx, WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	tests := []struct {
		name  string
		fanIn int
		runs  bool
	}{
		{"one merge", 0, false},
		{"runs of two", 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sh, err := MapShuffle(ctx, e, dupMapper, []int{1000, 500, 300, 200, 100}, dupReducer, Reducers(2), withFanIn(tt.fanIn))
			if err != nil {
				t.Fatal(err)
			}
			total, keys, prev := 0, 0, -1
			for k, n := range sh.All(ctx) {
				if k <= prev {
					t.Fatalf("key %d after %d", k, prev)
				}
				prev = k
				total += n
				keys++
			}
			if err := sh.Err(); err != nil {
				t.Fatal(err)
			}
			if total != 2100 || keys != 10 {
				t.Errorf("%d pairs in %d keys, want 2100 in 10", total, keys)
			}
			stats, _ := sh.Stats(ctx)
			if (stats.ReduceRuns > 0) != tt.runs {
				t.Errorf("%d runs, want runs %v", stats.ReduceRuns, tt.runs)
			}
		})
	}
}

// TestShuffleBufferLimit: a mapper buffers a quarter of the worker's
// memory limit (which backends set from runtime_memory), or what the job
// asks, or 128 MiB without a limit.
func TestShuffleBufferLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	tests := []struct {
		name      string
		memLimit  int64
		job, want int64
	}{
		{"runtime_memory 2048 MiB", 2048 << 20, 0, 512 << 20},
		{"the job's", 2048 << 20, 1 << 20, 1 << 20},
		{"no limit", math.MaxInt64, 0, 128 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(tt.memLimit)
			if got := bufferLimit(tt.job); got != tt.want {
				t.Errorf("bufferLimit(%d) = %d, want %d", tt.job, got, tt.want)
			}
		})
	}
}
