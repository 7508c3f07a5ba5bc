// Command soak runs many no-op calls and checks that none is lost: 100,000
// on localhost, then 20,000 through Azurite and the Functions-host double.
// It prints calls/s, lost calls (must be 0) and the client's peak memory.
//
//	go run ./bench/soak                        # Azurite part skipped when Azurite is not running
//	go run ./bench/soak -local 100000 -azure 20000 -instances 8
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/compute/azurefunctions"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/host"
	"github.com/lithops-go/lithops/internal/hostdouble"
)

const azuriteConn = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"

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

func maxRSS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss * 1024
}

// soak maps echo over n inputs in batches and counts results that are
// missing or wrong.
func soak(ctx context.Context, e *lithops.Executor, n, batch int) (time.Duration, int, error) {
	start := time.Now()
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
	}
	return time.Since(start), lost, nil
}

func main() {
	local := flag.Int("local", 100_000, "calls on localhost")
	azure := flag.Int("azure", 20_000, "calls through Azurite and the host double (0: skip)")
	instances := flag.Int("instances", 8, "host double instances")
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
			if c, err := net.DialTimeout("tcp", "127.0.0.1:10001", time.Second); err != nil {
				fmt.Println("azure      skipped: Azurite not running (scripts/azurite.sh start)")
			} else {
				c.Close()
				took, lost, err := soakAzure(ctx, *azure, *instances)
				if err != nil {
					return err
				}
				fmt.Printf("azure      %7d calls in %v: %6.0f calls/s, lost %d (Azurite + host double, %d instances)\n", *azure, took.Round(time.Millisecond), float64(*azure)/took.Seconds(), lost, *instances)
			}
		}
		close(stop)
		fmt.Printf("client peak: heap in use %.0f MiB, RSS %.0f MiB\n", float64(pk.heap.Load())/(1<<20), float64(maxRSS())/(1<<20))
		return nil
	})
}

func soakAzure(ctx context.Context, n, instances int) (time.Duration, int, error) {
	dir, err := os.MkdirTemp("", "lithops-soak-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "lithops")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/lithops").CombinedOutput(); err != nil {
		return 0, 0, fmt.Errorf("build the runtime host (run from the repository root): %v\n%s", err, out)
	}
	id := fmt.Sprintf("%08x", rand.Uint32())
	cfg := config.Default()
	cfg.Lithops.Backend, cfg.Lithops.Storage = "azure_functions", "azure_storage"
	cfg.AzureStorage.ConnectionString = azuriteConn
	cfg.AzureStorage.StorageBucket = "lithops-soak-" + id
	cfg.AzureFunctions.Runtime = "soak-" + id
	svc, err := azurefunctions.NewQueueService(cfg.AzureStorage)
	if err != nil {
		return 0, 0, err
	}
	names := azurefunctions.RuntimeNames("devstoreaccount1", cfg.AzureFunctions.Runtime, lithops.Version)
	if err := azurefunctions.EnsureQueue(ctx, svc, names.Queue); err != nil {
		return 0, 0, err
	}
	defer svc.DeleteQueue(context.Background(), names.Queue, nil)
	d, err := hostdouble.Start(ctx, hostdouble.Options{
		Command: []string{bin, "runtime", "serve"},
		Env: []string{"AzureWebJobsStorage=" + azuriteConn, "LITHOPS_STORAGE_BUCKET=" + cfg.AzureStorage.StorageBucket,
			"LITHOPS_RUNTIME_NAME=" + cfg.AzureFunctions.Runtime, "LITHOPS_WORKER_PROCESSES=1"},
		Queues: svc, Queue: names.Queue, Function: host.FunctionName, Instances: instances,
	})
	if err != nil {
		return 0, 0, err
	}
	defer d.Close()
	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		st.DeletePrefix(context.Background(), st.Bucket(), "")
		st.Close()
	}()
	if _, err := azurefunctions.ProbeMetadata(ctx, st, svc, names, cfg.AzureFunctions.Runtime, time.Minute); err != nil {
		return 0, 0, err
	}
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
	if err != nil {
		return 0, 0, err
	}
	defer e.Close()
	return soak(ctx, e, n, 2_000)
}
