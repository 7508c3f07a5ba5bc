package azblob

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Config is the `azure_storage` section: which account to use and how to
// authenticate. Exactly one way of authenticating is used, in this order:
// ConnectionString, then StorageAccountKey (shared key), then SASToken, then
// an Entra ID identity (DefaultAzureCredential, or WithCredential). Fields of
// a way that is not chosen are ignored.
type Config struct {
	// StorageAccountName is the account, e.g. "mylithopsdata". Shared key
	// needs it; with SASToken or Entra ID, Endpoint may replace it.
	StorageAccountName string `yaml:"storage_account_name" json:"storage_account_name,omitempty"`
	// StorageAccountKey is one of the account's access keys (shared key).
	StorageAccountKey string `yaml:"storage_account_key" json:"storage_account_key,omitempty" secret:"true"`
	// ConnectionString is a full storage connection string
	// ("DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…;…"), or
	// "UseDevelopmentStorage=true" for Azurite on 127.0.0.1.
	ConnectionString string `yaml:"connection_string" json:"connection_string,omitempty" secret:"true"`
	// SASToken is an account or container shared access signature, with or
	// without the leading "?".
	SASToken string `yaml:"sas_token" json:"sas_token,omitempty" secret:"true"`
	// Endpoint is the blob service URL; default
	// https://<account>.blob.core.windows.net/. For Azurite:
	// http://127.0.0.1:10000/devstoreaccount1.
	Endpoint string `yaml:"endpoint" json:"endpoint,omitempty"`
	// Credential chooses the Entra ID credential when no key, SAS or
	// connection string is set: "" for DefaultAzureCredential,
	// CredentialManagedIdentity for the managed identity of the Azure host
	// (what a runtime host without a connection string uses).
	Credential string `yaml:"credential" json:"credential,omitempty"`
	// ClientID is the client id of the user-assigned managed identity
	// CredentialManagedIdentity uses; "" means the system-assigned one.
	ClientID string `yaml:"client_id" json:"client_id,omitempty"`
}

// CredentialManagedIdentity is the Config.Credential value that selects
// azidentity's ManagedIdentityCredential (the Functions host's
// AzureWebJobsStorage__credential value for the same).
const CredentialManagedIdentity = "managedidentity"

// EntraCredential returns the Entra ID credential c selects for storage:
// a ManagedIdentityCredential (with ClientID, when set) for
// CredentialManagedIdentity, else DefaultAzureCredential. It sends no
// request.
func (c Config) EntraCredential() (azcore.TokenCredential, error) {
	switch {
	case strings.EqualFold(c.Credential, CredentialManagedIdentity):
		var o azidentity.ManagedIdentityCredentialOptions
		if c.ClientID != "" {
			o.ID = azidentity.ClientID(c.ClientID)
		}
		cred, err := azidentity.NewManagedIdentityCredential(&o)
		if err != nil {
			return nil, fmt.Errorf("azure_storage: managed identity credential: %w", err)
		}
		return cred, nil
	case c.Credential != "":
		return nil, fmt.Errorf("azure_storage: credential %q: want %q or nothing (the default chain)", c.Credential, CredentialManagedIdentity)
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("azure_storage: no storage_account_key, sas_token or connection_string, and Entra ID sign-in is not available: %w", err)
	}
	return cred, nil
}

// AuthMethod names how a Driver authenticates.
type AuthMethod string

// The ways of authenticating, in the order Config chooses them.
const (
	AuthConnectionString AuthMethod = "connection_string"
	AuthSharedKey        AuthMethod = "shared_key"
	AuthSAS              AuthMethod = "sas_token"
	AuthEntraID          AuthMethod = "entra_id"
)

// The well-known Azurite development account (public, not a secret).
const (
	// DevAccountName is Azurite's account.
	DevAccountName = "devstoreaccount1"
	// DevAccountKey is Azurite's account key.
	DevAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	// AzuriteBlobEndpoint is the blob service of an Azurite on its default port.
	AzuriteBlobEndpoint = "http://127.0.0.1:10000/" + DevAccountName
	// AzuriteConnectionString is what "UseDevelopmentStorage=true" stands for.
	AzuriteConnectionString = "DefaultEndpointsProtocol=http;AccountName=" + DevAccountName +
		";AccountKey=" + DevAccountKey +
		";BlobEndpoint=" + AzuriteBlobEndpoint +
		";QueueEndpoint=http://127.0.0.1:10001/" + DevAccountName + ";"
)

// Auth returns the authentication method c selects.
func (c Config) Auth() AuthMethod {
	switch {
	case c.ConnectionString != "":
		return AuthConnectionString
	case c.StorageAccountKey != "":
		return AuthSharedKey
	case c.SASToken != "":
		return AuthSAS
	default:
		return AuthEntraID
	}
}

// connectionString returns the connection string with the development
// shorthand expanded (the SDK does not know it).
func (c Config) connectionString() string {
	if strings.EqualFold(strings.TrimRight(strings.TrimSpace(c.ConnectionString), ";"), "UseDevelopmentStorage=true") {
		return AzuriteConnectionString
	}
	return c.ConnectionString
}

// ServiceURL returns the blob service URL for the chosen method (without
// any SAS query), checking that what the method needs is set.
func (c Config) ServiceURL() (string, error) {
	if c.Auth() == AuthConnectionString {
		kv, err := parseConnectionString(c.connectionString())
		if err != nil {
			return "", err
		}
		if ep := kv["BlobEndpoint"]; ep != "" {
			return withSlash(ep), nil
		}
		if kv["AccountName"] == "" {
			return "", errors.New("azure_storage: connection_string has neither AccountName nor BlobEndpoint")
		}
		proto, suffix := kv["DefaultEndpointsProtocol"], kv["EndpointSuffix"]
		if proto == "" {
			proto = "https"
		}
		if suffix == "" {
			suffix = "core.windows.net"
		}
		return fmt.Sprintf("%s://%s.blob.%s/", proto, kv["AccountName"], suffix), nil
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("azure_storage: endpoint %q is not an http(s) URL", c.Endpoint)
		}
		if u.RawQuery != "" {
			return "", fmt.Errorf("azure_storage: endpoint must not carry a query; put a SAS in sas_token")
		}
		return withSlash(c.Endpoint), nil
	}
	if c.StorageAccountName == "" {
		switch c.Auth() {
		case AuthSharedKey:
			return "", errors.New("azure_storage: storage_account_name is required unless connection_string is set")
		case AuthSAS:
			return "", errors.New("azure_storage: sas_token needs storage_account_name or endpoint")
		default:
			return "", errors.New("azure_storage: no account configured: set connection_string, or storage_account_name " +
				"with storage_account_key or sas_token (or neither, to sign in with Entra ID)")
		}
	}
	return "https://" + c.StorageAccountName + ".blob.core.windows.net/", nil
}

// Validate reports what is missing or malformed in c, without contacting
// the service.
func (c Config) Validate() error {
	if _, err := c.ServiceURL(); err != nil {
		return err
	}
	if c.Auth() == AuthSharedKey && c.StorageAccountName == "" {
		return errors.New("azure_storage: storage_account_name is required unless connection_string is set")
	}
	if c.Auth() == AuthEntraID && c.Credential != "" && !strings.EqualFold(c.Credential, CredentialManagedIdentity) {
		return fmt.Errorf("azure_storage: credential %q: want %q or nothing (the default chain)", c.Credential, CredentialManagedIdentity)
	}
	return nil
}

// Secrets returns every secret value c holds — the key, the connection
// string, the SAS token, and the secret parts inside them (AccountKey,
// SharedAccessSignature, the "sig" of a SAS) — so that callers can check
// that none leaks into logs, errors or invocation messages.
func (c Config) Secrets() []string {
	var out []string
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" && len(s) >= 4 { // a shorter "secret" matches everywhere
			out = append(out, s)
		}
	}
	add(c.StorageAccountKey)
	add(c.ConnectionString)
	if kv, err := parseConnectionString(c.connectionString()); err == nil && c.ConnectionString != "" {
		add(kv["AccountKey"])
		add(kv["SharedAccessSignature"])
		add(sasSignature(kv["SharedAccessSignature"]))
	}
	add(c.SASToken)
	add(strings.TrimPrefix(c.SASToken, "?"))
	add(sasSignature(c.SASToken))
	// Deduplicate, keeping the order.
	seen := map[string]bool{}
	uniq := out[:0]
	for _, s := range out {
		if !seen[s] {
			seen[s] = true
			uniq = append(uniq, s)
		}
	}
	return uniq
}

// String describes c with its secrets masked, so a Config can be logged.
func (c Config) String() string {
	mask := func(s string) string {
		if s == "" {
			return `""`
		}
		return "****"
	}
	return fmt.Sprintf("azure_storage{storage_account_name: %q, storage_account_key: %s, connection_string: %s, sas_token: %s, endpoint: %q, credential: %q, client_id: %q}",
		c.StorageAccountName, mask(c.StorageAccountKey), mask(c.ConnectionString), mask(c.SASToken), c.Endpoint, c.Credential, c.ClientID)
}

// GoString masks the secrets for %#v too.
func (c Config) GoString() string {
	return "azblob.Config" + strings.TrimPrefix(c.String(), "azure_storage")
}

func sasSignature(sas string) string {
	q, err := url.ParseQuery(strings.TrimPrefix(sas, "?"))
	if err != nil {
		return ""
	}
	return q.Get("sig")
}

func parseConnectionString(cs string) (map[string]string, error) {
	kv := map[string]string{}
	for part := range strings.SplitSeq(strings.TrimRight(strings.TrimSpace(cs), ";"), ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok || strings.TrimSpace(k) == "" {
			// Do not quote the part: it may be a secret.
			return nil, errors.New("azure_storage: connection_string is malformed: want Key=Value pairs separated by ';'")
		}
		kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return kv, nil
}

func withSlash(u string) string {
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return u
}
