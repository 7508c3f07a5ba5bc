package azblob

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// ErrNoSuchHost reports that the host name of a storage endpoint does not
// exist (DNS answers "no such host"): a wrong account name or endpoint, which
// no retry mends. Errors of that kind match it with errors.Is and name the
// host.
var ErrNoSuchHost = errors.New("azure_storage: no such host")

// hostError is a DNS "no such host" of a storage endpoint. It tells the
// SDK's retry policy not to retry (NonRetriable).
type hostError struct {
	host, settings string
	dns            *net.DNSError
}

func (e *hostError) Error() string {
	return fmt.Sprintf("azure_storage: host %s does not exist (%v): check %s", e.host, e.dns, e.settings)
}

func (e *hostError) Unwrap() []error { return []error{ErrNoSuchHost, e.dns} }

// NonRetriable marks the error as permanent for the SDK's retry policy.
func (e *hostError) NonRetriable() {}

// noSuchHost returns err as a hostError when it is a DNS "no such host" for
// host, else nil. Only the DNS error is kept: the URL net/http quotes may
// carry a SAS signature.
func noSuchHost(err error, host, settings string) error {
	var dns *net.DNSError
	if err == nil || !errors.As(err, &dns) || !dns.IsNotFound {
		return nil
	}
	return &hostError{host: host, settings: settings, dns: dns}
}

// blobSettings are the settings that make up the blob endpoint's host.
const blobSettings = "azure_storage.storage_account_name / endpoint (or the connection string's account and BlobEndpoint)"

// failFastDNS is a per-try policy that makes a DNS "no such host" a
// permanent error, so that a wrong account name fails the first request at
// once instead of after every retry.
type failFastDNS struct{ settings string }

func (p failFastDNS) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if herr := noSuchHost(err, req.Raw().URL.Hostname(), p.settings); herr != nil {
		return nil, herr
	}
	return resp, err
}

// FailFastDNS returns a policy for the per-retry policies of an Azure SDK
// client (azcore.ClientOptions.PerRetryPolicies) that turns a DNS "no such
// host" into a permanent ErrNoSuchHost error naming the host and settings,
// the configuration settings to check. Other failures pass unchanged.
func FailFastDNS(settings string) policy.Policy { return failFastDNS{settings: settings} }

// CheckHost resolves the host of rawURL and returns an ErrNoSuchHost error
// naming it and settings when DNS says it does not exist. Any other outcome
// (an IP address, a resolved name, a lookup that failed for another reason,
// such as no network) is nil: those are for the requests to report.
func CheckHost(ctx context.Context, rawURL, settings string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" || net.ParseIP(u.Hostname()) != nil {
		return nil
	}
	_, err = net.DefaultResolver.LookupHost(ctx, u.Hostname())
	return noSuchHost(err, u.Hostname(), settings)
}
