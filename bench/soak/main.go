// Command soak runs many no-op calls and checks that none is lost: 100,000
// on localhost, then 20,000 through Azurite and the Functions-host double.
// It prints calls/s, lost calls (must be 0) and the client's peak memory.
//
//	go run ./bench/soak                        # Azurite part skipped when Azurite is not installed (npm ci)
//	go run ./bench/soak -local 100000 -azure 20000 -instances 8
//
// The Azurite part starts a private Azurite that keeps its data on disk in
// a temporary directory: in memory, Azurite stores every blob and message
// as its own extent, and its 10-minute garbage collector deletes extents
// one by one, rebuilding an index each time, which freezes it for many
// minutes once tens of thousands of calls have been cleaned.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/lithops-go/lithops/bench/internal/usage"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/runtimetest"
)

var echo = lithops.Func("soak_echo", func(ctx context.Context, x int) (int, error) { return x, nil })

// peak samples the Go heap in use; getrusage gives the peak RSS.
type peak struct{ heap atomic.Uint64 }

func (p *peak) sample(stop <-chan struct{}) {
	var ms runtime.MemStats
	for {
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > p.heap.Load() {
			p.heap.Store(ms.HeapInuse)
		}
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func maxRSS() int64 { return usage.PeakRSS() }

// soak maps echo over n inputs in batches and counts results that are
// missing or wrong. The time it returns leaves out the cleaning between
// batches, which it prints.
func soak(ctx context.Context, e *lithops.Executor, n, batch int) (time.Duration, int, error) {
	start := time.Now()
	var cleaning time.Duration
	lost := 0
	for off := 0; off < n; off += batch {
		in := make([]int, min(batch, n-off))
		for i := range in {
			in[i] = off + i
		}
		fs, err := lithops.Map(ctx, e, echo, in)
		if err != nil {
			return 0, 0, err
		}
		for i := range in {
			v, err := fs.At(i).Result(ctx)
			if err != nil || v != in[i] {
				lost++
			}
		}
		// Clean each verified batch, as a long-running client would:
		// storage and the executor's memory stay small.
		// Cleaning is best effort: a slow delete is not a lost call.
		t0 := time.Now()
		if err := e.Clean(ctx, fs.At(0).JobID()); err != nil {
			fmt.Fprintln(os.Stderr, "soak: cleaning a batch:", err)
		}
		cleaning += time.Since(t0)
		fmt.Fprintf(os.Stderr, "soak: %d calls verified, %d lost\n", off+len(in), lost)
	}
	fmt.Printf("           (cleaning the batches took %v more)\n", cleaning.Round(time.Millisecond))
	return time.Since(start) - cleaning, lost, nil
}

func main() {
	local := flag.Int("local", 100_000, "calls on localhost")
	azure := flag.Int("azure", 20_000, "calls through Azurite and the host double (0: skip)")
	instances := flag.Int("instances", 8, "host double instances")
	shared := flag.Bool("shared-azurite", false, "use the Azurite on 127.0.0.1:10000/10001 (scripts/azurite.sh) instead of a private one")
	azBatch := flag.Int("azure-batch", 500, "calls per Map on Azurite (Azurite slows down as its queue grows)")
	root := flag.String("root", "", "localhost storage root (default: the OS temp dir)")
	flag.Parse()
	lithops.Main(func(ctx context.Context) error {
		debug.SetGCPercent(100)
		fmt.Printf("lithops-go %s, %s/%s, %d CPUs, %s\n", lithops.Version, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), time.Now().Format("2006-01-02"))
		var pk peak
		stop := make(chan struct{})
		go pk.sample(stop)

		cfg := config.Default()
		if *root != "" {
			cfg.Localhost.StorageRoot = *root
		}
		e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
		if err != nil {
			return err
		}
		took, lost, err := soak(ctx, e, *local, 10_000)
		e.Close()
		if err != nil {
			return err
		}
		fmt.Printf("localhost  %7d calls in %v: %6.0f calls/s, lost %d\n", *local, took.Round(time.Millisecond), float64(*local)/took.Seconds(), lost)

		if *azure > 0 {
			took, lost, err := soakAzure(ctx, *azure, *azBatch, *instances, *shared)
			if errors.Is(err, errSkip) {
				fmt.Println("azure      skipped:", err)
			} else if err != nil {
				return err
			} else {
				fmt.Printf("azure      %7d calls in %v: %6.0f calls/s, lost %d (Azurite %s + host double, %d instances, Map batches of %d)\n", *azure, took.Round(time.Millisecond), float64(*azure)/took.Seconds(), lost, map[bool]string{true: "shared", false: "private, on disk"}[*shared], *instances, *azBatch)
			}
		}
		close(stop)
		fmt.Printf("client peak: heap in use %.0f MiB, RSS %.0f MiB\n", float64(pk.heap.Load())/(1<<20), float64(maxRSS())/(1<<20))
		return nil
	})
}

var errSkip = errors.New("no Azurite")

func soakAzure(ctx context.Context, n, batch, instances int, shared bool) (time.Duration, int, error) {
	cfg := runtimetest.Config("soak")
	if shared {
		if !runtimetest.AzuriteRunning() {
			return 0, 0, fmt.Errorf("%w: not running on 127.0.0.1:10000 (scripts/azurite.sh start)", errSkip)
		}
	} else {
		dir, err := os.MkdirTemp("", "lithops-soak-azurite-")
		if err != nil {
			return 0, 0, err
		}
		defer os.RemoveAll(dir)
		az, err := runtimetest.StartAzurite(ctx, dir)
		if errors.Is(err, runtimetest.ErrNoAzurite) {
			return 0, 0, fmt.Errorf("%w: %v", errSkip, err)
		}
		if err != nil {
			return 0, 0, err
		}
		defer az.Close()
		cfg.AzureStorage.ConnectionString = az.Conn()
	}
	env, err := runtimetest.Start(ctx, cfg, runtimetest.Options{Instances: instances, Workers: 1})
	if err != nil {
		return 0, 0, err
	}
	defer env.Close()
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
	if err != nil {
		return 0, 0, err
	}
	defer e.Close()
	return soak(ctx, e, n, batch)
}
