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
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/compute/azurefunctions"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/host"
	"github.com/lithops-go/lithops/internal/hostdouble"
)

const azuriteConn = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"

var noop = lithops.Func("bench_azure_noop", func(ctx context.Context, x int) (int, error) { return x, nil })

func main() {
	n := flag.Int("calls", 1000, "calls in the map")
	instances := flag.Int("instances", 8, "host double instances")
	flag.Parse()
	lithops.Main(func(ctx context.Context) error {
		dir, err := os.MkdirTemp("", "lithops-bench-azure-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "lithops")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/lithops").CombinedOutput(); err != nil {
			return fmt.Errorf("build the runtime host (run from the repository root): %v\n%s", err, out)
		}
		id := fmt.Sprintf("%08x", rand.Uint32())
		cfg := config.Default()
		cfg.Lithops.Backend, cfg.Lithops.Storage = "azure_functions", "azure_storage"
		cfg.AzureStorage.ConnectionString = azuriteConn
		cfg.AzureStorage.StorageBucket = "lithops-bench-" + id
		cfg.AzureFunctions.Runtime = "bench-" + id
		svc, err := azurefunctions.NewQueueService(cfg.AzureStorage)
		if err != nil {
			return err
		}
		names := azurefunctions.RuntimeNames("devstoreaccount1", cfg.AzureFunctions.Runtime, lithops.Version)
		if err := azurefunctions.EnsureQueue(ctx, svc, names.Queue); err != nil {
			return fmt.Errorf("%w (is Azurite running? scripts/azurite.sh start)", err)
		}
		defer svc.DeleteQueue(context.Background(), names.Queue, nil)
		d, err := hostdouble.Start(ctx, hostdouble.Options{
			Command: []string{bin, "runtime", "serve"},
			Env: []string{"AzureWebJobsStorage=" + azuriteConn, "LITHOPS_STORAGE_BUCKET=" + cfg.AzureStorage.StorageBucket,
				"LITHOPS_RUNTIME_NAME=" + cfg.AzureFunctions.Runtime, "LITHOPS_WORKER_PROCESSES=1"},
			Queues: svc, Queue: names.Queue, Function: host.FunctionName, Instances: *instances,
			Output: os.Stderr,
		})
		if err != nil {
			return err
		}
		defer d.Close()
		st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
		if err != nil {
			return err
		}
		if _, err := azurefunctions.ProbeMetadata(ctx, st, svc, names, cfg.AzureFunctions.Runtime, time.Minute); err != nil {
			return err
		}
		fexec, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
		if err != nil {
			return err
		}
		defer fexec.Close()
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
		s := d.Stats()
		fmt.Printf("double: %d invocations, %d failed, %d restarts\n", s.Invocations, s.Failed, s.Restarts)
		st.DeletePrefix(context.Background(), st.Bucket(), "")
		return nil
	})
}
