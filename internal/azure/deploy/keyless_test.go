package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/internal/azure/build"
	"github.com/lithops-go/lithops/internal/azure/deploy/armdeploy"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	azblobdriver "github.com/lithops-go/lithops/storage/azblob"
	"github.com/lithops-go/lithops/storage/memory"
)

// identityDeployer records a keyless deploy: the identity it hands out,
// the roles it assigns, and the spec; Deploy stops before the probe.
type identityDeployer struct {
	specs     []armdeploy.Spec
	ensured   []string // rg/region/name
	scopes    []string
	roles     [][]string
	principal string
	fresh     bool
}

func (d *identityDeployer) Deploy(ctx context.Context, spec armdeploy.Spec, pkg []byte) (*armdeploy.App, error) {
	d.specs = append(d.specs, spec)
	return nil, errStopKeyless
}

func (d *identityDeployer) EnsureIdentity(ctx context.Context, rg, region, name string) (*armdeploy.ManagedIdentity, error) {
	d.ensured = append(d.ensured, rg+"/"+region+"/"+name)
	return &armdeploy.ManagedIdentity{ResourceID: "/subscriptions/sub/resourceGroups/" + rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + name,
		ClientID: "client-" + name, PrincipalID: "principal-" + name}, nil
}

func (d *identityDeployer) StorageAccountID(rg, account string) string {
	return "/subscriptions/sub/resourceGroups/" + rg + "/providers/Microsoft.Storage/storageAccounts/" + account
}

func (d *identityDeployer) AssignRoles(ctx context.Context, scope, principal string, roles ...string) (bool, error) {
	d.scopes = append(d.scopes, scope)
	d.roles = append(d.roles, roles)
	d.principal = principal
	return d.fresh, nil
}

var errStopKeyless = errors.New("test: stop after recording the keyless spec")

// keyMaterial lists what must never appear in a keyless deploy's settings,
// messages or records.
var keyMaterial = []string{"AccountKey=", "SharedAccessSignature", "sig=", azblobdriver.DevAccountKey, "DefaultEndpointsProtocol"}

func scanForKeys(t *testing.T, where string, texts map[string]string) {
	t.Helper()
	for name, v := range texts {
		for _, k := range keyMaterial {
			if strings.Contains(v, k) || strings.Contains(name, k) {
				t.Errorf("%s %s holds key material (%q)", where, name, k)
			}
		}
	}
}

// With azure_storage configured without a key, Runtime creates or
// reuses the account's managed identity, gives it the blob and queue data
// roles on the account (in azure_storage.resource_group when set), and
// deploys with identity-based settings: no connection string, no key.
func TestDeployKeylessRuntime(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name     string
		endpoint string
		queue    string
		dataRG   string
	}{
		{name: "account"},
		{name: "endpoints", endpoint: "https://acct.blob.core.windows.net/", dataRG: "data-rg"},
		{name: "azurite", endpoint: "https://127.0.0.1:10000/devstoreaccount1", queue: "https://127.0.0.1:10001/devstoreaccount1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			a := &cfg.AzureStorage
			a.StorageBucket = "lithops-data"
			if tc.name != "azurite" {
				a.StorageAccountName = "acct"
			}
			a.Endpoint, a.QueueEndpoint, a.ResourceGroup = tc.endpoint, tc.queue, tc.dataRG
			cfg.AzureFunctions.SubscriptionID, cfg.AzureFunctions.ResourceGroup, cfg.AzureFunctions.Region = "sub", "rg", "westeurope"
			if !Keyless(*a) {
				t.Fatal("not keyless")
			}
			st := storage.New(memory.New(), "memory", "lithops-data")
			dep := &identityDeployer{}
			man := &build.Manifest{Trigger: "queue", Env: map[string]string{"MY_SETTING": "x"}}
			_, err := Runtime(ctx, cfg, st, keylessQueues(t), dep, "default", []byte("PK\x05\x06"), man, nil)
			if !errors.Is(err, errStopKeyless) {
				t.Fatalf("Runtime: %v", err)
			}
			account := "acct"
			if tc.name == "azurite" {
				account = "devstoreaccount1"
			}
			if want := "rg/westeurope/lithops-" + account; len(dep.ensured) != 1 || dep.ensured[0] != want {
				t.Fatalf("identity %q, want %s", dep.ensured, want)
			}
			rg := "rg"
			if tc.dataRG != "" {
				rg = tc.dataRG
			}
			if len(dep.scopes) != 1 || !strings.HasSuffix(dep.scopes[0], "/resourceGroups/"+rg+"/providers/Microsoft.Storage/storageAccounts/"+account) ||
				dep.principal != "principal-lithops-"+account || !slices.Equal(dep.roles[0], armdeploy.StorageRoles) {
				t.Fatalf("roles %q at %q to %s", dep.roles, dep.scopes, dep.principal)
			}
			spec := dep.specs[0]
			if spec.Identity == nil || spec.Identity.ClientID != "client-lithops-"+account {
				t.Fatalf("spec identity %+v", spec.Identity)
			}
			s := spec.AppSettings
			if s[appsettings.HostStorageCredential] != "managedidentity" || s[appsettings.HostStorageClientID] != "client-lithops-"+account {
				t.Errorf("identity settings: %v", s)
			}
			if _, ok := s[appsettings.HostStorage]; ok {
				t.Error("AzureWebJobsStorage is set")
			}
			if _, ok := s[appsettings.DeploymentStorage]; ok {
				t.Errorf("%s is set", appsettings.DeploymentStorage)
			}
			switch tc.name {
			case "account":
				if s[appsettings.HostStorageAccountName] != "acct" || s[appsettings.HostStorageBlobURI] != "" {
					t.Errorf("settings %v", s)
				}
			default:
				wantQ := tc.queue
				if wantQ == "" {
					wantQ = "https://acct.queue.core.windows.net/"
				}
				if s[appsettings.HostStorageAccountName] != "" || s[appsettings.HostStorageBlobURI] != tc.endpoint || s[appsettings.HostStorageQueueURI] != wantQ {
					t.Errorf("settings %v", s)
				}
			}
			scanForKeys(t, "app setting", s)
		})
	}
}

// A keyed configuration still deploys with connection strings, and gets
// no identity.
func TestDeployKeyedRuntimeHasNoIdentity(t *testing.T) {
	cfg := config.Default()
	cfg.AzureStorage.StorageAccountName, cfg.AzureStorage.StorageAccountKey = "acct", "a2V5"
	cfg.AzureFunctions.SubscriptionID, cfg.AzureFunctions.ResourceGroup, cfg.AzureFunctions.Region = "sub", "rg", "westeurope"
	dep := &identityDeployer{}
	st := storage.New(memory.New(), "memory", "lithops")
	_, err := Runtime(t.Context(), cfg, st, keylessQueues(t), dep, "default", []byte("PK\x05\x06"), &build.Manifest{Trigger: "queue"}, nil)
	if !errors.Is(err, errStopKeyless) {
		t.Fatal(err)
	}
	if len(dep.ensured) != 0 || dep.specs[0].Identity != nil || dep.specs[0].AppSettings[appsettings.HostStorage] == "" {
		t.Fatalf("keyed deploy: identity %q, spec %+v", dep.ensured, dep.specs[0].Identity)
	}
}

// After fresh role assignments the first probe is retried with longer
// waits, and the wait is explained.
func TestProbeWaitsForRoles(t *testing.T) {
	old := probeWaits
	probeWaits = []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}
	t.Cleanup(func() { probeWaits = old })
	var lines []string
	calls := 0
	probe := func(d time.Duration) (*protocol.RuntimeMeta, error) {
		calls++
		if calls < 3 {
			return nil, fmt.Errorf("probe: %w", ErrNoAnswer)
		}
		return &protocol.RuntimeMeta{Runtime: "default"}, nil
	}
	retry := func(err error) bool { return errors.Is(err, ErrNoAnswer) }
	m, err := probeAfterRoles(true, func(s string) { lines = append(lines, s) }, retry, probe)
	if err != nil || m.Runtime != "default" || calls != 3 {
		t.Fatalf("%v %v after %d probes", m, err, calls)
	}
	if len(lines) != 2 || !strings.Contains(lines[0], "role assignments can take several minutes") {
		t.Fatalf("progress %q", lines)
	}
	// Not fresh: one probe, its error as it is.
	calls = -10
	if _, err := probeAfterRoles(false, func(string) { t.Error("progress without fresh roles") }, retry, probe); !errors.Is(err, ErrNoAnswer) || calls != -9 {
		t.Fatalf("%v after %d", err, calls)
	}
}

// keylessQueues answers queue creation.
func keylessQueues(t *testing.T) *azqueue.ServiceClient {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) }))
	t.Cleanup(srv.Close)
	svc, err := azqueue.NewServiceClientWithNoCredential(srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}
