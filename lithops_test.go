package lithops_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
)

func TestMain(m *testing.M) {
	if mb, _ := strconv.Atoi(os.Getenv("LITHOPS_TEST_HOG_MB")); mb > 0 {
		hog(mb) // a subprocess a function started
		return
	}
	lithops.Init() // in worker processes this serves calls and exits
	if os.Getenv("LITHOPS_TEST_CLIENT") != "" {
		runDoomedClient() // a client that TestReattach kills mid-job
		return
	}
	os.Exit(m.Run())
}

type pair struct{ X, Y int }

type payload struct{ Data string }

var (
	helloWorld = lithops.Func("hello_world", func(ctx context.Context, _ string) (string, error) {
		return "Hello World!", nil
	})
	sumPair = lithops.Func("simple_map_function", func(ctx context.Context, p [2]int) (int, error) {
		return p[0] + p[1], nil
	})
	sumStruct = lithops.Func("sum_struct", func(ctx context.Context, p pair) (int, error) {
		return p.X + p.Y, nil
	})
	concat = lithops.Func("concat", func(ctx context.Context, words []string) (string, error) {
		return strings.Join(words, " "), nil
	})
	sumInts = lithops.Func("simple_reduce_function", func(ctx context.Context, xs []int) (int, error) {
		n := 0
		for _, x := range xs {
			n += x
		}
		return n, nil
	})
	nilPointer = lithops.Func("nil_pointer", func(ctx context.Context, _ int) (*payload, error) { return nil, nil })
	nilSlice   = lithops.Func("nil_slice", func(ctx context.Context, _ int) ([]int, error) { return nil, nil })
	zeroInt    = lithops.Func("zero_int", func(ctx context.Context, x int) (int, error) { return x * 0, nil })
	bigResult  = lithops.Func("big_result", func(ctx context.Context, n int) (string, error) {
		return strings.Repeat("x", n), nil
	})
	// misbehave fails in the way its input names, and succeeds otherwise.
	misbehave = lithops.Func("misbehave", func(ctx context.Context, mode string) (string, error) {
		switch mode {
		case "error":
			return "", errors.New("boom: user error")
		case "panic":
			var m map[string]int
			m["x"] = 1 // nil map write panics
		case "exit":
			os.Exit(3)
		case "sleep":
			time.Sleep(time.Minute)
		case "hog":
			// Touch 400 MiB so it is resident.
			b := make([]byte, 400<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			time.Sleep(500 * time.Millisecond) // long enough for the memory watch
			return fmt.Sprint(len(b)), nil
		case "environ":
			// What a function (and any subprocess it starts) can see.
			proc, _ := os.ReadFile("/proc/self/environ")
			return strings.Join(os.Environ(), "\n") + "\n" + string(proc), nil
		case "deadline":
			// Honours its ctx: returns ctx.Err() at the call's timeout.
			<-ctx.Done()
			return "", fmt.Errorf("gave up: %w", ctx.Err())
		case "selfkill":
			// Killed from outside, far under any memory limit.
			killSelf()
			time.Sleep(time.Minute)
		case "child_hog":
			// The memory is in a subprocess of the worker.
			exe, _ := os.Executable()
			cmd := exec.CommandContext(ctx, exe)
			cmd.Env = append(os.Environ(), "LITHOPS_TEST_HOG_MB=400")
			err := cmd.Run()
			return fmt.Sprint("child: ", err), nil
		case "goroutine_panic":
			go func() { panic("unrecovered in a goroutine") }()
			time.Sleep(time.Minute)
		}
		return "ok:" + mode, nil
	})
	callID = lithops.Func("call_id", func(ctx context.Context, _ int) (string, error) {
		return lithops.CallIDFrom(ctx), nil
	})
)

// hog keeps mb MiB resident for a few seconds.
func hog(mb int) {
	b := make([]byte, mb<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	time.Sleep(3 * time.Second)
	runtime.KeepAlive(b)
}

// waitRunning waits (at most 10 s) until every future reports a running
// call: a worker holds it.
func waitRunning(t *testing.T, fs ...interface{ State() lithops.State }) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, f := range fs {
		for f.State() != lithops.StateRunning {
			if time.Now().After(deadline) {
				t.Fatalf("call not running after 10 s (state %v)", f.State())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// newExecutor returns an executor whose storage lives in a test temp dir.
func newExecutor(t *testing.T, opts ...lithops.Option) *lithops.Executor {
	t.Helper()
	cfg := config.Default()
	cfg.Localhost.StorageRoot = t.TempDir()
	ctx := context.Background()
	e, err := lithops.NewExecutor(ctx, append([]lithops.Option{lithops.WithConfig(cfg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCallAsync(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	t.Run("hello_world", func(t *testing.T) {
		f, err := lithops.CallAsync(ctx, e, helloWorld, "")
		if err != nil {
			t.Fatal(err)
		}
		if v, err := f.Result(ctx); err != nil || v != "Hello World!" {
			t.Fatalf("got %q, %v", v, err)
		}
	})
	t.Run("tuple_input", func(t *testing.T) {
		f, err := lithops.CallAsync(ctx, e, sumPair, [2]int{4, 6})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := f.Result(ctx); err != nil || v != 10 {
			t.Fatalf("got %v, %v", v, err)
		}
	})
	t.Run("struct_input", func(t *testing.T) {
		f, err := lithops.CallAsync(ctx, e, sumStruct, pair{X: 2, Y: 8})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := f.Result(ctx); err != nil || v != 10 {
			t.Fatalf("got %v, %v", v, err)
		}
	})
	t.Run("list_input", func(t *testing.T) {
		f, err := lithops.CallAsync(ctx, e, concat, []string{"a", "b"})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := f.Result(ctx); err != nil || v != "a b" {
			t.Fatalf("got %q, %v", v, err)
		}
	})
	t.Run("call_id", func(t *testing.T) {
		f, err := lithops.CallAsync(ctx, e, callID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := f.Result(ctx); err != nil || v != "00000" {
			t.Fatalf("got %q, %v", v, err)
		}
		if s, ok := f.Stats(); !ok || s.Worker == "" || s.Finished.Before(s.Started) || s.Started.Before(s.Submitted.Add(-time.Second)) {
			t.Fatalf("stats %+v, %v", s, ok)
		}
	})
}

var pairs = [][2]int{{1, 1}, {2, 2}, {3, 3}, {4, 4}}

func TestMap(t *testing.T) {
	ctx := ctxT(t)
	tests := []struct {
		name string
		opts []lithops.Option
	}{
		{"default", nil},
		{"max_workers_1", []lithops.Option{lithops.WithMaxWorkers(1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newExecutor(t, tc.opts...)
			fs, err := lithops.Map(ctx, e, sumPair, pairs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fs.Results(ctx)
			if err != nil || fmt.Sprint(got) != "[2 4 6 8]" {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
	t.Run("range_iterdata", func(t *testing.T) {
		e := newExecutor(t)
		fs, err := lithops.Map(ctx, e, helloWorld, []string{"", ""})
		if err != nil {
			t.Fatal(err)
		}
		got, err := fs.Results(ctx)
		if err != nil || fmt.Sprint(got) != "[Hello World! Hello World!]" {
			t.Fatalf("got %v, %v", got, err)
		}
	})
	t.Run("multiple_executions", func(t *testing.T) {
		e := newExecutor(t)
		fs1, err := lithops.Map(ctx, e, sumPair, pairs[:2])
		if err != nil {
			t.Fatal(err)
		}
		fs2, err := lithops.Map(ctx, e, sumPair, pairs[2:])
		if err != nil {
			t.Fatal(err)
		}
		if fs1.At(0).JobID() == fs2.At(0).JobID() {
			t.Fatalf("two maps share job id %s", fs1.At(0).JobID())
		}
		r2, err := fs2.Results(ctx)
		if err != nil || fmt.Sprint(r2) != "[6 8]" {
			t.Fatalf("second map: %v, %v", r2, err)
		}
		r1, err := fs1.Results(ctx)
		if err != nil || fmt.Sprint(r1) != "[2 4]" {
			t.Fatalf("first map: %v, %v", r1, err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		e := newExecutor(t)
		fs, err := lithops.Map(ctx, e, sumPair, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := fs.Results(ctx); err != nil || len(got) != 0 {
			t.Fatalf("got %v, %v", got, err)
		}
	})
	t.Run("many_inputs_in_order", func(t *testing.T) {
		e := newExecutor(t)
		in := make([][2]int, 300)
		for i := range in {
			in[i] = [2]int{i, i}
		}
		fs, err := lithops.Map(ctx, e, sumPair, in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fs.Results(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			if v != 2*i {
				t.Fatalf("result %d = %d, want %d", i, v, 2*i)
			}
		}
	})
}

func TestMapReduce(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	f, err := lithops.MapReduce(ctx, e, sumPair, pairs, sumInts)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(ctx); err != nil || v != 20 {
		t.Fatalf("got %v, %v", v, err)
	}
	if f.JobID() != "R000" {
		t.Errorf("reduce job id %q, want R000", f.JobID())
	}
	t.Run("map_failure_fails_reduce", func(t *testing.T) {
		f, err := lithops.MapReduce(ctx, e, misbehave, []string{"a", "error"}, joinStrings)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Result(ctx)
		if !errors.Is(err, lithops.ErrUser) || !strings.Contains(err.Error(), "boom") {
			t.Fatalf("got %v, want the map call's user error", err)
		}
	})
}

var joinStrings = lithops.Func("join_strings", func(ctx context.Context, xs []string) (string, error) {
	return strings.Join(xs, ","), nil
})

func TestZeroAndNilResults(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t, lithops.WithCodec(lithops.GobCodec))
	p, err := lithops.CallAsync(ctx, e, nilPointer, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := p.Result(ctx); err != nil || v != nil {
		t.Fatalf("nil pointer: got %v, %v", v, err)
	}
	s, err := lithops.CallAsync(ctx, e, nilSlice, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.Result(ctx); err != nil || v != nil {
		t.Fatalf("nil slice: got %v, %v", v, err)
	}
	zs, err := lithops.Map(ctx, e, zeroInt, []int{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := zs.Results(ctx); err != nil || fmt.Sprint(v) != "[0 0 0]" {
		t.Fatalf("zeros: got %v, %v", v, err)
	}
}

func TestCodecs(t *testing.T) {
	ctx := ctxT(t)
	for _, c := range []lithops.Codec{lithops.GobCodec, lithops.JSONCodec} {
		t.Run(c.Name(), func(t *testing.T) {
			e := newExecutor(t, lithops.WithCodec(c))
			f, err := lithops.CallAsync(ctx, e, sumStruct, pair{3, 4})
			if err != nil {
				t.Fatal(err)
			}
			if v, err := f.Result(ctx); err != nil || v != 7 {
				t.Fatalf("got %v, %v", v, err)
			}
			// A result over the inline limit travels as its own object.
			b, err := lithops.CallAsync(ctx, e, bigResult, 100_000)
			if err != nil {
				t.Fatal(err)
			}
			if v, err := b.Result(ctx); err != nil || len(v) != 100_000 {
				t.Fatalf("big result: %d bytes, %v", len(v), err)
			}
			// An input over the inline limit is read from the inputs object.
			in := make([]string, 3000)
			for i := range in {
				in[i] = "w"
			}
			j, err := lithops.CallAsync(ctx, e, concat, in)
			if err != nil {
				t.Fatal(err)
			}
			if v, err := j.Result(ctx); err != nil || len(v) != 5999 {
				t.Fatalf("big input: %d, %v", len(v), err)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t, lithops.WithMaxWorkers(2))
	modes := []string{"a", "error", "b", "panic", "c", "exit", "d", "sleep", "e", "goroutine_panic", "f"}
	start := time.Now()
	fs, err := lithops.Map(ctx, e, misbehave, modes, lithops.WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		want    error
		message string
	}{
		"error": {lithops.ErrUser, "boom: user error"},
		"panic": {lithops.ErrPanic, "assignment to entry in nil map"},
		"exit":  {lithops.ErrCrashed, "exited with status 3"},
		"sleep": {lithops.ErrTimeout, "timeout"},
		// An unrecovered panic in another goroutine kills the process (exit 2).
		"goroutine_panic": {lithops.ErrCrashed, "exited with status 2"},
	}
	for i, mode := range modes {
		v, err := fs.At(i).Result(ctx)
		tc, fails := tests[mode]
		if !fails {
			if err != nil || v != "ok:"+mode {
				t.Errorf("%s: got %q, %v; the other calls of the map must succeed", mode, v, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want errors.Is %v", mode, err, tc.want)
			continue
		}
		var ce *lithops.CallError
		if !errors.As(err, &ce) || !strings.Contains(ce.Message, tc.message) || ce.Call != fmt.Sprintf("%05d", i) || ce.Function != "misbehave" {
			t.Errorf("%s: CallError %+v", mode, ce)
		}
		if mode == "panic" && !strings.Contains(ce.Stack, "lithops_test.init") {
			t.Errorf("panic stack does not show the function:\n%s", ce.Stack)
		}
		if mode == "exit" && ce.ExitCode != 3 {
			t.Errorf("exit code %d, want 3", ce.ExitCode)
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("failures took %v; they must be reported within seconds", d)
	}
	_, err = fs.Results(ctx)
	if !errors.Is(err, lithops.ErrUser) {
		t.Errorf("Results: got %v, want the first failure (user error)", err)
	}
}

func TestCancel(t *testing.T) {
	e := newExecutor(t, lithops.WithMaxWorkers(2))
	ctx, cancel := context.WithCancel(context.Background())
	fs, err := lithops.Map(ctx, e, misbehave, []string{"sleep", "sleep", "sleep"})
	if err != nil {
		t.Fatal(err)
	}
	waitRunning(t, fs.At(0), fs.At(1))
	start := time.Now()
	cancel()
	wctx := ctxT(t)
	for i := range 3 {
		_, err := fs.At(i).Result(wctx)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("call %d: got %v, want context.Canceled", i, err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}
	// The executor still works after a cancelled job.
	f, err := lithops.CallAsync(wctx, e, sumPair, [2]int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(wctx); err != nil || v != 3 {
		t.Fatalf("after cancel: %v, %v", v, err)
	}
}

func TestWait(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t, lithops.WithMaxWorkers(2))
	quick, err := lithops.Map(ctx, e, misbehave, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := lithops.CallAsync(ctx, e, misbehave, "sleep", lithops.WithTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	all := lithops.Group(quick, slow)

	p, err := lithops.Wait(ctx, all, lithops.Always)
	if err != nil || p.Total != 2 {
		t.Fatalf("Always: %+v, %v", p, err)
	}
	p, err = lithops.Wait(ctx, all, lithops.AnyCompleted)
	if err != nil || p.Done < 1 {
		t.Fatalf("AnyCompleted: %+v, %v", p, err)
	}
	p, err = lithops.Wait(ctx, all, lithops.WaitTimeout(200*time.Millisecond))
	if !errors.Is(err, lithops.ErrWaitTimeout) || p.Done != 1 {
		t.Fatalf("timeout: %+v, %v", p, err)
	}
	var calls int
	p, err = lithops.Wait(ctx, all, lithops.AllCompleted, lithops.WaitProgress(func(lithops.Progress) { calls++ }))
	if err != nil || p.Done != 2 || p.Failed != 1 || calls == 0 {
		t.Fatalf("AllCompleted: %+v, %v, %d progress calls", p, err, calls)
	}
}

func TestMemoryLimit(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t, lithops.WithMaxWorkers(1))
	fs, err := lithops.Map(ctx, e, misbehave, []string{"hog", "after"}, lithops.WithMemory(128))
	if err != nil {
		t.Fatal(err)
	}
	_, err = fs.At(0).Result(ctx)
	var ce *lithops.CallError
	if !errors.Is(err, lithops.ErrOOM) || !errors.As(err, &ce) || !strings.Contains(ce.Message, "over its memory limit of 128 MiB") {
		t.Fatalf("got %v, want ErrOOM", err)
	}
	if v, err := fs.At(1).Result(ctx); err != nil || v != "ok:after" {
		t.Fatalf("the next call on a fresh worker: %q, %v", v, err)
	}
}

// Failures carry their true names: memory used by a function's subprocess
// counts against the call's limit; a kill from outside, far under the limit,
// is a crash (and not escalated as out of memory); a function that returns
// its ctx's error at the call's timeout timed out.
func TestFailureNames(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t, lithops.WithMaxWorkers(2))
	tests := []struct {
		mode string
		opts []lithops.CallOption
		want error
		msg  string
	}{
		{"child_hog", []lithops.CallOption{lithops.WithMemory(128)}, lithops.ErrOOM, "over its memory limit of 128 MiB"},
		{"selfkill", []lithops.CallOption{lithops.WithMemory(1024)}, lithops.ErrCrashed, "not by lithops"},
		{"selfkill", nil, lithops.ErrCrashed, "not by lithops"},
		{"deadline", []lithops.CallOption{lithops.WithTimeout(300 * time.Millisecond)}, lithops.ErrTimeout, "exceeded its timeout of 300ms"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			f, err := lithops.CallAsync(ctx, e, misbehave, tc.mode, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Result(ctx)
			var ce *lithops.CallError
			if !errors.Is(err, tc.want) || !errors.As(err, &ce) || !strings.Contains(ce.Message, tc.msg) {
				t.Fatalf("got %v, want %v with %q", err, tc.want, tc.msg)
			}
		})
	}
	// A plain kill with escalation on is retried at the same memory.
	f, err := lithops.CallAsync(ctx, e, misbehave, "selfkill", lithops.WithMemory(1024), lithops.WithRetries(1), lithops.WithMemoryEscalation())
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Result(ctx)
	var ce *lithops.CallError
	if !errors.Is(err, lithops.ErrCrashed) || !errors.As(err, &ce) || ce.Attempt != 1 {
		t.Fatalf("escalated selfkill: %v", err)
	}
}

// Workers get what opens their storage and nothing else of the config: no
// secret is in their environment (which subprocesses inherit) or in
// /proc/<worker>/environ.
func TestWorkerSeesNoSecrets(t *testing.T) {
	ctx := ctxT(t)
	cfg := config.Default()
	cfg.Localhost.StorageRoot = t.TempDir()
	cfg.Azure.ClientSecret = "TOPSECRET-ARM"
	cfg.AzureStorage.StorageAccountKey = "TOPSECRET-KEY"
	cfg.AzureStorage.ConnectionString = "AccountKey=TOPSECRET-CONN"
	cfg.AzureFunctions.FunctionKey = "TOPSECRET-FN"
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	f, err := lithops.CallAsync(ctx, e, misbehave, "environ")
	if err != nil {
		t.Fatal(err)
	}
	env, err := f.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(env, "TOPSECRET") || strings.Contains(env, "storage_root") {
		t.Fatalf("the worker's environment holds configuration:\n%s", env)
	}
}

// TestCloseKillsRunningCalls: Close does not wait for calls to finish.
func TestCloseKillsRunningCalls(t *testing.T) {
	ctx := ctxT(t)
	cfg := config.Default()
	cfg.Localhost.StorageRoot = t.TempDir()
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	f, err := lithops.CallAsync(ctx, e, misbehave, "sleep")
	if err != nil {
		t.Fatal(err)
	}
	waitRunning(t, f)
	start := time.Now()
	e.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if _, err := f.Result(ctx); !errors.Is(err, lithops.ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

// blockOf returns n bytes of b: big ones are stored as objects, not inline.
var blockOf = lithops.Func("block_of", func(ctx context.Context, in struct {
	B byte
	N int
}) ([]byte, error) {
	return bytes.Repeat([]byte{in.B}, in.N), nil
})

// describeBlocks checks the order of the gathered blocks and sums them.
var describeBlocks = lithops.Func("describe_blocks", func(ctx context.Context, blocks [][]byte) (string, error) {
	var sb strings.Builder
	for _, b := range blocks {
		if len(b) == 0 {
			sb.WriteString("[] ")
			continue
		}
		if bytes.Count(b, b[:1]) != len(b) {
			return "", fmt.Errorf("a block mixes bytes")
		}
		fmt.Fprintf(&sb, "%c%d ", b[0], len(b))
	}
	return sb.String(), nil
})

// TestReduceGathersResults: the reducer reads the map results itself, inline
// ones from its input and big ones from storage, under both codecs; the
// reduce job's input holds references, not the map outputs.
func TestReduceGathersResults(t *testing.T) {
	type in = struct {
		B byte
		N int
	}
	inputs := []in{{'a', 10}, {'b', 200_000}, {'c', 0}, {'d', 9_000}, {'e', 1}, {'f', 300_000}}
	want := "a10 b200000 [] d9000 e1 f300000 "
	for _, codec := range []lithops.Codec{lithops.GobCodec, lithops.JSONCodec} {
		t.Run(codec.Name(), func(t *testing.T) {
			ctx := ctxT(t)
			e := newExecutor(t, lithops.WithCodec(codec))
			f, err := lithops.MapReduce(ctx, e, blockOf, inputs, describeBlocks)
			if err != nil {
				t.Fatal(err)
			}
			if v, err := f.Result(ctx); err != nil || v != want {
				t.Fatalf("got %q, %v; want %q", v, err, want)
			}
			// The reduce job's input: its inputs object, or its manifest when
			// the inputs are small enough to travel in it.
			st := e.Storage()
			manifest, err := st.Head(ctx, st.Bucket(), protocol.JobKey(e.ID(), f.JobID()))
			if err != nil {
				t.Fatal(err)
			}
			size := manifest.Size
			if info, err := st.Head(ctx, st.Bucket(), protocol.InputsKey(e.ID(), f.JobID())); err == nil {
				size += info.Size
			} else if !errors.Is(err, storage.ErrNotFound) {
				t.Fatal(err)
			}
			if size > 64<<10 {
				t.Fatalf("the reduce job's manifest and input are %d bytes: the map outputs went through the client", size)
			}
		})
	}
}

var nap = lithops.Func("nap", func(ctx context.Context, d time.Duration) (time.Duration, error) {
	time.Sleep(d)
	return d, nil
})

// TestResultWaitsAreIndependent: one goroutine waiting on a future without
// a deadline does not make another's short wait overrun its own ctx.
func TestResultWaitsAreIndependent(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	f, err := lithops.CallAsync(ctx, e, nap, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	long := make(chan error, 1)
	go func() { _, err := f.Result(context.Background()); long <- err }()
	waitRunning(t, f) // the long wait is under way
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = f.Result(short)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("short wait: %v after %v; want its own deadline, about 200ms", err, time.Since(start))
	}
	if err := <-long; err != nil {
		t.Fatal(err)
	}
	for range 20 { // a finished call answers under an expired ctx, every time
		if v, err := f.Result(short); err != nil || v != 2*time.Second {
			t.Fatalf("after the call finished, under an expired ctx: %v, %v", v, err)
		}
	}
}

// TestGatherInputIsNotUserData: a reducer's gather input is not held to
// lithops.data_limit, which is about inputs the user could move to storage.
func TestGatherInputIsNotUserData(t *testing.T) {
	ctx := ctxT(t)
	cfg := config.Default()
	cfg.Localhost.StorageRoot = t.TempDir()
	limit := 0.005 // MiB: about 5 KB
	cfg.Lithops.DataLimit = &limit
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	inputs := make([]struct {
		B byte
		N int
	}, 20)
	for i := range inputs {
		inputs[i].B, inputs[i].N = 'x', 1000 // 20 inline results of 1 KB: 20 KB of references
	}
	f, err := lithops.MapReduce(ctx, e, blockOf, inputs, describeBlocks)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(ctx); err != nil || !strings.HasPrefix(v, "x1000 x1000") {
		t.Fatalf("got %.40q, %v", v, err)
	}
	if _, err := lithops.Map(ctx, e, blockOf, inputs[:1], lithops.WithTimeout(time.Minute)); err != nil {
		t.Fatal(err) // one small input stays under the limit
	}
	big := make([][]byte, 1)
	big[0] = make([]byte, 8000)
	if _, err := lithops.Map(ctx, e, describeBlocks, [][][]byte{big}); err == nil || !strings.Contains(err.Error(), "data_limit") {
		t.Fatalf("a user input over data_limit: %v", err)
	}
}

// TestClean: Clean deletes a finished job's records and forgets it; it
// refuses a job still running and leaves a map job alone until its reducer
// has read its results.
func TestClean(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	st := e.Storage()
	fs, err := lithops.Map(ctx, e, blockOf, []struct {
		B byte
		N int
	}{{'a', 3}, {'b', 20_000}}) // one inline result, one stored object
	if err != nil {
		t.Fatal(err)
	}
	got, err := fs.Results(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Clean(ctx, fs.At(0).JobID()); err != nil {
		t.Fatal(err)
	}
	if left, _ := st.List(ctx, st.Bucket(), protocol.JobPrefix(e.ID(), fs.At(0).JobID())); len(left) != 0 {
		t.Fatalf("%d records left after Clean", len(left))
	}
	if len(e.Jobs()) != 0 {
		t.Fatalf("a cleaned job is still listed: %+v", e.Jobs())
	}
	if v, err := fs.At(1).Result(ctx); err != nil || len(v) != len(got[1]) {
		t.Fatalf("a fetched result after Clean: %d bytes, %v", len(v), err)
	}
	if err := e.Clean(ctx, "M999"); err == nil {
		t.Fatal("cleaning an unknown job: no error")
	}

	slow, err := lithops.CallAsync(ctx, e, nap, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Clean(ctx, slow.JobID()); err == nil || !strings.Contains(err.Error(), "not finished") {
		t.Fatalf("cleaning a running job: %v", err)
	}
	// The map job finishes first, but its (slow) reducer still reads its
	// results, which are stored as objects: the map job stays until then.
	mr, err := lithops.MapReduce(ctx, e, blockOf, []struct {
		B byte
		N int
	}{{'x', 20_000}, {'y', 20_000}}, slowDescribe)
	if err != nil {
		t.Fatal(err)
	}
	var mapJob string
	for mapJob == "" && ctx.Err() == nil {
		for _, j := range e.Jobs() {
			if j.Function == "block_of" && j.Done == j.Calls {
				mapJob = j.ID
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := e.Clean(ctx, mapJob); err == nil || !strings.Contains(err.Error(), "not finished") {
		t.Fatalf("cleaning a map job whose reducer runs: %v", err)
	}
	if err := e.Clean(ctx); err != nil { // everything finished: not the map job
		t.Fatal(err)
	}
	if v, err := mr.Result(ctx); err != nil || v != "x20000 y20000 " {
		t.Fatalf("map-reduce cleaned while it ran: %q, %v", v, err)
	}
	if _, err := slow.Result(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Clean(ctx); err != nil {
		t.Fatal(err)
	}
	if len(e.Jobs()) != 0 {
		t.Fatalf("jobs left after cleaning all: %+v", e.Jobs())
	}
}

// slowDescribe is describeBlocks after 300 ms.
var slowDescribe = lithops.Func("slow_describe", func(ctx context.Context, blocks [][]byte) (string, error) {
	time.Sleep(300 * time.Millisecond)
	return describeBlocks.Call(ctx, blocks)
})

// A nil or zero-value Function is refused on the client, before anything
// reaches storage (a zero value once made a job no worker could run).
func TestUnregisteredFunctionRefused(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	var zero lithops.Function[int, int]
	for name, err := range map[string]error{
		"zero CallAsync": func() error { _, err := lithops.CallAsync(ctx, e, &zero, 1); return err }(),
		"zero Map":       func() error { _, err := lithops.Map(ctx, e, &zero, []int{1}); return err }(),
		"nil Map":        func() error { _, err := lithops.Map[int, int](ctx, e, nil, []int{1}); return err }(),
	} {
		if err == nil || !(strings.Contains(err.Error(), "lithops.Func") || strings.Contains(err.Error(), "nil function")) {
			t.Errorf("%s: %v", name, err)
		}
	}
	infos, err := e.Storage().List(ctx, e.Storage().Bucket(), "lithops.jobs/"+e.ID()+"/")
	if err != nil || len(infos) != 0 {
		t.Fatalf("records written for refused jobs: %d, %v", len(infos), err)
	}
}

// TestManifestWrittenWhileCallRuns: on localhost a small job's manifest is
// written while its call already runs (the worker gets it over the pipe);
// when that write fails, CallAsync fails saying so, nothing hangs, and the
// executor goes on.
func TestManifestWrittenWhileCallRuns(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	f, err := lithops.CallAsync(ctx, e, callID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(ctx); err != nil || v != "00000" {
		t.Fatalf("first call: %q, %v", v, err)
	}
	// An object under the next job's manifest key: that key is taken as a
	// directory of other keys.
	st := e.Storage()
	if err := st.PutBytes(ctx, st.Bucket(), protocol.JobKey(e.ID(), "A001")+"/x", []byte("in the way")); err != nil {
		t.Fatal(err)
	}
	if _, err := lithops.CallAsync(ctx, e, callID, 1); err == nil || !strings.Contains(err.Error(), "upload manifest of "+e.ID()+"/A001") {
		t.Fatalf("CallAsync whose manifest cannot be written: %v", err)
	}
	f, err = lithops.CallAsync(ctx, e, callID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(ctx); err != nil || v != "00000" {
		t.Fatalf("the call after: %q, %v", v, err)
	}
}

// killSelf kills this process as a kill -9 from outside would.
func killSelf() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Kill()
	}
}
