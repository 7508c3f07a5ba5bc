package azurefunctions_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/lithops-go/lithops"
	_ "github.com/lithops-go/lithops/azure" // the test binary serves as the runtime host
	"github.com/lithops-go/lithops/compute/azurefunctions"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/internal/azure/naming"
	"github.com/lithops-go/lithops/internal/azure/queues"
	"github.com/lithops-go/lithops/internal/hostdouble"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/runtimetest"
)

func TestMain(m *testing.M) {
	lithops.Init() // the test binary is the user program the runtime fetches and runs
	os.Exit(m.Run())
}

var (
	addSeven = lithops.Func("af_add_seven", func(ctx context.Context, x int) (int, error) { return x + 7, nil })
	// pad and length make results too big to ride along a chained call's
	// invocation message, and small ones.
	pad    = lithops.Func("af_pad", func(ctx context.Context, n int) (string, error) { return strings.Repeat("x", n), nil })
	length = lithops.Func("af_len", func(ctx context.Context, s string) (int, error) { return len(s), nil })
	sum    = lithops.Func("af_sum", func(ctx context.Context, xs []int) (int, error) {
		n := 0
		for _, x := range xs {
			n += x
		}
		return n, nil
	})
	behave = lithops.Func("af_behave", func(ctx context.Context, mode string) (string, error) {
		switch mode {
		case "error":
			return "", errors.New("boom from azure")
		case "panic":
			panic("kaboom")
		case "sleep":
			time.Sleep(time.Minute)
		case "nap":
			time.Sleep(3 * time.Second)
		}
		return "ok:" + mode, nil
	})
	// hostEnv reports whether the host's own settings leaked to the program.
	hostEnv = lithops.Func("af_host_env", func(ctx context.Context, _ int) (string, error) {
		return os.Getenv(appsettings.HostStorage) + os.Getenv(appsettings.CustomHandlerPort), nil
	})
	// flaky fails the first Fails invocations for its counter file.
	flaky = lithops.Func("af_flaky", func(ctx context.Context, in struct {
		Path  string
		Fails int
	}) (int, error) {
		b, _ := os.ReadFile(in.Path)
		n := len(b)
		os.WriteFile(in.Path, append(b, 'x'), 0o644)
		if n < in.Fails {
			return 0, fmt.Errorf("flaky failure %d", n)
		}
		return n, nil
	})
	countWords = lithops.Func("af_count_words", func(ctx context.Context, c lithops.ObjectChunk) (int, error) {
		rc, err := c.Open(ctx)
		if err != nil {
			return 0, err
		}
		defer rc.Close()
		sc := bufio.NewScanner(rc)
		sc.Split(bufio.ScanWords)
		n := 0
		for sc.Scan() {
			n++
		}
		return n, sc.Err()
	})
)

// env is a runtime served by the host double on Azurite.
type env struct {
	cfg    *config.Config
	names  naming.Names
	double *hostdouble.Double
}

// buildHost builds the runtime host (cmd/lithops) once per test binary.
func buildHost(t *testing.T) string {
	bin, err := runtimetest.HostBinary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func requireAzurite(t *testing.T) {
	t.Helper()
	if !runtimetest.AzuriteRunning() {
		t.Skip("Azurite not running on 127.0.0.1:10000/10001: start it with scripts/azurite.sh start")
	}
}

func startRuntime(t *testing.T, instances int) *env {
	t.Helper()
	return startRuntimeLease(t, instances, 10*time.Second)
}

// startRuntimeLease starts a runtime whose queue lease (visibility while a
// message runs) is lease.
func startRuntimeLease(t *testing.T, instances int, lease time.Duration) *env {
	t.Helper()
	requireAzurite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := runtimetest.Config("e2e")
	cfg.Lithops.MonitoringInterval = 1
	r, err := runtimetest.Start(ctx, cfg, runtimetest.Options{Instances: instances, Workers: 2, Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if m := r.Meta; m.Version != protocol.Version || m.LithopsVersion != lithops.Version || m.Workers != 2 {
		t.Fatalf("runtime metadata %+v", m)
	}
	return &env{cfg: cfg, names: r.Names, double: r.Double}
}

func newExecutor(t *testing.T, e *env) *lithops.Executor {
	t.Helper()
	ex, err := lithops.NewExecutor(context.Background(), lithops.WithConfig(e.cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

func TestEndToEnd(t *testing.T) {
	e := startRuntime(t, 3)
	ex := newExecutor(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("hello", func(t *testing.T) {
		f, err := lithops.CallAsync(ctx, ex, addSeven, 3)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := f.Result(ctx); err != nil || v != 10 {
			t.Fatalf("got %v, %v", v, err)
		}
	})
	t.Run("map_1000", func(t *testing.T) { mapAddSeven(ctx, t, ex, 1000) })
	t.Run("map_futures", func(t *testing.T) {
		// Chained calls get their input's result inline when it is small,
		// a reference to its status when it is not (2,000 and 20,000
		// bytes: inline in the status, and an object of its own).
		sizes := []int{3, 2000, 20_000, 10, 2000, 20_000}
		fs, err := lithops.Map(ctx, ex, pad, sizes)
		if err != nil {
			t.Fatal(err)
		}
		lens, err := lithops.MapFutures(ctx, ex, length, fs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := lens.Results(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(sizes) {
			t.Fatalf("chained lengths %v, want %v", got, sizes)
		}
	})
	t.Run("map_reduce", func(t *testing.T) {
		f, err := lithops.MapReduce(ctx, ex, addSeven, []int{1, 2, 3, 4}, sum)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := f.Result(ctx); err != nil || v != 38 {
			t.Fatalf("got %v, %v", v, err)
		}
	})
	t.Run("wordcount", func(t *testing.T) {
		st := ex.Storage()
		words := 0
		for i := 0; i < 4; i++ {
			var b strings.Builder
			for j := 0; j < 2000*(i+1); j++ {
				fmt.Fprintf(&b, "alpha beta w%d\n", j)
				words += 3
			}
			st.PutBytes(ctx, st.Bucket(), fmt.Sprintf("wc/part-%d.txt", i), []byte(b.String()))
		}
		chunks, err := ex.Partition(ctx, []string{"azure_storage://" + st.Bucket() + "/wc/"}, lithops.ChunkSize(20_000))
		if err != nil {
			t.Fatal(err)
		}
		f, err := lithops.MapReduce(ctx, ex, countWords, chunks, sum)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := f.Result(ctx); err != nil || v != words {
			t.Fatalf("counted %v, %v; want %d", v, err, words)
		}
	})
	t.Run("failures", func(t *testing.T) {
		fs, err := lithops.Map(ctx, ex, behave, []string{"a", "error", "panic", "sleep", "b"}, lithops.WithTimeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		want := []error{nil, lithops.ErrUser, lithops.ErrPanic, lithops.ErrTimeout, nil}
		for i, w := range want {
			v, err := fs.At(i).Result(ctx)
			if w == nil && (err != nil || !strings.HasPrefix(v, "ok:")) || w != nil && !errors.Is(err, w) {
				t.Errorf("call %d: got %q, %v; want %v", i, v, err, w)
			}
		}
		_, err = fs.At(2).Result(ctx)
		var ce *lithops.CallError
		if !errors.As(err, &ce) || ce.Message != "kaboom" || !strings.Contains(ce.Stack, "panic") {
			t.Errorf("panic error %+v", ce)
		}
	})
	t.Run("minimal_environment", func(t *testing.T) {
		f, err := lithops.CallAsync(ctx, ex, hostEnv, 0)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := f.Result(ctx); err != nil || v != "" {
			t.Fatalf("the user program sees the host's settings: %q, %v", v, err)
		}
	})
	t.Run("retries", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "count")
		f, err := lithops.CallAsync(ctx, ex, flaky, struct {
			Path  string
			Fails int
		}{path, 2}, lithops.WithRetries(2))
		if err != nil {
			t.Fatal(err)
		}
		if v, err := f.Result(ctx); err != nil || v != 2 {
			t.Fatalf("got %v, %v; want success on the third attempt", v, err)
		}
		if s, _ := f.Stats(); s.Attempt != 2 {
			t.Fatalf("attempt %d", s.Attempt)
		}
	})
	t.Run("no_secrets_in_records", func(t *testing.T) {
		// Everything the jobs wrote, and the messages themselves, must not
		// carry the storage key or connection string.
		st := ex.Storage()
		infos, err := st.List(ctx, st.Bucket(), protocol.ExecutorPrefix(ex.ID()))
		if err != nil || len(infos) == 0 {
			t.Fatalf("list: %d objects, %v", len(infos), err)
		}
		key := "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq"
		for _, o := range infos {
			b, err := st.GetBytes(ctx, st.Bucket(), o.Key)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), key) || strings.Contains(string(b), "AccountKey=") {
				t.Fatalf("%s carries a storage credential", o.Key)
			}
		}
	})
	t.Run("duplicate_delivery", func(t *testing.T) {
		f, err := lithops.CallAsync(ctx, ex, addSeven, 100)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := f.Result(ctx); err != nil || v != 107 {
			t.Fatalf("got %v, %v", v, err)
		}
		st := ex.Storage()
		key := protocol.StatusKey(ex.ID(), f.JobID(), f.CallID())
		before, err := st.GetBytes(ctx, st.Bucket(), key)
		if err != nil {
			t.Fatal(err)
		}
		// The same message again, as an at-least-once queue may deliver it.
		var job protocol.Job
		raw, _ := st.GetBytes(ctx, st.Bucket(), protocol.JobKey(ex.ID(), f.JobID()))
		json.Unmarshal(raw, &job)
		inv := protocol.Invocation{Version: protocol.Version, Bucket: st.Bucket(), ExecutorID: ex.ID(), JobID: f.JobID(),
			Program: job.Program, Calls: []protocol.Call{{ID: f.CallID(), Index: 0}}}
		msg, _ := json.Marshal(inv)
		svc, _ := queues.NewService(e.cfg.AzureStorage)
		ok0 := e.double.Stats().Succeeded
		if _, err := svc.NewQueueClient(e.names.Queue).EnqueueMessage(ctx, base64.StdEncoding.EncodeToString(msg), nil); err != nil {
			t.Fatal(err)
		}
		for e.double.Stats().Succeeded == ok0 && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		after, _ := st.GetBytes(ctx, st.Bucket(), key)
		if string(before) != string(after) {
			t.Fatalf("a duplicate delivery changed the recorded status:\n%s\n%s", before, after)
		}
	})
}

func TestHostKilledMidCall(t *testing.T) {
	e := startRuntime(t, 1)
	ex := newExecutor(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, err := lithops.CallAsync(ctx, ex, behave, "nap")
	if err != nil {
		t.Fatal(err)
	}
	for f.State() != lithops.StateRunning && e.double.Stats().Invocations == 0 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	e.double.Kill(0)
	if v, err := f.Result(ctx); err != nil || v != "ok:nap" {
		t.Fatalf("after the host was killed: %q, %v", v, err)
	}
	if s := e.double.Stats(); s.Restarts == 0 {
		t.Fatalf("the double did not restart the killed host: %+v", s)
	}
}

// stall hangs (a minute) on its first invocation and answers at once after.
var stall = lithops.Func("af_stall", func(ctx context.Context, path string) (string, error) {
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append(b, 'x'), 0o644)
	if len(b) == 0 {
		time.Sleep(time.Minute)
	}
	return fmt.Sprintf("attempt %d", len(b)), nil
})

// TestLostWorker: a host's machine vanishes mid-call and its message stays
// invisible for a minute; the client notices the missed lease within seconds and retries
// (or, without retries, fails the call as lost) instead of waiting.
func TestLostWorker(t *testing.T) {
	e := startRuntimeLease(t, 1, time.Minute)
	e.cfg.Lithops.LeaseTimeout = 3
	ex := newExecutor(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, retries := range []int{1, 0} {
		t.Run(fmt.Sprint("retries ", retries), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "count")
			start := time.Now()
			f, err := lithops.CallAsync(ctx, ex, stall, path, lithops.WithRetries(retries))
			if err != nil {
				t.Fatal(err)
			}
			for {
				if b, _ := os.ReadFile(path); len(b) > 0 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(1500 * time.Millisecond) // a lease or two renewed
			e.double.Vanish(0)
			v, err := f.Result(ctx)
			took := time.Since(start)
			switch {
			case retries > 0 && (err != nil || v != "attempt 1"):
				t.Fatalf("got %q, %v; want the retry's result", v, err)
			case retries == 0 && !errors.Is(err, lithops.ErrLost):
				t.Fatalf("got %q, %v; want ErrLost", v, err)
			}
			if took > 30*time.Second {
				t.Fatalf("took %v: the client waited for the queue instead of the lease", took)
			}
		})
	}
}

// hog makes 600 MiB resident.
var hog = lithops.Func("af_hog", func(ctx context.Context, _ int) (int, error) {
	b := make([]byte, 600<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	time.Sleep(300 * time.Millisecond)
	return len(b) >> 20, nil
})

// TestMemoryTierEscalation: an attempt that runs out of memory on the 512 MB
// deployment is retried on the next instance size, 2048 MB.
func TestMemoryTierEscalation(t *testing.T) {
	if raceEnabled {
		t.Skip("calibrated on memory tiers and timeouts that the race detector distorts; runs without -race")
	}
	requireAzurite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	small := runtimetest.Config("tier")
	small.AzureFunctions.RuntimeMemory = 512
	big := *small
	big.AzureFunctions.RuntimeMemory = 2048
	// Two workers on the small size (each under 512 MB), one on the big.
	for i, c := range []*config.Config{small, &big} {
		r, err := runtimetest.Start(ctx, c, runtimetest.Options{Workers: 2 - i})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
	}
	ex, err := lithops.NewExecutor(ctx, lithops.WithConfig(small))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	f, err := lithops.CallAsync(ctx, ex, hog, 0, lithops.WithRetries(1), lithops.WithMemoryEscalation())
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(ctx); err != nil || v != 600 {
		t.Fatalf("got %v, %v; want the 2048 MB attempt's result", v, err)
	}
	if s, _ := f.Stats(); s.Attempt != 1 {
		t.Fatalf("succeeded on attempt %d, want 1", s.Attempt)
	}
	g, err := lithops.CallAsync(ctx, ex, hog, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Result(ctx); !errors.Is(err, lithops.ErrOOM) {
		t.Fatalf("without escalation: %v, want ErrOOM", err)
	}

	// One message, two calls: a long nap, and a hog handed back for more
	// memory while the nap still runs. The hand-back must reach the client
	// at once: held until the nap ends, its lease would go stale and the
	// client would declare the hog lost.
	both := *small
	both.Lithops.Chunksize, both.Lithops.LeaseTimeout = 2, 3
	ex2, err := lithops.NewExecutor(ctx, lithops.WithConfig(&both))
	if err != nil {
		t.Fatal(err)
	}
	defer ex2.Close()
	fs, err := lithops.Map(ctx, ex2, hogOrNap, []int{1, 0}, lithops.WithRetries(1), lithops.WithMemoryEscalation())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fs.Results(ctx); err != nil || got[0] != 1 || got[1] != 600 {
		t.Fatalf("got %v, %v; want [1 600]", got, err)
	}
}

// hogOrNap naps 8 s for 1; for anything else it runs 2 s (long enough to
// renew its lease), then needs 600 MB.
var hogOrNap = lithops.Func("af_hog_or_nap", func(ctx context.Context, x int) (int, error) {
	if x == 1 {
		time.Sleep(8 * time.Second)
		return 1, nil
	}
	time.Sleep(2 * time.Second)
	return hog.Call(ctx, x)
})

// startOn starts a runtime for cfg and an executor on it, both closed when
// the test ends.
func startOn(ctx context.Context, t *testing.T, cfg *config.Config, o runtimetest.Options) (*runtimetest.Env, *lithops.Executor) {
	t.Helper()
	r, err := runtimetest.Start(ctx, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	ex, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return r, ex
}

// slowAddSeven takes long enough that a job is still running when the
// storage service goes away.
var slowAddSeven = lithops.Func("af_slow_add_seven", func(ctx context.Context, x int) (int, error) {
	time.Sleep(time.Second)
	return x + 7, nil
})

// TestAzuriteRestart stops the storage service itself (Azurite, blobs and
// queues) mid-job for a few seconds and starts it again on the same data:
// the job completes with every result. A private Azurite keeps its data on
// disk, so the restart loses nothing Azurite acknowledged.
func TestAzuriteRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	az, err := runtimetest.StartAzurite(ctx, t.TempDir())
	if errors.Is(err, runtimetest.ErrNoAzurite) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(az.Close)
	cfg := runtimetest.Config("restart")
	cfg.AzureStorage.ConnectionString = az.Conn()
	cfg.Lithops.MonitoringInterval = 1
	_, ex := startOn(ctx, t, cfg, runtimetest.Options{Instances: 2, Workers: 2})

	in := make([]int, 40)
	for i := range in {
		in[i] = i
	}
	fs, err := lithops.Map(ctx, ex, slowAddSeven, in)
	if err != nil {
		t.Fatal(err)
	}
	// Stop once the job is under way: some calls done (whichever: a
	// block's results arrive together), most not.
	done := 0
	for done == 0 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		for i := range in {
			if fs.At(i).State() == lithops.StateSuccess {
				done++
			}
		}
	}
	if err := az.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	if done == len(in) {
		t.Fatal("the job finished before Azurite stopped; the test needs slower calls")
	}
	time.Sleep(3 * time.Second)
	if err := az.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Azurite stopped with %d of %d calls done; down for %v", done, len(in), time.Since(stopped).Round(time.Millisecond))
	got, err := fs.Results(ctx)
	if err != nil {
		t.Fatalf("after Azurite restarted: %v", err)
	}
	for i, v := range got {
		if v != i+7 {
			t.Fatalf("result %d = %d, want %d", i, v, i+7)
		}
	}
	t.Logf("all %d results after the restart, %v after it", len(got), time.Since(stopped).Round(time.Millisecond))
}

// TestPoisonedInvocationFails: when the platform gives up on an invocation
// (its message moved to the poison queue, as after a runtime that crashes
// on every delivery), the client fails its calls with an error that says
// so, and records that in storage, instead of waiting for ever.
func TestPoisonedInvocationFails(t *testing.T) {
	requireAzurite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := runtimetest.Config("poison")
	r, ex := startOn(ctx, t, cfg, runtimetest.Options{})
	r.Double.Close() // no runtime consumes the queue from here on

	f, err := lithops.CallAsync(ctx, ex, addSeven, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Play the platform: the message goes to the poison queue.
	svc, err := queues.NewService(cfg.AzureStorage)
	if err != nil {
		t.Fatal(err)
	}
	q := svc.NewQueueClient(r.Names.Queue)
	var text string
	for text == "" && ctx.Err() == nil {
		resp, err := q.DequeueMessages(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range resp.Messages {
			text = *m.MessageText
			q.DeleteMessage(ctx, *m.MessageID, *m.PopReceipt, nil)
		}
	}
	pq := naming.PoisonQueue(r.Names.Queue)
	if err := queues.Ensure(ctx, svc, pq); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.DeleteQueue(context.Background(), pq, nil) })
	// Another executor's poisoned invocation shares the queue: it stays.
	foreign := strings.Replace(string(mustBase64Decode(t, text)), `"executor_id":"`+ex.ID()+`"`, `"executor_id":"someone-else-0"`, 1)
	if foreign == string(mustBase64Decode(t, text)) {
		t.Fatal("could not make a foreign message")
	}
	for _, m := range []string{base64.StdEncoding.EncodeToString([]byte(foreign)), text} {
		if _, err := svc.NewQueueClient(pq).EnqueueMessage(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	_, err = f.Result(ctx)
	if !errors.Is(err, lithops.ErrHandler) || !strings.Contains(err.Error(), "poison") {
		t.Fatalf("got %v; want a handler error naming the poison queue", err)
	}
	t.Logf("failed %v after the message was poisoned: %v", time.Since(start).Round(time.Millisecond), err)
	st := ex.Storage()
	if _, err := st.Head(ctx, st.Bucket(), protocol.StatusKey(ex.ID(), f.JobID(), f.CallID())); err != nil {
		t.Fatalf("the failure is not recorded in storage: %v", err)
	}
	time.Sleep(3 * time.Second) // past the 2 s a watcher hides others' messages
	peek, err := svc.NewQueueClient(pq).PeekMessages(ctx, &azqueue.PeekMessagesOptions{NumberOfMessages: to.Ptr(int32(32))})
	if err != nil {
		t.Fatal(err)
	}
	if len(peek.Messages) != 1 || !strings.Contains(string(mustBase64Decode(t, *peek.Messages[0].MessageText)), "someone-else-0") {
		t.Fatalf("poison queue holds %d messages, want only the other executor's", len(peek.Messages))
	}
}

func mustBase64Decode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStalledQueueWarns: when nothing consumes the runtime's queue (the
// function app is stopped), the client says so, once, instead of waiting
// silently; while completions come back (a backlog behind busy instances)
// it does not.
func TestStalledQueueWarns(t *testing.T) {
	requireAzurite(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := runtimetest.Config("stall")
	r, err := runtimetest.Start(ctx, cfg, runtimetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	r.Double.Close() // the function app stops
	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := queues.NewService(cfg.AzureStorage)
	if err != nil {
		t.Fatal(err)
	}
	var logs runtimetest.Buffer
	b, err := azurefunctions.New(ctx, azurefunctions.Options{Config: cfg, Storage: st, ExecutorID: "stall-0", Queues: svc,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), PoisonInterval: 100 * time.Millisecond, StalledAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := svc.NewQueueClient(r.Names.Queue).EnqueueMessage(ctx, "an invocation", nil); err != nil {
		t.Fatal(err)
	}
	const want = "was never delivered: is the runtime's function app running?"
	// Completions keep arriving for 3 s (StalledAfter is 1 s): a backlog.
	results := svc.NewQueueClient(naming.ResultQueue("stall-0"))
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if _, err := results.EnqueueMessage(ctx, "[]", nil); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(logs.String(), want) {
		t.Fatalf("warned of a stall while completions came back:\n%s", logs.String())
	}
	// Then nothing comes back: a stall.
	for !strings.Contains(logs.String(), want) {
		if ctx.Err() != nil {
			t.Fatalf("no warning about the stalled queue; logs:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // more rounds: still one warning
	if n := strings.Count(logs.String(), want); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, logs.String())
	}
}

// mapAddSeven maps addSeven over 0..n-1 on ex and checks every result.
func mapAddSeven(ctx context.Context, t *testing.T, ex *lithops.Executor, n int) {
	t.Helper()
	in := make([]int, n)
	for i := range in {
		in[i] = i
	}
	fs, err := lithops.Map(ctx, ex, addSeven, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fs.Results(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantAddSeven(t, got)
}

// wantAddSeven checks that result i of an addSeven map is i+7.
func wantAddSeven(t *testing.T, got []int) {
	t.Helper()
	for i, v := range got {
		if v != i+7 {
			t.Fatalf("result %d = %d, want %d", i, v, i+7)
		}
	}
}
