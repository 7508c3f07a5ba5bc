// Command azure measures the Azure Functions backend against Azurite and the
// Functions-host double (internal/hostdouble) with 8 instances: calls
// enqueued per second, and submit-to-all-results time of a 1,000-call no-op
// Map. Azurite must be running (scripts/azurite.sh start); run from the
// repository root:
//
//	go run ./bench/azure
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/lithops-go/lithops"
	_ "github.com/lithops-go/lithops/azure"
	"github.com/lithops-go/lithops/internal/azure/build"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/runtimetest"
)

var noop = lithops.Func("bench_azure_noop", func(ctx context.Context, x int) (int, error) { return x, nil })

func main() {
	n := flag.Int("calls", 1000, "calls in the map")
	instances := flag.Int("instances", 8, "host double instances")
	flag.Parse()
	lithops.Main(func(ctx context.Context) error {
		cfg := runtimetest.Config("bench")
		env, err := runtimetest.Start(ctx, cfg, runtimetest.Options{Instances: *instances, Workers: 1})
		if err != nil {
			return err
		}
		defer env.Close()
		d := env.Double
		fexec, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
		if err != nil {
			return err
		}
		defer fexec.Close()
		// Cold start: the first call uploads the program (submit), then a
		// host fetches it by hash, verifies it and starts a worker (submit
		// to result); a second call on the same host is warm.
		t0 := time.Now()
		f, err := lithops.CallAsync(ctx, fexec, noop, 1)
		if err != nil {
			return err
		}
		coldSubmit := time.Since(t0)
		t1 := time.Now()
		if _, err := f.Result(ctx); err != nil {
			return err
		}
		coldRun := time.Since(t1)
		t2 := time.Now()
		if f, err = lithops.CallAsync(ctx, fexec, noop, 2); err != nil {
			return err
		}
		if _, err := f.Result(ctx); err != nil {
			return err
		}
		warmCall := time.Since(t2)
		var progSize, progGz int64
		st := fexec.Storage()
		if bins, err := st.List(ctx, st.Bucket(), protocol.ProgramKey("")); err == nil && len(bins) == 1 {
			progGz = bins[0].Size
		}
		if path, cleanup, err := build.ProgramPath(ctx, ""); err == nil {
			if fi, err := os.Stat(path); err == nil {
				progSize = fi.Size()
			}
			cleanup()
		}
		// Warm up: upload the program, start every host's worker.
		warm := make([]int, *instances*2)
		if fs, err := lithops.Map(ctx, fexec, noop, warm); err != nil {
			return err
		} else if _, err := fs.Results(ctx); err != nil {
			return err
		}
		in := make([]int, *n)
		for i := range in {
			in[i] = i
		}
		start := time.Now()
		fs, err := lithops.Map(ctx, fexec, noop, in)
		if err != nil {
			return err
		}
		submitted := time.Since(start)
		got, err := fs.Results(ctx)
		if err != nil {
			return err
		}
		total := time.Since(start)
		for i, v := range got {
			if v != i {
				return fmt.Errorf("result %d = %d", i, v)
			}
		}
		fmt.Printf("lithops-go %s, %s/%s, %d CPUs, %s; Azurite + host double, %d instances\n", lithops.Version, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), time.Now().Format("2006-01-02"), *instances)
		fmt.Printf("enqueue            %d calls in %v = %.0f calls/s\n", *n, submitted.Round(time.Millisecond), float64(*n)/submitted.Seconds())
		fmt.Printf("Map no-op × %d   submit to all results %v (%.0f calls/s)\n", *n, total.Round(time.Millisecond), float64(*n)/total.Seconds())
		fmt.Printf("cold start: program %.1f MiB (%.1f MiB gzipped, what a cold instance downloads); first call: submit %v (build and upload), fetch-to-result %v; a warm call %v\n",
			float64(progSize)/(1<<20), float64(progGz)/(1<<20), coldSubmit.Round(time.Millisecond), coldRun.Round(time.Millisecond), warmCall.Round(time.Millisecond))
		s := d.Stats()
		fmt.Printf("double: %d invocations, %d failed, %d restarts\n", s.Invocations, s.Failed, s.Restarts)
		return nil
	})
}
