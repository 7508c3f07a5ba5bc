// Command core measures the core engine on the localhost backend and prints
// its figures:
//
//   - warm latency of one CallAsync → Result on a warm executor;
//   - cold start: whole process start to printed result of examples/hello;
//   - Map of a no-op over 1,000 inputs, submit to all results;
//   - π by Monte Carlo, 8 calls × 5,000,000 samples.
//
// Run it from the repository root:
//
//	go run ./bench/core
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"golang.org/x/sync/errgroup"
)

var noop = lithops.Func("bench_noop", func(ctx context.Context, x int) (int, error) { return x, nil })

type piTask struct {
	Seed    uint64
	Samples int
}

var piCount = lithops.Func("bench_pi_count", func(ctx context.Context, t piTask) (int, error) {
	r := rand.New(rand.NewPCG(t.Seed, t.Seed^0x9e3779b97f4a7c15))
	in := 0
	for i := 0; i < t.Samples; i++ {
		x, y := r.Float64(), r.Float64()
		if x*x+y*y <= 1 {
			in++
		}
	}
	return in, nil
})

var piSum = lithops.Func("bench_pi_sum", func(ctx context.Context, xs []int) (int, error) {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n, nil
})

func main() {
	warmN := flag.Int("warm", 300, "sequential calls for the warm latency")
	coldN := flag.Int("cold", 10, "runs of examples/hello for the cold start")
	mapN := flag.Int("map", 1000, "inputs of the no-op map")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the client (warm calls and maps) to this file")
	warmOnly := flag.Bool("warmonly", false, "make the warm calls only and print their median (how the GOMAXPROCS=1 line is measured)")
	flag.Parse()
	lithops.Main(func(ctx context.Context) error {
		if *warmOnly {
			// GOMAXPROCS=1 is this client's alone: the workers it starts
			// take the default.
			os.Unsetenv("GOMAXPROCS")
			e, err := lithops.NewExecutor(ctx)
			if err != nil {
				return err
			}
			defer e.Close()
			if _, _, err := warmCalls(ctx, e, 10); err != nil { // start the workers
				return err
			}
			lat, _, err := warmCalls(ctx, e, max(*warmN, 1))
			if err != nil {
				return err
			}
			fmt.Println(lat[len(lat)/2].Round(10 * time.Microsecond))
			return nil
		}
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		fmt.Printf("lithops-go %s, %s/%s, %d CPUs, %s\n\n", lithops.Version, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), time.Now().Format("2006-01-02"))
		fexec, err := lithops.NewExecutor(ctx)
		if err != nil {
			return err
		}
		defer fexec.Close()

		// Warm latency.
		for i := 0; i < 10; i++ { // start the workers
			if _, err := call(ctx, fexec, i); err != nil {
				return err
			}
		}
		// The floor of one warm call, measured just before it on the same
		// storage: its status record, status-sized, created in a new
		// directory (each call is a job of its own), one at a time.
		oneFloor, floorPrefix, err := callFloor(ctx, fexec.Storage(), max(*warmN, 1))
		if err != nil {
			return err
		}
		lat, phases, err := warmCalls(ctx, fexec, max(*warmN, 1))
		if err != nil {
			return err
		}
		slices.Sort(lat)
		fmt.Printf("warm CallAsync→Result   median %v  p90 %v  (n=%d; target ≤ 0.3 ms; Lithops localhost 310–410 ms)\n",
			lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*9/10].Round(10*time.Microsecond), len(lat))
		fmt.Printf("  file-system floor      median %v  (one status-sized create-if-absent in a new directory, same storage, just before; the call takes %.1f× of it, %v more)\n",
			oneFloor.Round(time.Microsecond), float64(lat[len(lat)/2])/float64(oneFloor), (lat[len(lat)/2] - oneFloor).Round(10*time.Microsecond))
		if _, err := fexec.Storage().DeletePrefix(ctx, fexec.Storage().Bucket(), floorPrefix); err != nil {
			return err
		}
		// The same calls from a client on one P: what the Go scheduler's
		// second P costs a call that alternates between busy and idle.
		if *warmN > 0 {
			one, err := warmChild(ctx, *warmN, "GOMAXPROCS=1")
			if err != nil {
				return err
			}
			fmt.Printf("  same calls, client with GOMAXPROCS=1: median %s (its workers at the default; the Go scheduler's spare P costs a client that is idle between calls)\n", one)
			// Against the same calls from a child without them: a child's
			// workers are younger than this process's.
			base, err := warmChild(ctx, *warmN)
			if err != nil {
				return err
			}
			more, err := warmChild(ctx, *warmN, extraFuncsEnv+"=40")
			if err != nil {
				return err
			}
			fmt.Printf("  same calls, a program with 40 more functions registered: median %s against %s without (a job carries its program's registry: it must cost the same)\n", more, base)
		}
		if len(phases[0]) > 0 {
			med := func(d []time.Duration) time.Duration {
				slices.Sort(d)
				return d[len(d)/2].Round(time.Microsecond)
			}
			fmt.Printf("  medians: CallAsync → worker starts the call %v, → function starts %v; function ends → worker done %v, → Result returns %v (status write, answer, settle)\n",
				med(phases[0]), med(phases[1]), med(phases[2]), med(phases[3]))
		}

		// Map of a no-op: best of three, beside the file-system floor of
		// the same number of calls measured in the same run.
		inputs := make([]int, *mapN)
		for i := range inputs {
			inputs[i] = i
		}
		best := time.Duration(1<<63 - 1)
		for range 3 {
			start := time.Now()
			fs, err := lithops.Map(ctx, fexec, noop, inputs)
			if err != nil {
				return err
			}
			got, err := fs.Results(ctx)
			if err != nil {
				return err
			}
			best = min(best, time.Since(start))
			for i, v := range got {
				if v != i {
					return fmt.Errorf("map result %d = %d", i, v)
				}
			}
		}
		floor, err := fsFloor(ctx, fexec.Storage(), *mapN, fexec.Config().Localhost.WorkerProcesses)
		if err != nil {
			return err
		}
		perCall := best / time.Duration(*mapN)
		const lithopsPerCall = 80 * time.Millisecond // the low end of Lithops' 80–100 ms per call (issue 14)
		fmt.Printf("Map no-op × %d         best of 3 %v  (%v per call; target ≤ 55 ms per 1,000)\n", *mapN, best.Round(time.Millisecond), perCall.Round(time.Microsecond))
		fmt.Printf("  file-system floor      %v  (%d status-sized create-if-absent writes on the same storage, %d writers: %.1f× of it)\n",
			floor.Round(time.Millisecond), *mapN, fexec.Config().Localhost.WorkerProcesses, float64(best)/float64(floor))
		fmt.Printf("  per call vs Lithops    %.0f× faster than Lithops' 80 ms per call (target ≥ 1,500×)\n", float64(lithopsPerCall)/float64(perCall))

		// π.
		tasks := make([]piTask, 8)
		for i := range tasks {
			tasks[i] = piTask{Seed: uint64(i + 1), Samples: 5_000_000}
		}
		start := time.Now()
		fut, err := lithops.MapReduce(ctx, fexec, piCount, tasks, piSum)
		if err != nil {
			return err
		}
		inside, err := fut.Result(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("π 8 × 5,000,000          %v  π ≈ %.5f  (Lithops localhost 6.1 s)\n", time.Since(start).Round(time.Millisecond), 4*float64(inside)/40e6)

		// Cold start of examples/hello.
		if *coldN > 0 {
			return cold(ctx, *coldN)
		}
		return nil
	})
}

// warmCalls makes n sequential CallAsync → Result calls of a no-op on e and
// returns their latencies, sorted, and where the time went, from each
// call's status (the worker's timestamps; one clock on one machine).
func warmCalls(ctx context.Context, e *lithops.Executor, n int) (lat []time.Duration, phases [4][]time.Duration, err error) {
	lat = make([]time.Duration, n)
	type timed struct {
		job, call string
		t0, t2    time.Time
	}
	calls := make([]timed, n)
	for i := range lat {
		t0 := time.Now()
		f, err := lithops.CallAsync(ctx, e, noop, i)
		if err != nil {
			return nil, phases, err
		}
		if _, err := f.Result(ctx); err != nil {
			return nil, phases, err
		}
		t2 := time.Now()
		lat[i] = t2.Sub(t0)
		calls[i] = timed{f.JobID(), f.CallID(), t0, t2}
	}
	// The records are read after the calls, not between them: a read
	// between calls would wake the runtime's monitor thread before the
	// next one, which a warm call itself no longer does.
	st := e.Storage()
	for _, c := range calls {
		raw, err := st.GetBytes(ctx, st.Bucket(), protocol.StatusKey(e.ID(), c.job, c.call))
		var s protocol.Status
		if err == nil && json.Unmarshal(raw, &s) == nil {
			for k, d := range []time.Duration{s.Start.Sub(c.t0), s.FuncStart.Sub(s.Start), s.End.Sub(s.FuncEnd), c.t2.Sub(s.End)} {
				phases[k] = append(phases[k], d)
			}
		}
	}
	slices.Sort(lat)
	return lat, phases, nil
}

// oneProc runs this program again with GOMAXPROCS=1 for its warm calls
// only (-warmonly): the same calls from a client that runs on one P.
// warmChild makes n warm calls in a child process of this program, with
// env added to its environment, and returns their median.
func warmChild(ctx context.Context, n int, env ...string) (string, error) {
	cmd := exec.CommandContext(ctx, os.Args[0], "-warmonly", "-warm", fmt.Sprint(n))
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("warm calls with %v: %w", env, err)
	}
	return string(bytes.TrimSpace(out)), nil
}

// extraFuncsEnv, set in a child's environment, makes it (and so its
// workers, the same program) register that many more functions: a call's
// cost must not grow with the program's registry.
const extraFuncsEnv = "BENCH_CORE_EXTRA_FUNCS"

type benchRecord struct {
	Name  string
	Tags  []string
	Score float64
}

func init() {
	n, _ := strconv.Atoi(os.Getenv(extraFuncsEnv))
	for i := range min(n, 1000) {
		lithops.Func(fmt.Sprintf("bench_extra_function_%03d", i), func(ctx context.Context, r benchRecord) ([]benchRecord, error) { return nil, nil })
	}
}

func call(ctx context.Context, e *lithops.Executor, i int) (time.Duration, error) {
	start := time.Now()
	f, err := lithops.CallAsync(ctx, e, noop, i)
	if err != nil {
		return 0, err
	}
	if _, err := f.Result(ctx); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// fsFloor is what n calls cost at the least on this storage: each writes
// one status-sized record create-if-absent, workers at a time, then the
// records are deleted, as a job's cleaner does.
func fsFloor(ctx context.Context, st *storage.Storage, n, workers int) (time.Duration, error) {
	record := bytes.Repeat([]byte("x"), 300)
	prefix := fmt.Sprintf("bench.floor/%d/", time.Now().UnixNano())
	start := time.Now()
	var g errgroup.Group
	g.SetLimit(max(workers, 1))
	for i := range n {
		g.Go(func() error {
			return st.PutIfAbsent(ctx, st.Bucket(), fmt.Sprintf("%s%05d.json", prefix, i), bytes.NewReader(record))
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	d := time.Since(start)
	_, err := st.DeletePrefix(ctx, st.Bucket(), prefix)
	return d, err
}

// callFloor is the median of n single create-if-absent writes of a
// status-sized record, each in a directory of its own, one after the
// other: what a warm call must write at the least before it is answered.
// The records stay under prefix until the caller deletes them, so that
// their deletion does not weigh on what is measured next to them.
func callFloor(ctx context.Context, st *storage.Storage, n int) (median time.Duration, prefix string, err error) {
	record := bytes.Repeat([]byte("x"), 300)
	prefix = fmt.Sprintf("bench.callfloor/%d/", time.Now().UnixNano())
	ds := make([]time.Duration, n)
	for i := range ds {
		start := time.Now()
		if err := st.PutIfAbsent(ctx, st.Bucket(), fmt.Sprintf("%s%05d/00000.json", prefix, i), bytes.NewReader(record)); err != nil {
			st.DeletePrefix(ctx, st.Bucket(), prefix) // what was written before
			return 0, prefix, err
		}
		ds[i] = time.Since(start)
	}
	slices.Sort(ds)
	return ds[n/2], prefix, nil
}

func cold(ctx context.Context, n int) error {
	dir, err := os.MkdirTemp("", "lithops-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "hello")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/hello").CombinedOutput(); err != nil {
		return fmt.Errorf("build examples/hello (run from the repository root): %v\n%s", err, out)
	}
	ds := make([]time.Duration, n)
	for i := range ds {
		start := time.Now()
		out, err := exec.CommandContext(ctx, bin).Output()
		if err != nil || string(out) != "10\n" {
			return fmt.Errorf("examples/hello printed %q: %v", out, err)
		}
		ds[i] = time.Since(start)
	}
	slices.Sort(ds)
	fmt.Printf("cold examples/hello      median %v  max %v  (n=%d; target ≤ 100 ms; Lithops localhost 1.39 s)\n", ds[n/2].Round(100*time.Microsecond), ds[n-1].Round(100*time.Microsecond), n)
	return nil
}
