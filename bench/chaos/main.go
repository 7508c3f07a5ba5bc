// Command chaos runs a mixed fault campaign and checks that nothing is
// lost, duplicated or wrong, on localhost and on Azurite with the
// Functions-host double:
//
//   - random kills of worker processes while a map runs;
//   - a client killed mid-job, then Attach and Rerun from a new process;
//   - (Azure) a whole host instance killed and restarted by the double;
//   - (Azure) the storage emulator stopped and started mid-job;
//   - (Azure) duplicate deliveries: copies of invocation messages enqueued.
//
// Each phase prints calls submitted, results verified, lost, duplicated
// (calls with more than one successful record) and wrong (all three must be
// 0), the phase's time beside a fault-free run of the same size, and for
// the detection-bound faults how long recovery took.
//
//	go run ./bench/chaos                 # 2,000 calls per localhost phase, 600 per Azure phase
//	go run ./bench/chaos -local 5000 -azure 1000
//	go run ./bench/chaos -quick -local 50000 -azure 0   # calls that do not sleep: kills hit batches
//
// The Azure part starts a private Azurite (npm ci installs it) that keeps
// its data on disk, so that it can be stopped and started.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/queues"
	"github.com/lithops-go/lithops/internal/runtimetest"
	"github.com/lithops-go/lithops/internal/worker"
	"github.com/lithops-go/lithops/storage"
)

// square takes a few milliseconds, so that kills hit running calls.
var square = lithops.Func("chaos_square", func(ctx context.Context, x int) (int, error) {
	time.Sleep(time.Duration(2+x%7) * time.Millisecond)
	return x * x, nil
})

// quickSquare does not sleep: with -quick, a worker runs many calls in one
// request and records them in batch records, so kills land mid-batch.
var quickSquare = lithops.Func("chaos_quick_square", func(ctx context.Context, x int) (int, error) {
	return x * x, nil
})

// mapped is what run maps: square, or quickSquare with -quick.
var mapped = square

// tally is what a phase verified. A call that the injected kills failed on
// every attempt (retries exhausted, ErrCrashed) is exhausted, not lost:
// its failure is recorded and named. Lost is a call without its outcome.
type tally struct {
	calls, verified, lost, duplicated, wrong, exhausted int
	took                                                time.Duration
}

func (t tally) ok() bool { return t.lost == 0 && t.duplicated == 0 && t.wrong == 0 }

func main() {
	local := flag.Int("local", 2000, "calls per localhost phase")
	azure := flag.Int("azure", 600, "calls per Azure phase (0: skip)")
	flag.CommandLine.Lookup("local").Usage = "calls per localhost phase (0: skip)"
	instances := flag.Int("instances", 4, "host double instances")
	client := flag.String("client", "", "internal: run as the client that the campaign kills (config file)")
	quick := flag.Bool("quick", false, "map a function that does not sleep in the worker-kill phases (batch requests and records)")
	flag.Parse()
	if *quick {
		mapped = quickSquare
	}
	lithops.Main(func(ctx context.Context) error {
		if *client != "" {
			return doomedClient(ctx, *client, *local)
		}
		fmt.Printf("lithops-go %s, %s/%s, %d CPUs, %s\n", lithops.Version, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), time.Now().Format("2006-01-02"))
		var all []tally
		report := func(name string, t tally, base time.Duration, extra string) {
			all = append(all, t)
			if t.exhausted > 0 {
				extra += fmt.Sprintf("  (%d failed on every attempt: ErrCrashed)", t.exhausted)
			}
			fmt.Printf("%-38s calls %5d  verified %5d  lost %d  duplicated %d  wrong %d  %6.2fs (fault-free %5.2fs)%s\n",
				name, t.calls, t.verified, t.lost, t.duplicated, t.wrong, t.took.Seconds(), base.Seconds(), extra)
		}
		if *local > 0 {
			if err := localPhases(ctx, *local, report); err != nil {
				return err
			}
		}
		if *azure > 0 {
			if err := azurePhases(ctx, *azure, *instances, report); err != nil {
				if !errors.Is(err, runtimetest.ErrNoAzurite) {
					return err
				}
				fmt.Println("azure phases skipped:", err)
			}
		}
		bad := 0
		for _, t := range all {
			if !t.ok() {
				bad++
			}
		}
		if bad > 0 {
			return fmt.Errorf("%d phase(s) lost, duplicated or got wrong results", bad)
		}
		fmt.Println("all phases: 0 lost, 0 duplicated, 0 wrong")
		return nil
	})
}

// run maps square over n inputs on e, optionally while fault runs, and
// verifies every result and the job's records.
func run(ctx context.Context, e *lithops.Executor, n int, fault func(ctx context.Context)) (tally, error) {
	in := make([]int, n)
	for i := range in {
		in[i] = i
	}
	start := time.Now()
	fs, err := lithops.Map(ctx, e, mapped, in, lithops.WithRetries(4))
	if err != nil {
		return tally{}, err
	}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	if fault != nil {
		go func() { fault(fctx); close(done) }()
	} else {
		close(done)
	}
	t := verify(ctx, fs)
	t.took = time.Since(start)
	stop()
	<-done
	t.duplicated, err = duplicated(ctx, e.Storage(), e.ID(), fs.At(0).JobID())
	return t, err
}

// verify waits for every result of a map of square over 0..n-1 and counts
// what came back right, wrong, or not at all.
func verify(ctx context.Context, fs *lithops.Futures[int]) tally {
	t := tally{calls: fs.Len()}
	for i := range fs.Len() {
		v, err := fs.At(i).Result(ctx)
		switch {
		case errors.Is(err, lithops.ErrCrashed):
			t.exhausted++
		case err != nil:
			t.lost++
		case v != i*i:
			t.wrong++
		default:
			t.verified++
		}
	}
	return t
}

// duplicated counts calls of a job with more than one final status: two
// successes, or a success and a failure, in their own records or batch or
// block records (worker.Finals).
func duplicated(ctx context.Context, st *storage.Storage, exec, job string) (int, error) {
	_, twice, err := worker.Finals(ctx, st, st.Bucket(), exec, job)
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	for _, c := range twice {
		seen[c] = true
	}
	return len(seen), nil
}

// killWorkers kills a random worker process (a descendant of this process
// in worker mode) every interval until ctx ends, and counts the kills.
func killWorkers(interval time.Duration, kills *atomic.Int64) func(context.Context) {
	return func(ctx context.Context) {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
			if ws := workers(); len(ws) > 0 {
				if p, err := os.FindProcess(ws[rand.IntN(len(ws))]); err == nil && p.Kill() == nil {
					kills.Add(1)
				}
			}
		}
	}
}

// workers lists the processes below this one that run in worker mode.
func workers() []int {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	var cands []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(stat), ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		parent[pid], _ = strconv.Atoi(f[1])
		if env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ")); err == nil && strings.Contains(string(env), "LITHOPS_WORKER=localhost\x00") {
			cands = append(cands, pid)
		}
	}
	me := os.Getpid()
	var out []int
	for _, pid := range cands {
		for p, hops := parent[pid], 0; p > 1 && hops < 10; p, hops = parent[p], hops+1 {
			if p == me {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

func localPhases(ctx context.Context, n int, report func(string, tally, time.Duration, string)) error {
	root, err := os.MkdirTemp("", "lithops-chaos-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	cfg := config.Default()
	cfg.Localhost.StorageRoot = root
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
	if err != nil {
		return err
	}
	defer e.Close()
	base, err := run(ctx, e, n, nil)
	if err != nil {
		return err
	}
	report("localhost: fault-free", base, base.took, "")
	var kills atomic.Int64
	t, err := run(ctx, e, n, killWorkers(100*time.Millisecond, &kills))
	if err != nil {
		return err
	}
	report("localhost: random worker kills", t, base.took, fmt.Sprintf("  (%d kills)", kills.Load()))

	t, detect, err := clientKill(ctx, root, n)
	if err != nil {
		return err
	}
	report("localhost: client kill, attach, rerun", t, base.took, fmt.Sprintf("  (attach+rerun %.2fs)", detect.Seconds()))
	return nil
}

// doomedClient submits a map, prints its executor id and waits to be
// killed (run as a separate process by clientKill).
func doomedClient(ctx context.Context, cfgPath string, n int) error {
	e, err := lithops.NewExecutor(ctx, lithops.WithConfigFile(cfgPath))
	if err != nil {
		return err
	}
	in := make([]int, n)
	for i := range in {
		in[i] = i
	}
	if _, err := lithops.Map(ctx, e, square, in); err != nil {
		return err
	}
	fmt.Println("EXECUTOR", e.ID())
	time.Sleep(time.Hour)
	return nil
}

// clientKill starts a client process, kills it mid-job, attaches to its
// executor from here and reruns what never finished.
func clientKill(ctx context.Context, root string, n int) (tally, time.Duration, error) {
	cfgPath := filepath.Join(root, "client.yaml")
	if err := os.WriteFile(cfgPath, []byte("lithops:\n  data_cleaner: false\nlocalhost:\n  storage_root: "+root+"\n"), 0o600); err != nil {
		return tally{}, 0, err
	}
	self, err := os.Executable()
	if err != nil {
		return tally{}, 0, err
	}
	cmd := exec.CommandContext(ctx, self, "-client", cfgPath, "-local", strconv.Itoa(n))
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return tally{}, 0, err
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	id, ok := strings.CutPrefix(strings.TrimSpace(line), "EXECUTOR ")
	if !ok {
		cmd.Process.Kill()
		cmd.Wait()
		return tally{}, 0, fmt.Errorf("client said %q", line)
	}
	time.Sleep(300 * time.Millisecond) // some calls done, most not
	cmd.Process.Kill()                 // its workers die with it (procgroup: the kernel kills them)
	cmd.Wait()
	start := time.Now()
	e, err := lithops.Attach(ctx, id, lithops.WithConfigFile(cfgPath))
	if err != nil {
		return tally{}, 0, err
	}
	defer e.Close()
	job := e.Jobs()[0].ID
	if _, err := e.Rerun(ctx, job); err != nil {
		return tally{}, 0, err
	}
	fs, err := lithops.JobFutures[int](e, job)
	if err != nil {
		return tally{}, 0, err
	}
	t := verify(ctx, fs)
	t.took = time.Since(start)
	t.duplicated, err = duplicated(ctx, e.Storage(), id, job)
	return t, t.took, err
}

func azurePhases(ctx context.Context, n, instances int, report func(string, tally, time.Duration, string)) error {
	dir, err := os.MkdirTemp("", "lithops-chaos-azurite-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	az, err := runtimetest.StartAzurite(ctx, dir)
	if err != nil {
		return err
	}
	defer az.Close()
	cfg := runtimetest.Config("chaos")
	cfg.AzureStorage.ConnectionString = az.Conn()
	cfg.Lithops.MonitoringInterval = 0.5
	cfg.Lithops.LeaseTimeout = 5
	env, err := runtimetest.Start(ctx, cfg, runtimetest.Options{Instances: instances, Workers: 2, Lease: 30 * time.Second, Output: &discard{}})
	if err != nil {
		return err
	}
	defer env.Close()
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
	if err != nil {
		return err
	}
	defer e.Close()

	base, err := run(ctx, e, n, nil)
	if err != nil {
		return err
	}
	report("azure: fault-free", base, base.took, "")

	var kills atomic.Int64
	t, err := run(ctx, e, n, killWorkers(250*time.Millisecond, &kills))
	if err != nil {
		return err
	}
	report("azure: random worker kills", t, base.took, fmt.Sprintf("  (%d kills)", kills.Load()))

	t, err = run(ctx, e, n, func(ctx context.Context) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(base.took / 3):
		}
		env.Double.Kill(rand.IntN(instances))
	})
	if err != nil {
		return err
	}
	report("azure: host instance killed", t, base.took, fmt.Sprintf("  (restarts %d)", env.Double.Stats().Restarts))

	t, err = run(ctx, e, n, func(ctx context.Context) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(base.took / 4):
		}
		az.Stop()
		time.Sleep(2 * time.Second)
		az.Start(context.Background())
	})
	if err != nil {
		return err
	}
	report("azure: Azurite stopped 2 s mid-job", t, base.took, "")

	svc, err := queues.NewService(cfg.AzureStorage)
	if err != nil {
		return err
	}
	var dups atomic.Int64
	t, err = run(ctx, e, n, duplicateDeliveries(svc.NewQueueClient(env.Names.Queue), &dups))
	if err != nil {
		return err
	}
	report("azure: duplicate deliveries", t, base.took, fmt.Sprintf("  (%d messages delivered twice)", dups.Load()))
	return nil
}

// duplicateDeliveries enqueues copies of the invocation messages it sees in
// the trigger queue, as an at-least-once queue may deliver them twice.
func duplicateDeliveries(q *azqueue.QueueClient, dups *atomic.Int64) func(context.Context) {
	return func(ctx context.Context) {
		seen := map[string]bool{}
		for ctx.Err() == nil {
			resp, err := q.PeekMessages(ctx, &azqueue.PeekMessagesOptions{NumberOfMessages: to.Ptr(int32(32))})
			if err == nil {
				for _, m := range resp.Messages {
					if m.MessageText == nil || m.MessageID == nil || seen[*m.MessageID] {
						continue
					}
					seen[*m.MessageID] = true
					if _, err := base64.StdEncoding.DecodeString(*m.MessageText); err != nil {
						continue
					}
					if _, err := q.EnqueueMessage(ctx, *m.MessageText, nil); err == nil {
						dups.Add(1)
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// discard drops the hosts' output.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
