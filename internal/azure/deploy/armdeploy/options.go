// Options of a Deployer.

package armdeploy

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
)

// Option configures a Deployer.
type Option func(*Deployer)

// WithClientOptions sets the options of the ARM clients (transport,
// retries, cloud). Tests pass a transport from the SDK's fake packages,
// e.g. fake.NewServerFactoryTransport.
func WithClientOptions(o *arm.ClientOptions) Option {
	return func(d *Deployer) { d.armOptions = o }
}

// WithHTTPClient sets the HTTP client of the OneDeploy upload and of the
// deployment status polls (default: a client without overall timeout;
// requests are bounded by their contexts).
func WithHTTPClient(c *http.Client) Option {
	return func(d *Deployer) {
		if c != nil {
			d.httpClient = c
		}
	}
}

// WithSCMEndpoint sends OneDeploy requests to base (scheme://host[:port])
// instead of https://<the app's SCM host>. Meant for tests against a
// loopback server; an invalid URL makes New fail.
func WithSCMEndpoint(base string) Option {
	return func(d *Deployer) {
		u, err := url.Parse(base)
		if err != nil || u.Scheme == "" || u.Host == "" {
			d.scmEndpoint = &url.URL{} // reported by New
			return
		}
		d.scmEndpoint = &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimRight(u.Path, "/")}
	}
}

// WithSCMTokenScope sets the scope of the bearer token sent to the SCM
// endpoint. By default tokens are for SCMScope, and for SCMFallbackScope
// once the endpoint answers 401; with this option only scope is used (for
// example the App Service audience of a sovereign cloud).
func WithSCMTokenScope(scope string) Option {
	return func(d *Deployer) {
		if scope != "" {
			d.scmScope, d.scmFallback = scope, ""
		}
	}
}

// WithDeployTimeout bounds the OneDeploy phase of Deploy: upload, retries
// and waiting for the deployment to complete (default 10 minutes).
func WithDeployTimeout(t time.Duration) Option {
	return func(d *Deployer) {
		if t > 0 {
			d.deployTimeout = t
		}
	}
}

// WithPollInterval sets the interval between deployment status polls
// without Retry-After (default 1 s, as the App Service team recommends)
// and, at least one second, between polls of ARM long-running operations
// without Retry-After.
func WithPollInterval(t time.Duration) Option {
	return func(d *Deployer) {
		if t > 0 {
			d.pollInterval = t
		}
	}
}

// WithKeyWait bounds how long FunctionKey keeps asking for the host keys
// while the app's Functions host starts (default 5 minutes).
func WithKeyWait(t time.Duration) Option {
	return func(d *Deployer) {
		if t > 0 {
			d.keyWait = t
		}
	}
}

// WithLogger sets the logger that reports progress (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(d *Deployer) {
		if l != nil {
			d.log = l
		}
	}
}
