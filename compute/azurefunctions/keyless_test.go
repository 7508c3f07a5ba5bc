package azurefunctions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/lithops-go/lithops/compute/azurefunctions/armdeploy"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	azblobdriver "github.com/lithops-go/lithops/storage/azblob"
	"github.com/lithops-go/lithops/storage/memory"
)

// miDouble is the App Service managed-identity endpoint (IDENTITY_ENDPOINT,
// IDENTITY_HEADER) plus a storage service over TLS that records the
// Authorization header of every request.
type miDouble struct {
	identity *httptest.Server
	storage  *httptest.Server

	mu        sync.Mutex
	clientIDs []string // client_id of each token request
	resources []string
	auths     []string // "METHOD path Authorization"
}

const testIdentityHeader = "test-identity-header"

func newMIDouble(t *testing.T) *miDouble {
	t.Helper()
	d := &miDouble{}
	d.identity = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-IDENTITY-HEADER") != testIdentityHeader {
			http.Error(w, "bad identity header", http.StatusUnauthorized)
			return
		}
		q := r.URL.Query()
		d.mu.Lock()
		d.clientIDs = append(d.clientIDs, q.Get("client_id"))
		d.resources = append(d.resources, q.Get("resource"))
		d.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]string{
			"access_token": "mi-token-for-" + q.Get("client_id"),
			"expires_on":   strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10),
			"resource":     q.Get("resource"),
			"token_type":   "Bearer",
		})
	}))
	t.Cleanup(d.identity.Close)
	d.storage = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		d.mu.Lock()
		d.auths = append(d.auths, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		d.mu.Unlock()
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages"):
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `<?xml version="1.0" encoding="utf-8"?><QueueMessagesList><QueueMessage><MessageId>m1</MessageId>`+
				`<InsertionTime>Mon, 01 Jan 2026 00:00:00 GMT</InsertionTime><ExpirationTime>Mon, 08 Jan 2026 00:00:00 GMT</ExpirationTime>`+
				`<PopReceipt>p</PopReceipt><TimeNextVisible>Mon, 01 Jan 2026 00:00:00 GMT</TimeNextVisible></QueueMessage></QueueMessagesList>`)
		case r.Method == http.MethodGet:
			w.Header().Set("Content-Length", "7")
			w.Header().Set("ETag", `"0x1"`)
			w.Header().Set("Last-Modified", "Mon, 01 Jan 2026 00:00:00 GMT")
			w.Header().Set("x-ms-blob-type", "BlockBlob")
			io.WriteString(w, "program")
		default:
			w.WriteHeader(http.StatusCreated)
		}
	}))
	t.Cleanup(d.storage.Close)
	return d
}

// setKeylessEnv gives the process the settings of a keyless function app:
// identity-based AzureWebJobsStorage__* and the managed-identity endpoint.
func (d *miDouble) setKeylessEnv(t *testing.T, clientID string) {
	t.Setenv(appsettings.LithopsConfigJSON, "")
	t.Setenv(appsettings.HostStorage, "")
	t.Setenv(appsettings.HostStorageBlobURI, d.storage.URL+"/acct")
	t.Setenv(appsettings.HostStorageQueueURI, d.storage.URL+"/acct")
	t.Setenv(appsettings.HostStorageCredential, "managedidentity")
	t.Setenv(appsettings.HostStorageClientID, clientID)
	t.Setenv(appsettings.StorageBucket, "lithops")
	t.Setenv(appsettings.IdentityEndpoint, d.identity.URL+"/msi/token")
	t.Setenv(appsettings.IdentityHeader, testIdentityHeader)
}

// Without a connection string the runtime host opens blobs (program
// downloads) and queues (completion pushes) with the managed identity of
// the client id its settings name: every request carries that identity's
// token, never a key.
func TestHostKeylessManagedIdentity(t *testing.T) {
	d := newMIDouble(t)
	d.setKeylessEnv(t, "cid-123")
	queueTransport = d.storage.Client()
	t.Cleanup(func() { queueTransport = nil })

	cfg, err := hostConfig()
	if err != nil {
		t.Fatalf("hostConfig: %v", err)
	}
	a := cfg.AzureStorage
	if a.ConnectionString != "" || a.StorageAccountKey != "" || a.SASToken != "" {
		t.Fatalf("keyless host config holds a secret: %v", a)
	}
	if a.Credential != azblobdriver.CredentialManagedIdentity || a.ClientID != "cid-123" ||
		a.Endpoint != d.storage.URL+"/acct" || a.QueueEndpoint != d.storage.URL+"/acct" {
		t.Fatalf("host config: %+v", a)
	}

	// The storage the host opens (the driver from the same settings).
	drv, err := azblobdriver.New(context.Background(), azblobdriver.Config{
		StorageAccountName: a.StorageAccountName, Endpoint: a.Endpoint, Credential: a.Credential, ClientID: a.ClientID,
	}, azblobdriver.WithTransport(d.storage.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if drv.Auth() != azblobdriver.AuthEntraID {
		t.Fatalf("auth %s", drv.Auth())
	}
	st := storage.New(drv, "azure_storage", a.StorageBucket)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A program download.
	rc, err := st.Get(ctx, "lithops", "programs/abc")
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	body, _ := io.ReadAll(rc)
	rc.Close()
	if string(body) != "program" {
		t.Fatalf("downloaded %q", body)
	}

	opts, err := hostOptions(cfg, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("hostOptions: %v", err)
	}
	// A completion push.
	if err := opts.Pusher.Push(ctx, "lithops-done-x", []byte(`{"call":"00000"}`)); err != nil {
		t.Fatalf("push: %v", err)
	}
	// Workers open storage with the same identity.
	for _, k := range []string{appsettings.IdentityEndpoint + "=", appsettings.IdentityHeader + "="} {
		if !slices.ContainsFunc(opts.WorkerEnv, func(kv string) bool { return strings.HasPrefix(kv, k) }) {
			t.Errorf("worker env lacks %s: %q", k, opts.WorkerEnv)
		}
	}
	var wcfg struct {
		AzureStorage struct {
			Credential string `json:"credential"`
			ClientID   string `json:"client_id"`
		} `json:"azure_storage"`
	}
	if err := json.Unmarshal(opts.WorkerConfig, &wcfg); err != nil || wcfg.AzureStorage.Credential != "managedidentity" || wcfg.AzureStorage.ClientID != "cid-123" {
		t.Fatalf("worker config %s: %v", opts.WorkerConfig, err)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.clientIDs) == 0 {
		t.Fatal("no token was asked of the managed-identity endpoint")
	}
	for i, id := range d.clientIDs {
		if id != "cid-123" || !strings.HasPrefix(d.resources[i], "https://storage.azure.com") {
			t.Errorf("token request %d: client_id %q resource %q", i, id, d.resources[i])
		}
	}
	var sawBlob, sawQueue bool
	for _, line := range d.auths {
		if !strings.HasSuffix(line, "Bearer mi-token-for-cid-123") {
			t.Errorf("storage request without the identity's token: %q", line)
		}
		sawBlob = sawBlob || strings.HasPrefix(line, "GET /acct/lithops/programs/abc ")
		sawQueue = sawQueue || strings.HasPrefix(line, "POST /acct/lithops-done-x/messages ")
	}
	if !sawBlob || !sawQueue {
		t.Fatalf("requests: %q", d.auths)
	}
}

// Only an account name, no URIs: the host uses the account's public
// endpoints, and the system-assigned identity when no client id is set.
func TestHostKeylessAccountName(t *testing.T) {
	t.Setenv(appsettings.LithopsConfigJSON, "")
	t.Setenv(appsettings.HostStorage, "")
	t.Setenv(appsettings.HostStorageBlobURI, "")
	t.Setenv(appsettings.HostStorageQueueURI, "")
	t.Setenv(appsettings.HostStorageClientID, "")
	t.Setenv(appsettings.HostStorageCredential, "")
	t.Setenv(appsettings.HostStorageAccountName, "myacct")
	cfg, err := hostConfig()
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.AzureStorage
	if a.StorageAccountName != "myacct" || a.Credential != "managedidentity" || a.ClientID != "" {
		t.Fatalf("%+v", a)
	}
	// A connection string still wins.
	t.Setenv(appsettings.HostStorage, "UseDevelopmentStorage=true")
	if cfg, err = hostConfig(); err != nil || cfg.AzureStorage.ConnectionString == "" || cfg.AzureStorage.Credential != "" {
		t.Fatalf("connection string: %+v %v", cfg.AzureStorage, err)
	}
	// Another credential kind is refused, naming the setting.
	t.Setenv(appsettings.HostStorage, "")
	t.Setenv(appsettings.HostStorageCredential, "clientsecret")
	if _, err := hostConfig(); err == nil || !strings.Contains(err.Error(), appsettings.HostStorageCredential) {
		t.Fatalf("credential kind: %v", err)
	}
}

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

// With azure_storage configured without a key, DeployRuntime creates or
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
			man := &Manifest{Trigger: "queue", Env: map[string]string{"MY_SETTING": "x"}}
			_, err := DeployRuntime(ctx, cfg, st, keylessQueues(t), dep, "default", []byte("PK\x05\x06"), man, nil)
			if !errors.Is(err, errStopKeyless) {
				t.Fatalf("DeployRuntime: %v", err)
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
	_, err := DeployRuntime(t.Context(), cfg, st, keylessQueues(t), dep, "default", []byte("PK\x05\x06"), &Manifest{Trigger: "queue"}, nil)
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
