package azblob_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/azblob"
)

// Not real secrets; shaped like them.
const (
	testKey = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0wMTIzNDU2Nzg5YWJjZGVm"
	testSAS = "sv=2025-11-05&ss=b&srt=sco&sp=rwdlac&se=2030-01-01T00%3A00%3A00Z&sig=c2lnbmF0dXJlLXNlY3JldA%3D%3D"
	testCS  = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + testKey + ";EndpointSuffix=core.windows.net"
)

func TestAuthSelection(t *testing.T) {
	cases := []struct {
		name    string
		cfg     azblob.Config
		auth    azblob.AuthMethod
		url     string
		wantErr string
	}{
		{name: "nothing", cfg: azblob.Config{},
			wantErr: "azure_storage: no account configured: set connection_string, or storage_account_name"},
		{name: "connection string", cfg: azblob.Config{ConnectionString: testCS},
			auth: azblob.AuthConnectionString, url: "https://acct.blob.core.windows.net/"},
		{name: "connection string wins over key and sas",
			cfg:  azblob.Config{ConnectionString: azblob.AzuriteConnectionString, StorageAccountName: "other", StorageAccountKey: testKey, SASToken: testSAS},
			auth: azblob.AuthConnectionString, url: "http://127.0.0.1:10000/devstoreaccount1/"},
		{name: "development storage", cfg: azblob.Config{ConnectionString: "UseDevelopmentStorage=true"},
			auth: azblob.AuthConnectionString, url: "http://127.0.0.1:10000/devstoreaccount1/"},
		{name: "connection string with SAS",
			cfg:  azblob.Config{ConnectionString: "BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=" + testSAS},
			auth: azblob.AuthConnectionString, url: "https://acct.blob.core.windows.net/"},
		{name: "malformed connection string", cfg: azblob.Config{ConnectionString: "secretgarbage"},
			wantErr: "azure_storage: connection_string is malformed"},
		{name: "connection string without account", cfg: azblob.Config{ConnectionString: "AccountKey=" + testKey},
			wantErr: "connection_string has neither AccountName nor BlobEndpoint"},
		{name: "key without account", cfg: azblob.Config{StorageAccountKey: testKey},
			wantErr: "azure_storage: storage_account_name is required unless connection_string is set"},
		{name: "key without account, with endpoint", cfg: azblob.Config{StorageAccountKey: testKey, Endpoint: "http://127.0.0.1:10000/devstoreaccount1"},
			wantErr: "azure_storage: storage_account_name is required unless connection_string is set"},
		{name: "shared key", cfg: azblob.Config{StorageAccountName: "acct", StorageAccountKey: testKey},
			auth: azblob.AuthSharedKey, url: "https://acct.blob.core.windows.net/"},
		{name: "shared key wins over sas", cfg: azblob.Config{StorageAccountName: "acct", StorageAccountKey: testKey, SASToken: testSAS},
			auth: azblob.AuthSharedKey, url: "https://acct.blob.core.windows.net/"},
		{name: "shared key, custom endpoint", cfg: azblob.Config{StorageAccountName: "devstoreaccount1", StorageAccountKey: testKey, Endpoint: "http://127.0.0.1:10000/devstoreaccount1"},
			auth: azblob.AuthSharedKey, url: "http://127.0.0.1:10000/devstoreaccount1/"},
		{name: "bad key", cfg: azblob.Config{StorageAccountName: "acct", StorageAccountKey: "not base64 !!"},
			wantErr: "azure_storage: storage_account_key is not a valid base64 account key"},
		{name: "sas without account", cfg: azblob.Config{SASToken: testSAS},
			wantErr: "azure_storage: sas_token needs storage_account_name or endpoint"},
		{name: "sas", cfg: azblob.Config{StorageAccountName: "acct", SASToken: "?" + testSAS},
			auth: azblob.AuthSAS, url: "https://acct.blob.core.windows.net/"},
		{name: "sas with endpoint", cfg: azblob.Config{Endpoint: "https://acct.blob.core.windows.net/", SASToken: testSAS},
			auth: azblob.AuthSAS, url: "https://acct.blob.core.windows.net/"},
		{name: "entra id", cfg: azblob.Config{StorageAccountName: "acct"},
			auth: azblob.AuthEntraID, url: "https://acct.blob.core.windows.net/"},
		{name: "entra id, endpoint only", cfg: azblob.Config{Endpoint: "https://acct.blob.core.windows.net"},
			auth: azblob.AuthEntraID, url: "https://acct.blob.core.windows.net/"},
		{name: "endpoint not a URL", cfg: azblob.Config{StorageAccountName: "acct", Endpoint: "ftp://x"},
			wantErr: `azure_storage: endpoint "ftp://x" is not an http(s) URL`},
		{name: "endpoint with query", cfg: azblob.Config{StorageAccountName: "acct", Endpoint: "https://x/?" + testSAS},
			wantErr: "azure_storage: endpoint must not carry a query; put a SAS in sas_token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.cfg.Auth(); c.wantErr == "" && got != c.auth {
				t.Errorf("Config.Auth() = %s, want %s", got, c.auth)
			}
			d, err := azblob.New(context.Background(), c.cfg, azblob.WithCredential(&azfake.TokenCredential{}))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("New: err = %v, want %q", err, c.wantErr)
				}
				if err2 := c.cfg.Validate(); c.name != "bad key" && (err2 == nil || err2.Error() != err.Error()) {
					t.Errorf("Validate = %v, New = %v; want the same error", err2, err)
				}
				checkNoSecret(t, "New error", err.Error(), c.cfg)
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if d.Auth() != c.auth || d.ServiceURL() != c.url {
				t.Errorf("driver auth %s url %s, want %s %s", d.Auth(), d.ServiceURL(), c.auth, c.url)
			}
		})
	}
}

// Entra ID without WithCredential uses DefaultAzureCredential, which can be
// constructed without any environment.
func TestDefaultAzureCredential(t *testing.T) {
	d, err := azblob.New(context.Background(), azblob.Config{StorageAccountName: "acct"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Auth() != azblob.AuthEntraID {
		t.Errorf("Auth = %s", d.Auth())
	}
}

func TestOptionsChecked(t *testing.T) {
	cfg := azblob.Config{ConnectionString: azblob.AzuriteConnectionString}
	for _, o := range []azblob.Option{azblob.WithBlockSize(0), azblob.WithBlockSize(5000 << 20), azblob.WithConcurrency(0)} {
		if _, err := azblob.New(context.Background(), cfg, o); err == nil {
			t.Error("New accepted an out-of-range option")
		}
	}
}

func TestSecretTags(t *testing.T) {
	want := map[string]bool{"StorageAccountKey": true, "ConnectionString": true, "SASToken": true}
	typ := reflect.TypeFor[azblob.Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if got := f.Tag.Get("secret") == "true"; got != want[f.Name] {
			t.Errorf("field %s: secret tag %v, want %v", f.Name, got, want[f.Name])
		}
		if f.Tag.Get("yaml") == "" {
			t.Errorf("field %s has no yaml tag", f.Name)
		}
	}
}

func TestSecrets(t *testing.T) {
	cfg := azblob.Config{
		StorageAccountName: "acct",
		StorageAccountKey:  testKey,
		ConnectionString:   testCS,
		SASToken:           "?" + testSAS,
		Endpoint:           "https://acct.blob.core.windows.net/",
	}
	got := cfg.Secrets()
	for _, w := range []string{testKey, testCS, "?" + testSAS, testSAS, "c2lnbmF0dXJlLXNlY3JldA=="} {
		found := false
		for _, s := range got {
			found = found || s == w
		}
		if !found {
			t.Errorf("Secrets() lacks %q", w)
		}
	}
	for _, s := range got {
		if s == "" || s == "acct" || strings.Contains(s, "blob.core.windows.net/") {
			t.Errorf("Secrets() has a non-secret %q", s)
		}
	}
	if n := len(azblob.Config{StorageAccountName: "acct"}.Secrets()); n != 0 {
		t.Errorf("Secrets() of a config without secrets has %d values", n)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, cfg)
		checkNoSecret(t, format, out, cfg)
		if !strings.Contains(out, "acct") {
			t.Errorf("%s of the config hides the account name: %s", format, out)
		}
	}
}

func checkNoSecret(t *testing.T, what, text string, cfg azblob.Config) {
	t.Helper()
	for _, s := range cfg.Secrets() {
		if strings.Contains(text, s) {
			t.Errorf("%s leaks a secret: %s", what, text)
		}
	}
}

// fakeService answers like the blob service would, after failing the
// first tries with the given failures.
type fakeService struct {
	fail  []func(*http.Request) (*http.Response, error)
	calls atomic.Int32
	final func(*http.Request) *http.Response
}

func (f *fakeService) Do(req *http.Request) (*http.Response, error) {
	n := int(f.calls.Add(1))
	if n <= len(f.fail) {
		return f.fail[n-1](req)
	}
	return f.final(req), nil
}

func reply(code int, errCode string, hdr map[string]string) func(*http.Request) *http.Response {
	return func(req *http.Request) *http.Response {
		h := http.Header{}
		if errCode != "" {
			h.Set("x-ms-error-code", errCode)
		}
		for k, v := range hdr {
			h.Set(k, v)
		}
		return &http.Response{StatusCode: code, Status: fmt.Sprintf("%d %s", code, http.StatusText(code)),
			Header: h, Body: io.NopCloser(strings.NewReader("")), Request: req}
	}
}

func failWith(code int, errCode string) func(*http.Request) (*http.Response, error) {
	r := reply(code, errCode, nil)
	return func(req *http.Request) (*http.Response, error) { return r(req), nil }
}

func reset(*http.Request) (*http.Response, error) {
	return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
}

var headOK = reply(http.StatusOK, "", map[string]string{
	"Content-Length": "5", "Last-Modified": "Fri, 27 Nov 2026 12:00:00 GMT", "ETag": `"0x8DC"`,
})

// The retry policy is network-free testable: throttling, server errors and
// resets are retried with backoff; client errors are not.
func TestRetryPolicy(t *testing.T) {
	sasCfg := azblob.Config{StorageAccountName: "acct", SASToken: testSAS}
	cases := []struct {
		name      string
		fail      []func(*http.Request) (*http.Response, error)
		final     func(*http.Request) *http.Response
		wantCalls int32
		wantErr   error // nil: success
	}{
		{"503 then ok", []func(*http.Request) (*http.Response, error){failWith(503, "ServerBusy"), failWith(503, "ServerBusy")}, headOK, 3, nil},
		{"429 then ok", []func(*http.Request) (*http.Response, error){failWith(429, "")}, headOK, 2, nil},
		{"500, 502, 504 then ok", []func(*http.Request) (*http.Response, error){failWith(500, "InternalError"), failWith(502, ""), failWith(504, "")}, headOK, 4, nil},
		{"reset then ok", []func(*http.Request) (*http.Response, error){reset, reset}, headOK, 3, nil},
		{"404 not retried", nil, reply(404, "BlobNotFound", nil), 1, storage.ErrNotFound},
		{"403 not retried", nil, reply(403, "AuthenticationFailed", nil), 1, errAny},
		{"gives up after MaxRetries", nil, reply(503, "ServerBusy", nil), 6, errAny},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc := &fakeService{fail: c.fail, final: c.final}
			d, err := azblob.New(context.Background(), sasCfg, azblob.WithTransport(svc),
				azblob.WithRetry(fastRetryOptions()))
			if err != nil {
				t.Fatal(err)
			}
			info, err := storage.New(d, "azure_storage", "c").Head(context.Background(), "c", "k")
			if got := svc.calls.Load(); got != c.wantCalls {
				t.Errorf("%d HTTP calls, want %d", got, c.wantCalls)
			}
			switch {
			case c.wantErr == nil && (err != nil || info.Size != 5 || info.ModTime.IsZero() || info.ETag == ""):
				t.Errorf("Head = %+v, %v", info, err)
			case c.wantErr == errAny && err == nil, c.wantErr != nil && c.wantErr != errAny && !errors.Is(err, c.wantErr):
				t.Errorf("Head error = %v, want %v", err, c.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error spans lines: %q", err)
				}
				checkNoSecret(t, "error", err.Error(), sasCfg)
				var re *azcore.ResponseError
				if !errors.As(err, &re) && c.name != "reset" {
					t.Errorf("error %v does not unwrap to *azcore.ResponseError", err)
				}
			}
		})
	}
}

var errAny = errors.New("any error")

func fastRetryOptions() (o policy.RetryOptions) {
	o = fastRetry
	o.RetryDelay = time.Millisecond
	o.MaxRetryDelay = 5 * time.Millisecond
	return o
}

// Transport errors quote the request URL, which carries the SAS; the
// driver's errors must not.
func TestTransportErrorsHideSAS(t *testing.T) {
	cfg := azblob.Config{Endpoint: "http://127.0.0.1:1/devstoreaccount1", SASToken: testSAS} // nothing listens on port 1
	d, err := azblob.New(context.Background(), cfg, azblob.WithRetry(policy.RetryOptions{MaxRetries: -1}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := storage.New(d, "azure_storage", "c")
	errs := map[string]error{
		"CreateBucket": s.CreateBucket(ctx, "c"),
		"Put":          s.PutBytes(ctx, "c", "k", []byte("x")),
		"Delete":       s.Delete(ctx, "c", "k"),
	}
	_, errs["Get"] = s.GetBytes(ctx, "c", "k")
	_, errs["Head"] = s.Head(ctx, "c", "k")
	_, errs["List"] = s.List(ctx, "c", "")
	for op, err := range errs {
		if err == nil {
			t.Errorf("%s succeeded against a closed port", op)
			continue
		}
		checkNoSecret(t, op+" error", err.Error(), cfg)
		if !strings.Contains(err.Error(), "REDACTED") || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("%s error = %v; want the redacted URL and the cause", op, err)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s error %v does not unwrap to ECONNREFUSED", op, err)
		}
	}
}

// Credential picks the managed identity (with a client id) or the default
// chain; another value is refused without contacting anything.
func TestEntraCredentialKinds(t *testing.T) {
	t.Setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token")
	t.Setenv("IDENTITY_HEADER", "h")
	if _, err := (azblob.Config{StorageAccountName: "a", Credential: azblob.CredentialManagedIdentity, ClientID: "cid"}).EntraCredential(); err != nil {
		t.Fatalf("managed identity: %v", err)
	}
	bad := azblob.Config{StorageAccountName: "a", Credential: "clientsecret"}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "credential") {
		t.Fatalf("Validate: %v", err)
	}
	if _, err := bad.EntraCredential(); err == nil {
		t.Fatal("EntraCredential accepted an unknown kind")
	}
	if s := (azblob.Config{Credential: azblob.CredentialManagedIdentity, ClientID: "cid"}).String(); !strings.Contains(s, `client_id: "cid"`) {
		t.Fatalf("String: %s", s)
	}
}
