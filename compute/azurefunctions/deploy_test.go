package azurefunctions_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5"
	armfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5/fake"
	sdkblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/compute/azurefunctions"
	"github.com/lithops-go/lithops/compute/azurefunctions/armdeploy"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/internal/host"
	"github.com/lithops-go/lithops/internal/hostdouble"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/runtimetest"
	"github.com/lithops-go/lithops/storage"
	azblobdriver "github.com/lithops-go/lithops/storage/azblob"
	"github.com/lithops-go/lithops/storage/memory"
)

// DeleteRuntime deletes the container itself through the driver's client.
var _ interface{ Client() *sdkblob.Client } = (*azblobdriver.Driver)(nil)

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
		Env: []string{appsettings.HostStorage + "=" + runtimetest.AzuriteConn, appsettings.StorageBucket + "=" + cfg.AzureStorage.StorageBucket,
			appsettings.RuntimeName + "=" + azurefunctions.DefaultRuntime, "LITHOPS_RUNTIME_MEMORY=4096"},
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

var errStopDeploy = errors.New("test: stop after recording the spec")

// stoppingDeployer records the spec and fails, so DeployRuntime stops before
// probing the runtime.
type stoppingDeployer struct{ recordingDeployer }

func (d *stoppingDeployer) Deploy(ctx context.Context, spec armdeploy.Spec, pkg []byte) (*armdeploy.App, error) {
	d.recordingDeployer.Deploy(ctx, spec, pkg)
	return nil, errStopDeploy
}

// fakeQueues answers queue creation and deletion, for tests without Azurite.
func fakeQueues(t *testing.T) *azqueue.ServiceClient {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPut:
			w.WriteHeader(http.StatusCreated)
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "unexpected", http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	svc, err := azqueue.NewServiceClientWithNoCredential(srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func deployConfig() *config.Config {
	cfg := config.Default()
	cfg.AzureStorage.StorageAccountName, cfg.AzureStorage.StorageAccountKey = "acct", "a2V5"
	cfg.AzureStorage.StorageBucket = "lithops-data"
	cfg.AzureFunctions.SubscriptionID, cfg.AzureFunctions.ResourceGroup, cfg.AzureFunctions.Region = "sub", "rg", "westeurope"
	return cfg
}

func TestDeploymentContainerPerApp(t *testing.T) {
	ctx := t.Context()
	st := storage.New(memory.New(), "memory", "lithops-data")
	svc := fakeQueues(t)
	dep := &stoppingDeployer{}
	urls := map[string]string{}
	for _, d := range []struct {
		runtime string
		memory  int
	}{{"default", 512}, {"default", 2048}, {"default", 4096}, {"other", 2048}} {
		cfg := deployConfig()
		cfg.AzureFunctions.RuntimeMemory = d.memory
		_, err := azurefunctions.DeployRuntime(ctx, cfg, st, svc, dep, d.runtime, []byte("PK\x05\x06"), &azurefunctions.Manifest{Trigger: "queue"}, nil)
		if !errors.Is(err, errStopDeploy) {
			t.Fatalf("DeployRuntime: %v", err)
		}
		spec := dep.specs[len(dep.specs)-1]
		container := armdeploy.DeploymentContainerName(spec.Name)
		if want := "https://acct.blob.core.windows.net/" + container; spec.DeploymentContainerURL != want {
			t.Errorf("%s at %d MB: container URL %q, want %q", d.runtime, d.memory, spec.DeploymentContainerURL, want)
		}
		if _, err := st.List(ctx, container, ""); err != nil {
			t.Errorf("container %s of app %s not created: %v", container, spec.Name, err)
		}
		if prev, ok := urls[spec.DeploymentContainerURL]; ok {
			t.Errorf("apps %s and %s share the deployment container %s", prev, spec.Name, spec.DeploymentContainerURL)
		}
		urls[spec.DeploymentContainerURL] = spec.Name
	}
}

// armSite plays one lithops function app (or a foreign one) behind the
// SDK's fake ARM server.
func armSite(t *testing.T, app string, lithopsTag bool) *armdeploy.Deployer {
	t.Helper()
	var mu sync.Mutex
	exists := true
	tags := map[string]*string{}
	if lithopsTag {
		tags[armdeploy.TagType] = to.Ptr(armdeploy.TagTypeRuntime)
	}
	srv := &armfake.ServerFactory{
		WebAppsServer: armfake.WebAppsServer{
			Get: func(_ context.Context, rg, name string, _ *armappservice.WebAppsClientGetOptions) (resp azfake.Responder[armappservice.WebAppsClientGetResponse], errResp azfake.ErrorResponder) {
				mu.Lock()
				defer mu.Unlock()
				if name != app || !exists {
					errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
					return
				}
				resp.SetResponse(http.StatusOK, armappservice.WebAppsClientGetResponse{Site: armappservice.Site{Name: to.Ptr(name), Tags: tags}}, nil)
				return
			},
			Delete: func(_ context.Context, rg, name string, _ *armappservice.WebAppsClientDeleteOptions) (resp azfake.Responder[armappservice.WebAppsClientDeleteResponse], errResp azfake.ErrorResponder) {
				mu.Lock()
				defer mu.Unlock()
				exists = false
				resp.SetResponse(http.StatusOK, armappservice.WebAppsClientDeleteResponse{}, nil)
				return
			},
		},
		PlansServer: armfake.PlansServer{
			NewListByResourceGroupPager: func(string, *armappservice.PlansClientListByResourceGroupOptions) (resp azfake.PagerResponder[armappservice.PlansClientListByResourceGroupResponse]) {
				resp.AddPage(http.StatusOK, armappservice.PlansClientListByResourceGroupResponse{}, nil)
				return
			},
		},
	}
	d, err := armdeploy.New("sub", &azfake.TokenCredential{}, armdeploy.WithClientOptions(&arm.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: armfake.NewServerFactoryTransport(srv)},
	}))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDeleteRuntimeDeletesPackageContainer(t *testing.T) {
	for _, foreign := range []bool{false, true} {
		t.Run(fmt.Sprintf("foreign=%v", foreign), func(t *testing.T) {
			ctx := t.Context()
			cfg := deployConfig()
			st := storage.New(memory.New(), "memory", "lithops-data")
			names := azurefunctions.RuntimeNames("acct", "default", 2048, protocol.LithopsVersion)
			other := azurefunctions.RuntimeNames("acct", "default", 4096, protocol.LithopsVersion)
			for _, n := range []azurefunctions.Names{names, other} {
				c := armdeploy.DeploymentContainerName(n.App)
				if err := st.CreateBucket(ctx, c); err != nil {
					t.Fatal(err)
				}
				if err := st.PutBytes(ctx, c, "released-package.zip", []byte("PK")); err != nil {
					t.Fatal(err)
				}
			}
			err := azurefunctions.DeleteRuntime(ctx, cfg, st, fakeQueues(t), armSite(t, names.App, !foreign), "default", 2048)
			if foreign != errors.Is(err, armdeploy.ErrNotLithopsRuntime) {
				t.Fatalf("DeleteRuntime: %v", err)
			}
			left, _ := st.List(ctx, armdeploy.DeploymentContainerName(names.App), "")
			if foreign && len(left) != 1 {
				t.Errorf("package of an app that was not deleted removed: %v", left)
			}
			if !foreign && len(left) != 0 {
				t.Errorf("package of the deleted app left: %v", left)
			}
			if kept, err := st.List(ctx, armdeploy.DeploymentContainerName(other.App), ""); err != nil || len(kept) != 1 {
				t.Errorf("package of another app: %v, %v", kept, err)
			}
		})
	}
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
	if !errors.Is(err, azurefunctions.ErrARMAuth) {
		t.Fatalf("%s: %v, want an ARM authentication error", what, err)
	}
	first, rest, _ := strings.Cut(err.Error(), "\n")
	if !strings.HasSuffix(first, azurefunctions.ARMAuthHint) || !strings.Contains(rest, "failed to acquire a token (test)") {
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
	svc, err := azurefunctions.NewQueueService(cfg.AzureStorage)
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
	names := azurefunctions.RuntimeNames("devstoreaccount1", rt, 512, protocol.LithopsVersion)
	prefix := strings.TrimSuffix(names.Queue, "-in")
	defer svc.DeleteQueue(context.Background(), names.Queue, nil)
	_, err = azurefunctions.DeployRuntime(ctx, cfg, st, svc, failingARM(t), rt, []byte("PK\x05\x06"), &azurefunctions.Manifest{Trigger: "queue"}, nil)
	checkARMAuthError(t, "DeployRuntime", err)
	if q := queuesOf(t, svc, prefix); len(q) != 0 {
		t.Errorf("DeployRuntime created queues %q", q)
	}
	if _, err := st.List(ctx, armdeploy.DeploymentContainerName(names.App), ""); err == nil {
		t.Errorf("DeployRuntime created the deployment container")
	}

	// A deployed runtime's queue and record stay when the delete cannot sign in.
	if err := azurefunctions.EnsureQueue(ctx, svc, names.Queue); err != nil {
		t.Fatal(err)
	}
	metaKey := protocol.RuntimeMetaKey("azure_functions", azurefunctions.RuntimeKey(rt, 512))
	if err := st.PutBytes(ctx, st.Bucket(), metaKey, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	err = azurefunctions.DeleteRuntime(ctx, cfg, st, svc, failingARM(t), rt, 512)
	checkARMAuthError(t, "DeleteRuntime", err)
	if q := queuesOf(t, svc, prefix); len(q) != 1 {
		t.Errorf("DeleteRuntime left queues %q, want %s", q, names.Queue)
	}
	if _, err := st.Head(ctx, st.Bucket(), metaKey); err != nil {
		t.Errorf("DeleteRuntime deleted the runtime record: %v", err)
	}

	// The default runtime's first use: no queue, no record, no build.
	exec := fmt.Sprintf("armauth-%08x", rand.Uint32())
	defNames := azurefunctions.RuntimeNames("devstoreaccount1", azurefunctions.DefaultRuntime, 512, protocol.LithopsVersion)
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
	if q := queuesOf(t, svc, azurefunctions.ResultQueue(exec)); len(q) != 0 {
		t.Errorf("New created the completion queue %q", q)
	}
	if _, err := azurefunctions.ReadMeta(ctx, st, azurefunctions.DefaultRuntime, 512); !errors.Is(err, azurefunctions.ErrNotDeployed) {
		t.Errorf("default runtime record: %v", err)
	}
}

// A queue host that does not exist (a wrong account name) fails New at
// once, naming the host, instead of after the queue client's retries. The
// .invalid TLD never resolves (RFC 6761).
func TestNewNoSuchQueueHostFailsFast(t *testing.T) {
	const host = "nosuchaccount.queue.core.invalid"
	cfg := deployConfig()
	cfg.AzureStorage.StorageAccountName = "nosuchaccount"
	cfg.AzureStorage.QueueEndpoint = "https://" + host + "/"
	svc, err := azurefunctions.NewQueueService(cfg.AzureStorage)
	if err != nil {
		t.Fatal(err)
	}
	st := storage.New(memory.New(), "memory", "lithops-data")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st.CreateBucket(ctx, "lithops-data")
	raw, _ := json.Marshal(protocol.RuntimeMeta{Version: protocol.Version, LithopsVersion: protocol.LithopsVersion, Runtime: "mine", MemoryMB: 2048})
	if err := st.PutBytes(ctx, "lithops-data", protocol.RuntimeMetaKey("azure_functions", azurefunctions.RuntimeKey("mine", 2048)), raw); err != nil {
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
