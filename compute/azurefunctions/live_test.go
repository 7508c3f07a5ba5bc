package azurefunctions_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
)

// TestLiveAzure runs against real Azure, only when asked to:
//
//	LITHOPS_LIVE_AZURE=1 LITHOPS_CONFIG_FILE=~/.lithops/azure.yaml CGO_ENABLED=0 \
//	    go test -run TestLiveAzure -timeout 30m ./compute/azurefunctions
//
// The config needs azure_storage (account and key or connection string) and
// azure_functions (subscription_id, resource_group, region); ARM credentials
// come from the azure section's client secret or the default credential
// chain (az login, managed identity, environment). The default runtime is
// deployed on first use.
func TestLiveAzure(t *testing.T) {
	if os.Getenv("LITHOPS_LIVE_AZURE") == "" {
		t.Skip("live Azure test: set LITHOPS_LIVE_AZURE=1 and LITHOPS_CONFIG_FILE (see the README)")
	}
	cfg, err := config.Load(os.Getenv("LITHOPS_CONFIG_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Lithops.Backend, cfg.Lithops.Storage = "azure_functions", "azure_storage"
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	ex, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg), lithops.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	f, err := lithops.CallAsync(ctx, ex, addSeven, 3)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(ctx); err != nil || v != 10 {
		t.Fatalf("hello: %v, %v", v, err)
	}
	in := make([]int, 100)
	for i := range in {
		in[i] = i
	}
	start := time.Now()
	r, err := lithops.MapReduce(ctx, ex, addSeven, in, sum)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := r.Result(ctx); err != nil || v != 4950+700 {
		t.Fatalf("map-reduce: %v, %v", v, err)
	}
	fmt.Printf("live: 100-call map-reduce in %v\n", time.Since(start))
}
