package azurefunctions_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/compute/azurefunctions"
	"github.com/lithops-go/lithops/compute/azurefunctions/armdeploy"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/host"
	"github.com/lithops-go/lithops/internal/hostdouble"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/runtimetest"
)

// recordingDeployer stands in for ARM: the double plays the deployed app.
type recordingDeployer struct {
	mu    sync.Mutex
	specs []armdeploy.Spec
	zips  [][]byte
}

func (d *recordingDeployer) Deploy(ctx context.Context, spec armdeploy.Spec, pkg []byte) (*armdeploy.App, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.specs = append(d.specs, spec)
	d.zips = append(d.zips, pkg)
	return &armdeploy.App{Name: spec.Name, RuntimeName: spec.RuntimeName, Version: spec.Version, MemoryMB: spec.MemoryMB}, nil
}

func (d *recordingDeployer) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.specs)
}

func TestDefaultRuntimeDeploysItself(t *testing.T) {
	requireAzurite(t)
	bin := buildHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := config.Default()
	cfg.Lithops.Backend, cfg.Lithops.Storage = "azure_functions", "azure_storage"
	cfg.AzureStorage.ConnectionString = runtimetest.AzuriteConn
	cfg.AzureStorage.StorageBucket = fmt.Sprintf("lithops-default-%08x", rand.Uint32())
	cfg.AzureFunctions.SubscriptionID, cfg.AzureFunctions.ResourceGroup, cfg.AzureFunctions.Region = "sub", "rg", "westeurope"
	cfg.Azure.ClientSecret = "client-secret-never-shipped"
	cfg.AzureFunctions.RuntimeMemory = 4096
	svc, err := azurefunctions.NewQueueService(cfg.AzureStorage)
	if err != nil {
		t.Fatal(err)
	}
	names := azurefunctions.RuntimeNames("devstoreaccount1", azurefunctions.DefaultRuntime, 4096, lithops.Version)
	azurefunctions.EnsureQueue(ctx, svc, names.Queue)
	d, err := hostdouble.Start(ctx, hostdouble.Options{
		Command: []string{bin, "runtime", "serve"},
		Env: []string{"AzureWebJobsStorage=" + runtimetest.AzuriteConn, "LITHOPS_STORAGE_BUCKET=" + cfg.AzureStorage.StorageBucket,
			"LITHOPS_RUNTIME_NAME=" + azurefunctions.DefaultRuntime, "LITHOPS_RUNTIME_MEMORY=4096"},
		Queues: svc, Queue: names.Queue, Function: host.FunctionName, Lease: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		d.Close()
		svc.DeleteQueue(context.Background(), names.Queue, nil)
	}()
	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	dep := &recordingDeployer{}
	var lines []string
	opts := azurefunctions.Options{Config: cfg, Storage: st, ExecutorID: "t-0", Deployer: dep, Progress: func(s string) { lines = append(lines, s) }}
	b, err := azurefunctions.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if dep.count() != 1 || !strings.Contains(strings.Join(lines, "\n"), "deploying the default runtime") {
		t.Fatalf("%d deployments, progress %q", dep.count(), lines)
	}
	spec := dep.specs[0]
	if spec.Name != names.App || spec.MemoryMB != 4096 || spec.RuntimeName != azurefunctions.DefaultRuntime || spec.AppSettings["LITHOPS_QUEUE"] != names.Queue {
		t.Errorf("spec %+v", spec)
	}
	for k, v := range spec.AppSettings {
		if strings.Contains(v, cfg.Azure.ClientSecret) {
			t.Errorf("app setting %s carries the ARM client secret", k)
		}
	}
	zr, err := zip.NewReader(bytes.NewReader(dep.zips[0]), int64(len(dep.zips[0])))
	if err != nil || len(zr.File) < 4 {
		t.Fatalf("package: %v", err)
	}
	meta, err := azurefunctions.ReadMeta(ctx, st, azurefunctions.DefaultRuntime, 4096)
	if err != nil || meta.MemoryMB != 4096 || meta.LithopsVersion != lithops.Version {
		t.Fatalf("stored metadata %+v, %v", meta, err)
	}

	// Next time the runtime is there: no deployment.
	b, err = azurefunctions.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if dep.count() != 1 {
		t.Fatalf("redeployed a current runtime")
	}
	// A runtime of another version: the default one is redeployed ...
	stale, _ := json.Marshal(protocol.RuntimeMeta{Version: protocol.Version, LithopsVersion: "0.0.1", Runtime: azurefunctions.DefaultRuntime})
	st.PutBytes(ctx, st.Bucket(), protocol.RuntimeMetaKey("azure_functions", azurefunctions.RuntimeKey(azurefunctions.DefaultRuntime, 4096)), stale)
	b, err = azurefunctions.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if dep.count() != 2 {
		t.Fatalf("a stale default runtime was not redeployed")
	}
	// ... a named one is an error that says what to do.
	st.PutBytes(ctx, st.Bucket(), protocol.RuntimeMetaKey("azure_functions", azurefunctions.RuntimeKey("mine", 4096)), stale)
	named := *cfg
	named.AzureFunctions.Runtime = "mine"
	if _, err := azurefunctions.New(ctx, azurefunctions.Options{Config: &named, Storage: st, ExecutorID: "t-1"}); err == nil ||
		!strings.Contains(err.Error(), "lithops runtime deploy -b azure_functions -s azure_storage --memory 4096 mine") {
		t.Fatalf("stale named runtime: %v", err)
	}
	// Without ARM settings the missing default runtime is an error with the command to run.
	st.Delete(ctx, st.Bucket(), protocol.RuntimeMetaKey("azure_functions", azurefunctions.RuntimeKey(azurefunctions.DefaultRuntime, 4096)))
	noARM := *cfg
	noARM.AzureFunctions.SubscriptionID = ""
	_, err = azurefunctions.New(ctx, azurefunctions.Options{Config: &noARM, Storage: st, ExecutorID: "t-2"})
	if err == nil || !strings.Contains(err.Error(), "lithops runtime deploy -b azure_functions -s azure_storage lithops-default") {
		t.Fatalf("no ARM settings: %v", err)
	}
	st.DeletePrefix(context.Background(), st.Bucket(), "")
}
