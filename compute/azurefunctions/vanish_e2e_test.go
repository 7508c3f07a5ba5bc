package azurefunctions_test

import (
	"context"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/runtimetest"
)

// A whole instance (runtime host and workers) vanishes 0.5 s into a map
// whose invocation holds more calls than the instance has workers. Every
// call, also those still waiting for a worker there, had its lease from the
// invocation's arrival, so the client finds them lost within the lease and
// runs them again, long before the platform would redeliver the message
// (its lease here: 3 minutes).
func TestVanishedInstanceFoundWithinLease(t *testing.T) {
	requireAzurite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cfg := runtimetest.Config("vanish")
	cfg.Lithops.MonitoringInterval = 0.5
	cfg.Lithops.LeaseTimeout = 3
	cfg.Lithops.Chunksize = 6 // one message, six calls, two workers
	r, err := runtimetest.Start(ctx, cfg, runtimetest.Options{Instances: 1, Workers: 2, Lease: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ex, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	modes := []string{"nap", "nap", "nap", "nap", "nap", "nap"}
	fs, err := lithops.Map(ctx, ex, behave, modes, lithops.WithRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	// The instance dies once it holds the invocation (its lease, written on
	// arrival, names every call), two calls running and four waiting for a
	// worker.
	st := ex.Storage()
	for ctx.Err() == nil {
		infos, _ := st.List(ctx, st.Bucket(), protocol.LeasesPrefix(ex.ID(), fs.At(0).JobID()))
		if len(infos) > 1 {
			t.Fatalf("%d leases for one message", len(infos))
		}
		if len(infos) == 1 {
			raw, err := st.GetBytes(ctx, st.Bucket(), infos[0].Key)
			if l, perr := protocol.ParseLease(raw); err == nil && perr == nil && len(l.Calls) == len(modes) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	r.Double.Vanish(0)
	got, err := fs.Results(ctx)
	if err != nil {
		t.Fatalf("after the instance vanished: %v", err)
	}
	for i, v := range got {
		if v != "ok:nap" {
			t.Fatalf("result %d = %q", i, v)
		}
	}
	// Found within the lease (3 s) and rerun one message at a time on the
	// replacement instance (about 20 s), not at the message's redelivery
	// (3 minutes).
	if d := time.Since(start); d > 100*time.Second {
		t.Fatalf("calls took %v after the instance vanished: not found within the lease", d)
	}
}
