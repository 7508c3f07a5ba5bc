package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5"
	armfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5/fake"
	sdkblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/build"
	"github.com/lithops-go/lithops/internal/azure/deploy"
	"github.com/lithops-go/lithops/internal/azure/deploy/armdeploy"
	"github.com/lithops-go/lithops/internal/azure/naming"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	azblobdriver "github.com/lithops-go/lithops/storage/azblob"
	"github.com/lithops-go/lithops/storage/memory"
)

// Delete deletes the container itself through the driver's client.
var _ interface{ Client() *sdkblob.Client } = (*azblobdriver.Driver)(nil)

var errStopDeploy = errors.New("test: stop after recording the spec")

// stoppingDeployer records the spec and fails, so Runtime stops before
// probing the runtime.
type stoppingDeployer struct{ specs []armdeploy.Spec }

func (d *stoppingDeployer) Deploy(ctx context.Context, spec armdeploy.Spec, pkg []byte) (*armdeploy.App, error) {
	d.specs = append(d.specs, spec)
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
		_, err := deploy.Runtime(ctx, cfg, st, svc, dep, d.runtime, []byte("PK\x05\x06"), &build.Manifest{Trigger: "queue"}, nil)
		if !errors.Is(err, errStopDeploy) {
			t.Fatalf("Runtime: %v", err)
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

func TestDeleteDeletesPackageContainer(t *testing.T) {
	for _, foreign := range []bool{false, true} {
		t.Run(fmt.Sprintf("foreign=%v", foreign), func(t *testing.T) {
			ctx := t.Context()
			cfg := deployConfig()
			st := storage.New(memory.New(), "memory", "lithops-data")
			names := naming.Runtime("acct", "default", 2048, protocol.LithopsVersion)
			other := naming.Runtime("acct", "default", 4096, protocol.LithopsVersion)
			for _, n := range []naming.Names{names, other} {
				c := armdeploy.DeploymentContainerName(n.App)
				if err := st.CreateBucket(ctx, c); err != nil {
					t.Fatal(err)
				}
				if err := st.PutBytes(ctx, c, "released-package.zip", []byte("PK")); err != nil {
					t.Fatal(err)
				}
			}
			err := deploy.Delete(ctx, cfg, st, fakeQueues(t), armSite(t, names.App, !foreign), "default", 2048)
			if foreign != errors.Is(err, armdeploy.ErrNotLithopsRuntime) {
				t.Fatalf("Delete: %v", err)
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
