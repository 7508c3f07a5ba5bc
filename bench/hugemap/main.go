// Command hugemap runs no-op maps of growing size on the localhost backend
// and prints, per size, the time per call, the client's CPU, and its heap:
// the peak while the map runs and what stays once the results are
// collected. Time and heap per call should stay flat as the map grows.
//
//	go run ./bench/hugemap -calls 10000,100000,1000000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lithops-go/lithops/bench/internal/usage"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
)

var noop = lithops.Func("bench_hugemap_noop", func(ctx context.Context, x int32) (int32, error) { return x, nil })

var memProfile string

func cpu() time.Duration { return usage.CPU() }

func heap() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func main() {
	sizes := flag.String("calls", "10000,100000", "comma-separated map sizes")
	workers := flag.Int("workers", 0, "worker processes (0: the config's default)")
	flag.StringVar(&memProfile, "memprofile", "", "write a heap profile of the last size, taken when half its calls are done, to this file")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the client to this file")
	flag.Parse()
	lithops.Main(func(ctx context.Context) error {
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
		root, err := os.MkdirTemp("", "bench-hugemap-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(root)
		cfg := config.Default()
		cfg.Localhost.StorageRoot = root
		cfg.Lithops.DataLimit = new(float64) // 0: no limit; a million inputs are more than Lithops' 4 MiB default
		opts := []lithops.Option{lithops.WithConfig(cfg)}
		if *workers > 0 {
			opts = append(opts, lithops.WithMaxWorkers(*workers))
		}
		e, err := lithops.NewExecutor(ctx, opts...)
		if err != nil {
			return err
		}
		defer e.Close()
		fmt.Printf("no-op Map on localhost, %d worker processes, %d CPUs\n", e.Config().Localhost.WorkerProcesses, runtime.NumCPU())
		fmt.Printf("%10s %10s %10s %12s %14s %14s %14s\n", "calls", "wall", "per call", "client CPU", "client CPU/wall", "peak heap/call", "kept heap/call")
		for _, f := range strings.Split(*sizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				return fmt.Errorf("-calls: %q is not a size", f)
			}
			if err := run(ctx, e, n); err != nil {
				return err
			}
		}
		return nil
	})
}

func run(ctx context.Context, e *lithops.Executor, n int) error {
	runtime.GC()
	base := heap()
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				if h := heap(); h > peak.Load() {
					peak.Store(h)
				}
			}
		}
	}()
	inputs := make([]int32, n)
	for i := range inputs {
		inputs[i] = int32(i)
	}
	start, cpu0 := time.Now(), cpu()
	fs, err := lithops.Map(ctx, e, noop, inputs)
	if err != nil {
		return err
	}
	inputs = nil
	// The user's view: a progress bar while the map runs.
	waitStart := time.Now()
	if memProfile != "" {
		if _, err := lithops.Wait(ctx, fs, lithops.WaitPercent(50)); err != nil {
			return err
		}
		f, err := os.Create(memProfile)
		if err != nil {
			return err
		}
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	if _, err := lithops.Wait(ctx, fs, lithops.WaitProgressBar(io.Discard)); err != nil {
		return err
	}
	waitWall := time.Since(waitStart)
	got, err := fs.Results(ctx)
	if err != nil {
		return err
	}
	wall, used := time.Since(start), cpu()-cpu0
	for i, v := range got {
		if v != int32(i) {
			return fmt.Errorf("result %d = %d", i, v)
		}
	}
	close(stopSampling)
	<-sampled
	runtime.GC()
	kept := heap()
	runtime.KeepAlive(fs)
	runtime.KeepAlive(got)
	fmt.Printf("%10d %10v %10v %12v %13.1f%% %13dB %13dB\n", n, wall.Round(time.Millisecond), (wall / time.Duration(n)).Round(100*time.Nanosecond),
		used.Round(time.Millisecond), 100*used.Seconds()/waitWall.Seconds(), (peak.Load()-min(base, peak.Load()))/uint64(n), (kept-min(base, kept))/uint64(n))
	return nil
}
