package azurefunctions_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	armfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/compute/azurefunctions"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/internal/azure/build"
	"github.com/lithops-go/lithops/internal/azure/deploy"
	"github.com/lithops-go/lithops/internal/azure/deploy/armdeploy"
	"github.com/lithops-go/lithops/internal/azure/naming"
	"github.com/lithops-go/lithops/internal/azure/queues"
	"github.com/lithops-go/lithops/internal/host"
	"github.com/lithops-go/lithops/internal/hostdouble"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/runtimetest"
	"github.com/lithops-go/lithops/storage"
	azblobdriver "github.com/lithops-go/lithops/storage/azblob"
	"github.com/lithops-go/lithops/storage/memory"
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
	svc, err := queues.NewService(cfg.AzureStorage)
	if err != nil {
		t.Fatal(err)
	}
	names := naming.Runtime("devstoreaccount1", azurefunctions.DefaultRuntime, 4096, lithops.Version)
	queues.Ensure(ctx, svc, names.Queue)
	d, err := hostdouble.Start(ctx, hostdouble.Options{
		Command: []string{bin, "runtime", "serve"},
		Env: []string{appsettings.HostStorage + "=" + runtimetest.AzuriteConn, appsettings.StorageBucket + "=" + cfg.AzureStorage.StorageBucket,
			appsettings.RuntimeName + "=" + azurefunctions.DefaultRuntime, appsettings.RuntimeMemory + "=4096"},
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
	if spec.Name != names.App || spec.MemoryMB != 4096 || spec.RuntimeName != azurefunctions.DefaultRuntime || spec.AppSettings[appsettings.Queue] != names.Queue {
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
	meta, err := deploy.ReadMeta(ctx, st, azurefunctions.DefaultRuntime, 4096)
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
	st.PutBytes(ctx, st.Bucket(), protocol.RuntimeMetaKey("azure_functions", naming.Key(azurefunctions.DefaultRuntime, 4096)), stale)
	b, err = azurefunctions.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if dep.count() != 2 {
		t.Fatalf("a stale default runtime was not redeployed")
	}
	// ... a named one is an error that says what to do.
	st.PutBytes(ctx, st.Bucket(), protocol.RuntimeMetaKey("azure_functions", naming.Key("mine", 4096)), stale)
	named := *cfg
	named.AzureFunctions.Runtime = "mine"
	if _, err := azurefunctions.New(ctx, azurefunctions.Options{Config: &named, Storage: st, ExecutorID: "t-1"}); err == nil ||
		!strings.Contains(err.Error(), "lithops runtime deploy -b azure_functions -s azure_storage --memory 4096 mine") {
		t.Fatalf("stale named runtime: %v", err)
	}
	// Without ARM settings the missing default runtime is an error with the command to run.
	st.Delete(ctx, st.Bucket(), protocol.RuntimeMetaKey("azure_functions", naming.Key(azurefunctions.DefaultRuntime, 4096)))
	noARM := *cfg
	noARM.AzureFunctions.SubscriptionID = ""
	_, err = azurefunctions.New(ctx, azurefunctions.Options{Config: &noARM, Storage: st, ExecutorID: "t-2"})
	if err == nil || !strings.Contains(err.Error(), "lithops runtime deploy -b azure_functions -s azure_storage lithops-default") {
		t.Fatalf("no ARM settings: %v", err)
	}
	st.DeletePrefix(context.Background(), st.Bucket(), "")
}

// failingARM is an ARM deployer whose credential gives no token, as with no
// sign-in at all.
func failingARM(t *testing.T) *armdeploy.Deployer {
	t.Helper()
	cred := &azfake.TokenCredential{}
	cred.SetError(errors.New("DefaultAzureCredential: failed to acquire a token (test)"))
	d, err := armdeploy.New("sub", cred, armdeploy.WithClientOptions(&arm.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: armfake.NewServerFactoryTransport(&armfake.ServerFactory{})},
	}))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// queuesOf lists the queues whose names start with prefix.
func queuesOf(t *testing.T, svc *azqueue.ServiceClient, prefix string) []string {
	t.Helper()
	var names []string
	pager := svc.NewListQueuesPager(&azqueue.ListQueuesOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range page.Queues {
			names = append(names, *q.Name)
		}
	}
	return names
}

func checkARMAuthError(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, deploy.ErrARMAuth) {
		t.Fatalf("%s: %v, want an ARM authentication error", what, err)
	}
	first, rest, _ := strings.Cut(err.Error(), "\n")
	if !strings.HasSuffix(first, deploy.ARMAuthHint) || !strings.Contains(rest, "failed to acquire a token (test)") {
		t.Errorf("%s: error %q: want the hint on the first line, the credential's error after it", what, err)
	}
}

// An ARM credential that gives no token fails a deploy, a delete and the
// default runtime's first deployment before any queue, container or record
// is created or deleted.
func TestARMAuthFailureTouchesNothing(t *testing.T) {
	requireAzurite(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := config.Default()
	cfg.Lithops.Backend, cfg.Lithops.Storage = "azure_functions", "azure_storage"
	cfg.AzureStorage.ConnectionString = runtimetest.AzuriteConn
	cfg.AzureStorage.StorageBucket = fmt.Sprintf("lithops-armauth-%08x", rand.Uint32())
	cfg.AzureFunctions.SubscriptionID, cfg.AzureFunctions.ResourceGroup, cfg.AzureFunctions.Region = "sub", "rg", "westeurope"
	cfg.AzureFunctions.RuntimeMemory = 512
	svc, err := queues.NewService(cfg.AzureStorage)
	if err != nil {
		t.Fatal(err)
	}
	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	defer st.DeletePrefix(context.Background(), st.Bucket(), "")

	rt := fmt.Sprintf("armauth%08x", rand.Uint32())
	names := naming.Runtime("devstoreaccount1", rt, 512, protocol.LithopsVersion)
	prefix := strings.TrimSuffix(names.Queue, "-in")
	defer svc.DeleteQueue(context.Background(), names.Queue, nil)
	_, err = deploy.Runtime(ctx, cfg, st, svc, failingARM(t), rt, []byte("PK\x05\x06"), &build.Manifest{Trigger: "queue"}, nil)
	checkARMAuthError(t, "deploy.Runtime", err)
	if q := queuesOf(t, svc, prefix); len(q) != 0 {
		t.Errorf("deploy.Runtime created queues %q", q)
	}
	if _, err := st.List(ctx, armdeploy.DeploymentContainerName(names.App), ""); err == nil {
		t.Errorf("deploy.Runtime created the deployment container")
	}

	// A deployed runtime's queue and record stay when the delete cannot sign in.
	if err := queues.Ensure(ctx, svc, names.Queue); err != nil {
		t.Fatal(err)
	}
	metaKey := protocol.RuntimeMetaKey("azure_functions", naming.Key(rt, 512))
	if err := st.PutBytes(ctx, st.Bucket(), metaKey, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	err = deploy.Delete(ctx, cfg, st, svc, failingARM(t), rt, 512)
	checkARMAuthError(t, "deploy.Delete", err)
	if q := queuesOf(t, svc, prefix); len(q) != 1 {
		t.Errorf("deploy.Delete left queues %q, want %s", q, names.Queue)
	}
	if _, err := st.Head(ctx, st.Bucket(), metaKey); err != nil {
		t.Errorf("deploy.Delete deleted the runtime record: %v", err)
	}

	// The default runtime's first use: no queue, no record, no build.
	exec := fmt.Sprintf("armauth-%08x", rand.Uint32())
	defNames := naming.Runtime("devstoreaccount1", azurefunctions.DefaultRuntime, 512, protocol.LithopsVersion)
	before := queuesOf(t, svc, strings.TrimSuffix(defNames.Queue, "-in"))
	start := time.Now()
	_, err = azurefunctions.New(ctx, azurefunctions.Options{Config: cfg, Storage: st, ExecutorID: exec, Deployer: failingARM(t), Program: "/nonexistent/program"})
	checkARMAuthError(t, "New", err)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("New took %v to fail", d)
	}
	if after := queuesOf(t, svc, strings.TrimSuffix(defNames.Queue, "-in")); len(after) > len(before) {
		t.Errorf("New created queues: %q before, %q after", before, after)
	}
	if q := queuesOf(t, svc, naming.ResultQueue(exec)); len(q) != 0 {
		t.Errorf("New created the completion queue %q", q)
	}
	if _, err := deploy.ReadMeta(ctx, st, azurefunctions.DefaultRuntime, 512); !errors.Is(err, azurefunctions.ErrNotDeployed) {
		t.Errorf("default runtime record: %v", err)
	}
}

func deployConfig() *config.Config {
	cfg := config.Default()
	cfg.AzureStorage.StorageAccountName, cfg.AzureStorage.StorageAccountKey = "acct", "a2V5"
	cfg.AzureStorage.StorageBucket = "lithops-data"
	cfg.AzureFunctions.SubscriptionID, cfg.AzureFunctions.ResourceGroup, cfg.AzureFunctions.Region = "sub", "rg", "westeurope"
	return cfg
}

// A queue host that does not exist (a wrong account name) fails New at
// once, naming the host, instead of after the queue client's retries. The
// .invalid TLD never resolves (RFC 6761).
func TestNewNoSuchQueueHostFailsFast(t *testing.T) {
	const host = "nosuchaccount.queue.core.invalid"
	cfg := deployConfig()
	cfg.AzureStorage.StorageAccountName = "nosuchaccount"
	cfg.AzureStorage.QueueEndpoint = "https://" + host + "/"
	svc, err := queues.NewService(cfg.AzureStorage)
	if err != nil {
		t.Fatal(err)
	}
	st := storage.New(memory.New(), "memory", "lithops-data")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st.CreateBucket(ctx, "lithops-data")
	raw, _ := json.Marshal(protocol.RuntimeMeta{Version: protocol.Version, LithopsVersion: protocol.LithopsVersion, Runtime: "mine", MemoryMB: 2048})
	if err := st.PutBytes(ctx, "lithops-data", protocol.RuntimeMetaKey("azure_functions", naming.Key("mine", 2048)), raw); err != nil {
		t.Fatal(err)
	}
	cfg.AzureFunctions.Runtime = "mine"
	for name, queues := range map[string]*azqueue.ServiceClient{"configured": nil, "given": svc} {
		start := time.Now()
		b, err := azurefunctions.New(ctx, azurefunctions.Options{Config: cfg, Storage: st, ExecutorID: "t-0", Queues: queues})
		if err == nil {
			b.Close()
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s: New took %v", name, took)
		}
		if !errors.Is(err, azblobdriver.ErrNoSuchHost) || !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), "queue_endpoint") {
			t.Errorf("%s: New: %v, want a no such host error naming %s", name, err, host)
		}
	}
}
