// Command azure measures the Azure Functions backend against Azurite and the
// Functions-host double (internal/hostdouble) with 8 instances: calls
// enqueued per second, submit-to-all-results time of a 1,000-call no-op
// Map, and the storage requests each call costs (counted by a proxy in
// front of Azurite that every client, host and double request goes
// through), for one call per invocation message (WithChunkSize(1)) and for
// the backend's automatic chunk size, side by side in one run. Azurite
// must be running (scripts/azurite.sh start); run from the repository
// root:
//
//	go run ./bench/azure
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/lithops-go/lithops"
	_ "github.com/lithops-go/lithops/azure"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/internal/azure/build"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/runtimetest"
	"github.com/lithops-go/lithops/storage/azblob"
)

var noop = lithops.Func("bench_azure_noop", func(ctx context.Context, x int) (int, error) { return x, nil })

func main() {
	n := flag.Int("calls", 1000, "calls in the map")
	instances := flag.Int("instances", 8, "host double instances")
	workers := flag.Int("workers", 2, "worker processes per instance (the runtime's worker_processes)")
	timeout := flag.Duration("timeout", 15*time.Second, "the map's call timeout (WithTimeout): with the runtime timeout it bounds how many rounds of calls one message may carry")
	modes := flag.String("chunk", "1,auto", "chunk sizes to measure, in order: a number (WithChunkSize) or auto")
	progress := flag.Duration("progress", 0, "print calls done, requests/s and mean latency by operation at this interval (0: never)")
	flag.Parse()
	lithops.Main(func(ctx context.Context) error {
		cfg := runtimetest.Config("bench")
		cnt, conn, err := startCounter("http://127.0.0.1:10000", "http://127.0.0.1:10001", azblob.DevAccountName, azblob.DevAccountKey)
		if err != nil {
			return err
		}
		defer cnt.close()
		cfg.AzureStorage.ConnectionString = conn
		// The runtime has this many instances: the automatic chunk size
		// spreads a map over them.
		cfg.AzureFunctions.MaxWorkers = *instances
		// The function timeout a deployment has by default (runtime_timeout),
		// known to the hosts as on Azure and enforced by the double.
		fnTimeout := time.Duration(cfg.AzureFunctions.RuntimeTimeout) * time.Second
		env, err := runtimetest.Start(ctx, cfg, runtimetest.Options{Instances: *instances, Workers: *workers,
			Env:             []string{fmt.Sprintf("%s=%d", appsettings.RuntimeTimeout, cfg.AzureFunctions.RuntimeTimeout)},
			FunctionTimeout: fnTimeout})
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
		fmt.Printf("lithops-go %s, %s/%s, %d CPUs, %s; Azurite + host double, %d instances × %d workers; call timeout %v\n",
			lithops.Version, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), time.Now().Format("2006-01-02"), *instances, *workers, *timeout)
		for _, mode := range strings.Split(*modes, ",") {
			opts := []lithops.CallOption{lithops.WithTimeout(*timeout)}
			if mode != "auto" {
				var c int
				if _, err := fmt.Sscan(mode, &c); err != nil || c < 1 {
					return fmt.Errorf("-chunk: %q is neither a number nor auto", mode)
				}
				opts = append(opts, lithops.WithChunkSize(c))
			}
			before := cnt.snapshot()
			start := time.Now()
			fs, err := lithops.Map(ctx, fexec, noop, in, opts...)
			if err != nil {
				return err
			}
			submitted := time.Since(start)
			stopProgress := report(cnt, fs, *progress)
			got, err := fs.Results(ctx)
			stopProgress()
			if err != nil {
				return err
			}
			total := time.Since(start)
			// What is still on its way (completion messages, the last
			// deletes) belongs to this map: let it settle before counting.
			after := settle(cnt)
			for i, v := range got {
				if v != i {
					return fmt.Errorf("result %d = %d", i, v)
				}
			}
			d, reqs := since(after, before)
			fmt.Printf("chunk %-4s  enqueue %d calls in %v (%.0f calls/s); submit to all results %v = %.0f calls/s; %.2f storage requests per call\n",
				mode, *n, submitted.Round(time.Millisecond), float64(*n)/submitted.Seconds(), total.Round(time.Millisecond), float64(*n)/total.Seconds(), float64(reqs)/float64(*n))
			fmt.Printf("            per call: %s\n", perCall(d, *n))
		}
		fmt.Printf("cold start: program %.1f MiB (%.1f MiB gzipped, what a cold instance downloads); first call: submit %v (build and upload), fetch-to-result %v; a warm call %v\n",
			float64(progSize)/(1<<20), float64(progGz)/(1<<20), coldSubmit.Round(time.Millisecond), coldRun.Round(time.Millisecond), warmCall.Round(time.Millisecond))
		s := d.Stats()
		fmt.Printf("double: %d invocations, %d failed, %d restarts\n", s.Invocations, s.Failed, s.Restarts)
		return nil
	})
}

// report prints, every interval, how many calls are done and what the
// storage served in the interval, until the returned stop is called.
func report(c *counter, fs *lithops.Futures[int], every time.Duration) (stop func()) {
	if every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		counts0, lat0, t0 := c.snapshot(), c.latencies(), time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			n := 0
			for _, f := range fs.All() {
				if f.Done() {
					n++
				}
			}
			counts, lat, now := c.snapshot(), c.latencies(), time.Now()
			fmt.Printf("  %d/%d done; %s\n", n, fs.Len(), window(counts, counts0, lat, lat0, now.Sub(t0).Seconds()))
			counts0, lat0, t0 = counts, lat, now
		}
	}()
	return func() { close(done) }
}

// settle waits until no request has gone through the counter for a while
// (at most 3 s) and returns the counts then: the idle polls of the double
// and the client go on, but a map's last messages are in.
func settle(c *counter) map[string]int {
	prev := c.snapshot()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		now := c.snapshot()
		if _, n := since(now, prev); n <= 8 {
			return now
		}
		prev = now
	}
	return prev
}
