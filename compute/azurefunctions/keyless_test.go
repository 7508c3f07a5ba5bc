package azurefunctions

import (
	"context"
	"encoding/json"
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

	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/internal/azure/queues"
	"github.com/lithops-go/lithops/storage"
	azblobdriver "github.com/lithops-go/lithops/storage/azblob"
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
	queues.Transport = d.storage.Client()
	t.Cleanup(func() { queues.Transport = nil })

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
