package lithops_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/shuffle"
)

// shuffleDoc is a mapper input: text, and a marker key whose absence makes
// the first execution fail after emitting (a mapper that dies mid-way and
// is retried), leaving behind a decoy object where a duplicate execution
// would have written its segments.
type shuffleDoc struct {
	Text   string
	FailAt string
}

var errFirstAttempt = errors.New("first attempt fails")

var wcMapper = lithops.MapperFunc("test_wc_map", func(ctx context.Context, d shuffleDoc, emit func(string, int)) error {
	for _, w := range strings.Fields(d.Text) {
		emit(w, 1)
	}
	if d.FailAt != "" {
		st := lithops.StorageFrom(ctx)
		if _, err := st.Head(ctx, st.Bucket(), d.FailAt); err != nil {
			if err := st.PutBytes(ctx, st.Bucket(), d.FailAt, nil); err != nil {
				return err
			}
			return errFirstAttempt
		}
	}
	return nil
}, lithops.WithCombiner(func(ctx context.Context, w string, vs iter.Seq[int]) (int, error) {
	n := 0
	for v := range vs {
		n += v
	}
	return n, nil
}))

var wcReducer = lithops.ReducerFunc("test_wc_reduce", func(ctx context.Context, w string, vs iter.Seq[int]) (int, error) {
	n := 0
	for v := range vs {
		n += v
	}
	return n, nil
})

// shuffleTexts makes n documents over a skewed vocabulary ("the" is a
// third of all words) and their true counts.
func shuffleTexts(n int) ([]shuffleDoc, map[string]int) {
	r := rand.New(rand.NewPCG(3, 5))
	want := map[string]int{}
	docs := make([]shuffleDoc, n)
	for i := range docs {
		var b strings.Builder
		for range 400 {
			w := "the"
			if r.IntN(3) > 0 {
				w = fmt.Sprintf("w%03d", r.IntN(300))
			}
			want[w]++
			b.WriteString(w)
			b.WriteByte(' ')
		}
		docs[i].Text = b.String()
	}
	return docs, want
}

func TestMapShuffle(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	ej := newExecutor(t, lithops.WithCodec(lithops.JSONCodec))
	tests := []struct {
		name     string
		reducers int
		sorted   bool
		memory   int64
		retry    bool
		json     bool
	}{
		{"one reducer", 1, false, 0, false, false},
		{"hash, 3 reducers", 3, false, 0, false, false},
		{"sorted, 4 reducers", 4, true, 0, false, false},
		{"spills", 3, false, 4 << 10, false, false},
		{"retried mapper", 2, true, 0, true, false},
		{"json codec, sorted, spills", 3, true, 4 << 10, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, codec := e, "gob"
			if tt.json {
				e, codec = ej, "json"
			}
			docs, want := shuffleTexts(6)
			opts := []lithops.ShuffleOption{lithops.Reducers(tt.reducers)}
			if tt.sorted {
				opts = append(opts, lithops.SortedOutput())
			}
			if tt.memory > 0 {
				opts = append(opts, lithops.ShuffleMemory(tt.memory))
			}
			if tt.retry {
				docs[1].FailAt = fmt.Sprintf("shuffle-marker-%s", strings.ReplaceAll(t.Name(), "/", "-"))
				opts = append(opts, lithops.ShuffleCallOptions(lithops.WithRetries(1)))
			}
			sh, err := lithops.MapShuffle(ctx, e, wcMapper, docs, wcReducer, opts...)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			var keys []string
			for k, n := range sh.All(ctx) {
				got[k] = n
				keys = append(keys, k)
			}
			if err := sh.Err(); err != nil {
				t.Fatal(err)
			}
			if !slices.IsSorted(keys) || len(keys) != len(got) {
				t.Errorf("All is not in strictly increasing key order: %d keys, %d distinct", len(keys), len(got))
			}
			if !maps.Equal(got, want) {
				t.Errorf("counts differ: got %d keys (the=%d), want %d keys (the=%d)", len(got), got["the"], len(want), want["the"])
			}
			outs, err := sh.Outputs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(outs) != tt.reducers {
				t.Errorf("%d outputs, want %d", len(outs), tt.reducers)
			}
			stats, _ := sh.Stats(ctx)
			if (stats.Spills > 0) != (tt.memory > 0) {
				t.Errorf("%d spills with a buffer of %d bytes", stats.Spills, tt.memory)
			}
			// One segment object per mapper call, named by its final status.
			objs, err := e.Storage().List(ctx, e.Storage().Bucket(), protocol.JobPrefix(e.ID(), stats.MapJob)+"shuffle/")
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != len(docs) {
				t.Errorf("%d segment objects for %d mappers", len(objs), len(docs))
			}
			if tt.sorted {
				// Range partitioning: each output's keys lie below the next's.
				if stats.Bounds == 0 {
					t.Error("sorted output without range bounds")
				}
				var last string
				for i, key := range outs {
					rc, err := e.Storage().Get(ctx, e.Storage().Bucket(), key)
					if err != nil {
						t.Fatal(err)
					}
					rd, err := shuffle.NewReader[string, int](codec, rc)
					if err != nil {
						t.Fatal(err)
					}
					for j := 0; ; j++ {
						k, _, err := rd.Next()
						if err == io.EOF {
							break
						}
						if err != nil {
							t.Fatal(err)
						}
						if i > 0 && j == 0 && k <= last {
							t.Errorf("output %d starts at %q, not above output %d's last key %q", i, k, i-1, last)
						}
						last = k
					}
					rc.Close()
				}
			}
		})
	}
}

var failingReducer = lithops.ReducerFunc("test_wc_reduce_fail", func(ctx context.Context, w string, vs iter.Seq[int]) (int, error) {
	if w == "the" {
		return 0, errFirstAttempt
	}
	return 0, nil
})

func TestMapShuffleErrors(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	docs, _ := shuffleTexts(2)
	sh, err := lithops.MapShuffle(ctx, e, wcMapper, docs, failingReducer, lithops.Reducers(2))
	if err != nil {
		t.Fatal(err)
	}
	err = sh.Wait(ctx)
	var ce *lithops.CallError
	if !errors.Is(err, lithops.ErrUser) || !errors.As(err, &ce) || ce.Function != "test_wc_reduce_fail" {
		t.Errorf("reducer failure: %v", err)
	}
	for range sh.All(ctx) {
		t.Fatal("All yields after a failure")
	}
	if sh.Err() == nil {
		t.Error("Err is nil after a failed shuffle")
	}
	docs[0].FailAt = "shuffle-marker-errors"
	sh, err = lithops.MapShuffle(ctx, e, wcMapper, docs, wcReducer, lithops.Reducers(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Wait(ctx); !errors.Is(err, lithops.ErrUser) || !strings.Contains(err.Error(), "map stage") {
		t.Errorf("mapper failure: %v", err)
	}
}

// crashOnceReducer kills its own worker process the first time it reduces
// "the" (a marker object says it did): a reducer lost mid-way.
var crashOnceReducer = lithops.ReducerFunc("test_wc_reduce_crash_once", func(ctx context.Context, w string, vs iter.Seq[int]) (int, error) {
	if w == "the" {
		st := lithops.StorageFrom(ctx)
		marker := "shuffle-reducer-crashed-once"
		if _, err := st.Head(ctx, st.Bucket(), marker); err != nil {
			if err := st.PutBytes(ctx, st.Bucket(), marker, nil); err != nil {
				return 0, err
			}
			os.Exit(3) // the worker dies with the reducer's partial output
		}
	}
	n := 0
	for v := range vs {
		n += v
	}
	return n, nil
})

// A reducer whose worker dies mid-way is run again, and its output holds
// every key once with its exact count: only the output its final status
// names is read.
func TestMapShuffleLostReducerRerun(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	docs, want := shuffleTexts(4)
	sh, err := lithops.MapShuffle(ctx, e, wcMapper, docs, crashOnceReducer,
		lithops.Reducers(2), lithops.ShuffleCallOptions(lithops.WithRetries(1)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for k, n := range sh.All(ctx) {
		if _, dup := got[k]; dup {
			t.Errorf("key %q read twice", k)
		}
		got[k] = n
	}
	if err := sh.Err(); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("counts differ after a lost reducer: got %d keys (the=%d), want %d keys (the=%d)", len(got), got["the"], len(want), want["the"])
	}
	if _, err := e.Storage().Head(ctx, e.Storage().Bucket(), "shuffle-reducer-crashed-once"); err != nil {
		t.Fatalf("the reducer never crashed: %v", err)
	}
}

type unregisteredValue struct{ N int }

var anyValueMapper = lithops.MapperFunc("test_any_value_map", func(ctx context.Context, n int, emit func(string, any)) error {
	emit("k", unregisteredValue{n})
	return nil
})

var anyValueReducer = lithops.ReducerFunc("test_any_value_reduce", func(ctx context.Context, k string, vs iter.Seq[any]) (int, error) {
	n := 0
	for range vs {
		n++
	}
	return n, nil
})

// TestMapShuffleUnregisteredValue: a shuffle value in an interface that gob
// cannot carry fails with the fix in the message; the JSON codec carries it.
func TestMapShuffleUnregisteredValue(t *testing.T) {
	ctx := ctxT(t)
	sh, err := lithops.MapShuffle(ctx, newExecutor(t), anyValueMapper, []int{1, 2}, anyValueReducer, lithops.Reducers(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Wait(ctx); err == nil || !strings.Contains(err.Error(), "gob.Register") || !strings.Contains(err.Error(), "JSONCodec") {
		t.Errorf("gob: %v", err)
	}
	sh, err = lithops.MapShuffle(ctx, newExecutor(t, lithops.WithCodec(lithops.JSONCodec)), anyValueMapper, []int{1, 2}, anyValueReducer, lithops.Reducers(1))
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, n := range sh.All(ctx) {
		got = append(got, n)
	}
	if err := sh.Err(); err != nil || len(got) != 1 || got[0] != 2 {
		t.Errorf("json: %v, %v", got, err)
	}
}
