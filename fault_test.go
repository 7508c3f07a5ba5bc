package lithops_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/faultproxy"
	"github.com/lithops-go/lithops/internal/runtimetest"
)

// azuriteViaProxy returns a config whose Azure storage goes through a fault
// proxy in front of Azurite, with a small retry budget.
func azuriteViaProxy(t *testing.T) (*config.Config, *faultproxy.Proxy) {
	t.Helper()
	cfg := azuriteConfig(t)
	p, err := faultproxy.Start("127.0.0.1:10000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	cfg.AzureStorage.ConnectionString = strings.Replace(runtimetest.AzuriteConn, "127.0.0.1:10000", p.Addr(), 1)
	cfg.AzureStorage.MaxRetries = 5
	cfg.AzureStorage.TryTimeout = 3
	return cfg, p
}

func TestStorageFaults(t *testing.T) {
	t.Run("latency_resets_drops", func(t *testing.T) {
		cfg, p := azuriteViaProxy(t)
		ctx := ctxT(t)
		e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		p.SetLatency(2 * time.Millisecond)
		p.SetResetEvery(5)
		p.SetDropEvery(7)
		in := make([][2]int, 40)
		for i := range in {
			in[i] = [2]int{i, 1}
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
			if v != i+1 {
				t.Fatalf("result %d = %d", i, v)
			}
		}
		big, err := lithops.CallAsync(ctx, e, bigResult, 200_000) // result stored as its own object
		if err != nil {
			t.Fatal(err)
		}
		if v, err := big.Result(ctx); err != nil || len(v) != 200_000 {
			t.Fatalf("big result through a flaky network: %d, %v", len(v), err)
		}
	})

	t.Run("outage_then_recovery", func(t *testing.T) {
		cfg, p := azuriteViaProxy(t)
		ctx := ctxT(t)
		e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg), lithops.WithMaxWorkers(2))
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		in := make([]int, 16)
		for i := range in {
			in[i] = i
		}
		fs, err := lithops.Map(ctx, e, slowSquare, in)
		if err != nil {
			t.Fatal(err)
		}
		waitRunning(t, fs.At(0)) // the outage starts mid-job
		p.SetDown(true)
		time.Sleep(3 * time.Second) // the outage lasts 3 s
		p.SetDown(false)
		got, err := fs.Results(ctx)
		if err != nil {
			t.Fatalf("after a 3 s outage: %v", err)
		}
		for i, v := range got {
			if v != i*i {
				t.Fatalf("result %d = %d", i, v)
			}
		}
	})

	t.Run("outage_for_good", func(t *testing.T) {
		cfg, p := azuriteViaProxy(t)
		cfg.AzureStorage.MaxRetries = 2
		cfg.AzureStorage.TryTimeout = 1
		ctx := ctxT(t)
		e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg), lithops.WithMaxWorkers(2))
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		fs, err := lithops.Map(ctx, e, slowSquare, []int{1, 2, 3, 4})
		if err != nil {
			t.Fatal(err)
		}
		p.SetDown(true)
		start := time.Now()
		got, err := fs.Results(ctx)
		took := time.Since(start)
		// Results already produced are kept; the others fail saying why.
		failed := 0
		for i := range got {
			if _, err := fs.At(i).Result(ctx); err != nil {
				failed++
				if !errors.Is(err, lithops.ErrHandler) || !strings.Contains(err.Error(), "storage") {
					t.Errorf("call %d: %v; want a handler error about storage", i, err)
				}
			} else if got[i] != (i+1)*(i+1) {
				t.Errorf("call %d: %d", i, got[i])
			}
		}
		if took > 45*time.Second {
			t.Fatalf("took %v to give up", took)
		}
		t.Logf("%d of 4 calls failed with the storage down, in %v: %v", failed, took, err)
		// A new job cannot even start: a clear error, quickly.
		start = time.Now()
		_, err = lithops.Map(ctx, e, slowSquare, []int{1})
		if err == nil || !strings.Contains(err.Error(), "upload") || time.Since(start) > 30*time.Second {
			t.Fatalf("submit with storage down: %v after %v", err, time.Since(start))
		}
		_, err = lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
		if err == nil {
			t.Fatal("NewExecutor with storage down: no error")
		}
		t.Logf("storage down: %v", err)
	})
}

// selfKill SIGKILLs its own worker on its first invocation.
var selfKill = lithops.Func("self_kill", func(ctx context.Context, path string) (string, error) {
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append(b, 'x'), 0o644)
	if len(b) == 0 {
		killSelf()
		time.Sleep(time.Minute)
	}
	return fmt.Sprintf("attempt %d", len(b)), nil
})

// TestWorkerKilledMidCall: a worker killed with SIGKILL mid-call is replaced
// and the call retried; without retries the call fails, and nothing hangs.
func TestWorkerKilledMidCall(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t, lithops.WithMaxWorkers(1))
	start := time.Now()
	f, err := lithops.CallAsync(ctx, e, selfKill, filepath.Join(t.TempDir(), "n"), lithops.WithRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(ctx); err != nil || v != "attempt 1" {
		t.Fatalf("got %q, %v", v, err)
	}
	g, err := lithops.CallAsync(ctx, e, selfKill, filepath.Join(t.TempDir(), "n"))
	if err != nil {
		t.Fatal(err)
	}
	var ce *lithops.CallError
	if _, err := g.Result(ctx); !errors.As(err, &ce) || ce.ExitCode != -1 || !strings.Contains(ce.Message, "killed by signal") {
		t.Fatalf("got %v, want the kill reported", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
}

// Close does not wait for a poll that a storage outage holds up: the poll
// lives as long as the executor (issue 9, point 8).
func TestCloseDuringStorageStall(t *testing.T) {
	cfg, p := azuriteViaProxy(t)
	cfg.Lithops.MonitoringInterval = 0.1
	off := false
	cfg.Lithops.DataCleaner = &off
	ctx := ctxT(t)
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg), lithops.WithMaxWorkers(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lithops.CallAsync(ctx, e, misbehave, "sleep"); err != nil {
		t.Fatal(err)
	}
	p.SetLatency(5 * time.Minute) // storage answers nothing now
	for deadline := time.Now().Add(10 * time.Second); p.Held() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no storage request stuck in the proxy within 10 s")
		}
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- e.Close() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waiting 10 s into a storage stall")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v during a storage stall", d)
	}
	p.SetLatency(0)
}
