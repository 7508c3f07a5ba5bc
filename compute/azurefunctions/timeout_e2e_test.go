package azurefunctions_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/runtimetest"
)

// TestCallTimeoutBelowFunctionTimeout: on a runtime whose function timeout
// (runtime_timeout) is 8 s, a call that sleeps a minute under the default
// execution timeout fails as a timeout of its own at 3 s (8 − 5), rather
// than the platform killing the handler at 8 s five times and poisoning the
// message. The client caps the job's timeout; the host would too.
func TestCallTimeoutBelowFunctionTimeout(t *testing.T) {
	if raceEnabled {
		t.Skip("calibrated on memory tiers and timeouts that the race detector distorts; runs without -race")
	}
	requireAzurite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := runtimetest.Config("e2e")
	cfg.Lithops.MonitoringInterval = 1
	r, ex := startOn(ctx, t, cfg, runtimetest.Options{Workers: 2,
		Env: []string{appsettings.RuntimeTimeout + "=8"}, FunctionTimeout: 8 * time.Second})
	if r.Meta.TimeoutS != 8 {
		t.Fatalf("runtime metadata records timeout %d s, want 8", r.Meta.TimeoutS)
	}
	start := time.Now()
	f, err := lithops.CallAsync(ctx, ex, behave, "sleep", lithops.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	v, err := f.Result(rctx)
	took := time.Since(start)
	if !errors.Is(err, lithops.ErrTimeout) {
		t.Fatalf("after %v: %q, %v; want ErrTimeout (stats %+v)", took, v, err, r.Double.Stats())
	}
	if took > 8*time.Second {
		t.Errorf("the call failed after %v, not before the 8-s function timeout", took)
	}
	if s := r.Double.Stats(); s.Restarts != 0 || s.TimedOut != 0 || s.Poisoned != 0 {
		t.Errorf("the platform killed the handler: %+v", s)
	}
	// The client capped the job's timeout itself.
	raw, err := ex.Storage().GetBytes(ctx, cfg.AzureStorage.StorageBucket, protocol.JobKey(ex.ID(), f.JobID()))
	var job protocol.Job
	if err != nil || json.Unmarshal(raw, &job) != nil || job.Timeout != 3 {
		t.Errorf("job manifest timeout %v (%v), want 3 s", job.Timeout, err)
	}
}
