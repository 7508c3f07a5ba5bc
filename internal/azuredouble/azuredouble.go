// Package azuredouble is a test double of the Azure platform around a Flex
// Consumption function app, served on one loopback HTTPS address so that a
// separately built program (the CLI, a user's client) can deploy to it and
// run on it as on Azure:
//
//   - Azure Resource Manager for App Service plans and sites (the SDK's
//     armappservice fake servers behind a real HTTP endpoint): create,
//     read, list, delete, app settings, host keys;
//   - the SCM (Kudu) OneDeploy endpoint: POST /api/publish takes the app
//     package, GET /api/deployments/<id> reports it (status 4 when done);
//   - Resource Manager for user-assigned managed identities and role
//     assignments (the armmsi and armauthorization fake servers), which a
//     keyless deploy creates;
//   - the App Service managed-identity token endpoint (IDENTITY_ENDPOINT
//     and IDENTITY_HEADER), which azidentity's managed identity credential
//     speaks; it hands out JWT-shaped tokens (AccessToken) that Azurite's
//     --oauth basic mode accepts, for the identity of the client_id asked,
//     and records every request.
//
// A published package runs at once, as the platform would run it: the zip
// is unpacked, host.json and the function's binding are read, and a
// Functions-host double (internal/hostdouble) starts the package's handler
// with the site's app settings, polling the queue its binding names. An
// app with identity-based storage settings (AzureWebJobsStorage__*, no
// connection string) runs only when the site has that identity assigned;
// the double then polls with the identity's tokens, and the app's
// processes get IDENTITY_ENDPOINT and IDENTITY_HEADER, as on Azure.
// A redeploy replaces the running app; deleting the site stops it.
//
// Clients trust the server's certificate through the file CertFile names
// (SSL_CERT_FILE for a separate process).
package azuredouble

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5/fake"
	authfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2/fake"
	msifake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/internal/hostdouble"
)

// IdentityHeader is the secret the managed-identity endpoint expects in
// X-IDENTITY-HEADER (IDENTITY_HEADER).
const IdentityHeader = "azuredouble-identity-header"

// Options configure a Platform.
type Options struct {
	// Instances of each running app (default 1); Output receives the
	// handlers' output (default os.Stderr).
	Instances int
	Output    io.Writer
	// Lease is how long a dequeued message stays invisible while it runs
	// (default 30 s).
	Lease time.Duration
	// Env is added to every handler's environment (e.g. LITHOPS_HOST_CACHE).
	Env []string
	// StorageClient carries the double's own storage requests (the
	// Functions host polling an app's trigger queue), e.g. a client that
	// trusts a test storage service's certificate; nil means the SDK's.
	StorageClient *http.Client
}

// TokenRequest is a request to the managed-identity endpoint.
type TokenRequest struct {
	Resource, ClientID string
}

// Platform is a running double. Close stops it and every app.
type Platform struct {
	opts Options
	srv  *httptest.Server
	arm  *fake.ServerFactoryTransport
	msi  *msifake.ServerFactoryTransport
	auth *authfake.ServerFactoryTransport
	dir  string

	mu       sync.Mutex
	plans    map[string]armappservice.Plan
	sites    map[string]armappservice.Site
	settings map[string]map[string]string
	apps     map[string]*runningApp      // by site name
	scm      map[string]*httptest.Server // each site's SCM (Kudu) endpoint
	tokens   []TokenRequest              // issued tokens
	// identities by lower-case resource id; assignments by scope|name.
	identities  map[string]Identity
	assignments map[string]RoleAssignment
	deploys     map[string]string // deployment id -> site name
	errs        []error
}

type runningApp struct {
	double *hostdouble.Double
	dir    string
}

// Start starts the platform on a loopback HTTPS address.
func Start(o Options) (*Platform, error) {
	if o.Instances < 1 {
		o.Instances = 1
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Output == nil {
		o.Output = os.Stderr
	}
	dir, err := os.MkdirTemp("", "azuredouble-")
	if err != nil {
		return nil, err
	}
	p := &Platform{opts: o, dir: dir,
		plans: map[string]armappservice.Plan{}, sites: map[string]armappservice.Site{},
		settings: map[string]map[string]string{}, apps: map[string]*runningApp{}, deploys: map[string]string{},
		scm: map[string]*httptest.Server{}, identities: map[string]Identity{}, assignments: map[string]RoleAssignment{}}
	p.arm = fake.NewServerFactoryTransport(p.server())
	p.msi = msifake.NewServerFactoryTransport(p.msiServer())
	p.auth = authfake.NewServerFactoryTransport(p.authServer())
	p.srv = httptest.NewTLSServer(http.HandlerFunc(p.serveHTTP))
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	if err := os.WriteFile(p.CertFile(), cert, 0o644); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// URL is the platform's base URL (https://127.0.0.1:port): the Resource
// Manager endpoint and the identity endpoint's host. Each site has an SCM
// endpoint of its own (its repository host name), with the same
// certificate.
func (p *Platform) URL() string { return p.srv.URL }

// CertFile is a PEM file with the server's certificate.
func (p *Platform) CertFile() string { return filepath.Join(p.dir, "cert.pem") }

// IdentityEndpoint is the managed-identity token endpoint (IDENTITY_ENDPOINT).
func (p *Platform) IdentityEndpoint() string { return p.srv.URL + "/msi/token" }

// ClientEnv is the environment a separate process needs to use the
// platform: the certificate to trust and the managed identity.
func (p *Platform) ClientEnv() []string {
	return []string{"SSL_CERT_FILE=" + p.CertFile(), appsettings.IdentityEndpoint + "=" + p.IdentityEndpoint(), appsettings.IdentityHeader + "=" + IdentityHeader}
}

// TokenAudiences returns the resources tokens were issued for, in order.
func (p *Platform) TokenAudiences() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, len(p.tokens))
	for i, t := range p.tokens {
		out[i] = t.Resource
	}
	return out
}

// TokenRequests returns the managed-identity endpoint's requests, in order.
func (p *Platform) TokenRequests() []TokenRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.tokens)
}

// Sites returns the sites by name.
func (p *Platform) Sites() map[string]armappservice.Site {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.sites)
}

// Settings returns a site's app settings.
func (p *Platform) Settings(site string) map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.settings[p.siteKey(site)])
}

// Double returns the Functions-host double running a site's app, or nil.
func (p *Platform) Double(site string) *hostdouble.Double {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a := p.apps[site]; a != nil {
		return a.double
	}
	return nil
}

// Errors returns what went wrong inside the platform (a package that could
// not start, a malformed request).
func (p *Platform) Errors() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.errs)
}

// Close stops every app and the server.
func (p *Platform) Close() {
	p.mu.Lock()
	apps, scm := p.apps, p.scm
	p.apps, p.scm = map[string]*runningApp{}, map[string]*httptest.Server{}
	p.mu.Unlock()
	for _, a := range apps {
		a.stop()
	}
	for _, s := range scm {
		s.Close()
	}
	p.srv.Close()
	os.RemoveAll(p.dir)
}

func (a *runningApp) stop() {
	a.double.Close()
	os.RemoveAll(a.dir)
}

func (p *Platform) fail(err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

func (p *Platform) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/subscriptions/"):
		p.serveARM(w, r)
	case r.URL.Path == "/msi/token":
		p.serveToken(w, r)
	default:
		http.Error(w, "azuredouble: no such endpoint", http.StatusNotFound)
	}
}

// serveARM hands the request to the SDK's fake servers.
func (p *Platform) serveARM(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		http.Error(w, `{"error":{"code":"AuthenticationFailed","message":"no bearer token"}}`, http.StatusUnauthorized)
		return
	}
	api, tr := p.apiName(r.Method, r.URL.Path)
	if api == "" {
		http.Error(w, `{"error":{"code":"NotImplemented","message":"azuredouble: no such Resource Manager operation"}}`, http.StatusNotImplemented)
		return
	}
	body, _ := io.ReadAll(r.Body)
	// WithoutCancel: the SDK's fake servers panic when the request's ctx
	// ends while they answer (a client that hangs up).
	req := r.Clone(context.WithValue(context.WithoutCancel(r.Context()), runtime.CtxAPINameKey{}, api))
	req.RequestURI = ""
	req.URL.Scheme, req.URL.Host = "https", r.Host
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	resp, err := tr.Do(req)
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.RawResponse != nil {
		// The fakes report error answers as errors that carry them.
		resp, err = re.RawResponse, nil
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// apiName names the SDK operation of a Resource Manager request (the fake
// servers dispatch on it) and the fake server that serves it: the App
// Service, managed identity and role assignment operations lithops uses.
func (p *Platform) apiName(method, path string) (string, policy.Transporter) {
	lower := strings.ToLower(path)
	// <scope>/providers/microsoft.authorization/roleassignments/<name>
	if _, name, ok := strings.Cut(lower, "/providers/microsoft.authorization/roleassignments/"); ok && name != "" && !strings.Contains(name, "/") {
		switch method {
		case http.MethodGet:
			return "RoleAssignmentsClient.Get", p.auth
		case http.MethodPut:
			return "RoleAssignmentsClient.Create", p.auth
		}
		return "", nil
	}
	parts := strings.Split(strings.Trim(lower, "/"), "/")
	// subscriptions/<s>/resourcegroups/<rg>/providers/microsoft.managedidentity/userassignedidentities/<name>
	if len(parts) == 8 && parts[5] == "microsoft.managedidentity" && parts[6] == "userassignedidentities" {
		switch method {
		case http.MethodGet:
			return "UserAssignedIdentitiesClient.Get", p.msi
		case http.MethodPut:
			return "UserAssignedIdentitiesClient.CreateOrUpdate", p.msi
		}
		return "", nil
	}
	if api := webAPIName(method, parts); api != "" {
		return api, p.arm
	}
	return "", nil
}

// webAPIName names the App Service operation of a request's path parts.
func webAPIName(method string, parts []string) string {
	// subscriptions/<s>/resourcegroups/<rg>/providers/microsoft.web/<kind>[/<name>[/...]]
	if len(parts) < 7 || parts[0] != "subscriptions" || parts[2] != "resourcegroups" || parts[4] != "providers" || parts[5] != "microsoft.web" {
		return ""
	}
	kind, rest := parts[6], parts[7:]
	client := map[string]string{"serverfarms": "PlansClient", "sites": "WebAppsClient"}[kind]
	if client == "" {
		return ""
	}
	op := ""
	switch tail := strings.Join(rest[min(1, len(rest)):], "/"); {
	case len(rest) == 0 && method == http.MethodGet:
		op = "NewListByResourceGroupPager"
	case len(rest) == 1 && method == http.MethodGet:
		op = "Get"
	case len(rest) == 1 && method == http.MethodPut:
		op = "BeginCreateOrUpdate"
	case len(rest) == 1 && method == http.MethodDelete:
		op = "Delete"
	case client == "WebAppsClient" && tail == "config/appsettings/list" && method == http.MethodPost:
		op = "ListApplicationSettings"
	case client == "WebAppsClient" && tail == "config/appsettings" && method == http.MethodPut:
		op = "UpdateApplicationSettings"
	case client == "WebAppsClient" && tail == "host/default/listkeys" && method == http.MethodPost:
		op = "ListHostKeys"
	default:
		return ""
	}
	return client + "." + op
}

// serveToken is the App Service managed-identity protocol (api-version
// 2019-08-01).
func (p *Platform) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-IDENTITY-HEADER") != IdentityHeader {
		http.Error(w, "bad identity header", http.StatusUnauthorized)
		return
	}
	res := r.URL.Query().Get("resource")
	if res == "" {
		http.Error(w, "no resource", http.StatusBadRequest)
		return
	}
	clientID := r.URL.Query().Get("client_id")
	p.mu.Lock()
	p.tokens = append(p.tokens, TokenRequest{Resource: res, ClientID: clientID})
	principal := guidOf("system-assigned")
	if clientID != "" {
		id, ok := p.identityByClientID(clientID)
		if !ok {
			p.mu.Unlock()
			// As App Service answers for an identity not assigned to the app.
			http.Error(w, `{"statusCode":400,"message":"Unable to load the proper Managed Identity."}`, http.StatusBadRequest)
			return
		}
		principal = id.PrincipalID
	}
	p.mu.Unlock()
	exp := time.Now().Add(time.Hour).Unix()
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": AccessToken(res, principal, clientID), "expires_on": strconv.FormatInt(exp, 10),
		"resource": res, "token_type": "Bearer", "client_id": clientID,
	})
}

// siteKey finds the resource-group/name key of a site by name.
func (p *Platform) siteKey(name string) string {
	for k := range p.sites {
		if path.Base(k) == name {
			return k
		}
	}
	return ""
}

// scmHandler serves one site's SCM endpoint: OneDeploy and its status.
func (p *Platform) scmHandler(site string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/publish":
			p.servePublish(w, r, site)
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/deployments/"):
			p.serveDeployment(w, r)
		default:
			http.Error(w, "azuredouble: no such SCM endpoint", http.StatusNotFound)
		}
	})
}

// scmHost starts (once) and names the site's SCM endpoint. Called with
// p.mu held.
func (p *Platform) scmHost(site string) string {
	s := p.scm[site]
	if s == nil {
		s = httptest.NewTLSServer(p.scmHandler(site))
		p.scm[site] = s
	}
	return strings.TrimPrefix(s.URL, "https://")
}

// servePublish takes a package (OneDeploy, a zip body) and runs it.
func (p *Platform) servePublish(w http.ResponseWriter, r *http.Request, site string) {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		http.Error(w, "no bearer token", http.StatusUnauthorized)
		return
	}
	pkg, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := fmt.Sprintf("dep-%s-%d", site, time.Now().UnixNano())
	if err := p.run(site, pkg); err != nil {
		p.fail(fmt.Errorf("site %s: %w", site, err))
		p.mu.Lock()
		p.deploys[id] = "!" + err.Error()
		p.mu.Unlock()
	} else {
		p.mu.Lock()
		p.deploys[id] = site
		p.mu.Unlock()
	}
	w.Header().Set("Location", "/api/deployments/"+id)
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(map[string]any{"id": id})
}

func (p *Platform) serveDeployment(w http.ResponseWriter, r *http.Request) {
	id := path.Base(r.URL.Path)
	p.mu.Lock()
	site, ok := p.deploys[id]
	p.mu.Unlock()
	switch {
	case !ok:
		http.Error(w, "no deployment", http.StatusNotFound)
	case strings.HasPrefix(site, "!"):
		json.NewEncoder(w).Encode(map[string]any{"id": id, "status": 3, "complete": true, "status_text": site[1:]})
	default:
		json.NewEncoder(w).Encode(map[string]any{"id": id, "status": 4, "complete": true, "active": true, "status_text": "deployed"})
	}
}

// hostJSON is what the double reads of host.json.
type hostJSON struct {
	FunctionTimeout string `json:"functionTimeout"`
	CustomHandler   struct {
		Description struct {
			DefaultExecutablePath string   `json:"defaultExecutablePath"`
			Arguments             []string `json:"arguments"`
		} `json:"description"`
	} `json:"customHandler"`
	Extensions struct {
		Queues struct {
			VisibilityTimeout string `json:"visibilityTimeout"`
			MaxDequeueCount   int    `json:"maxDequeueCount"`
		} `json:"queues"`
	} `json:"extensions"`
}

// run unpacks a package and starts it under a Functions-host double,
// replacing the app running before.
func (p *Platform) run(site string, pkg []byte) error {
	p.mu.Lock()
	settings := maps.Clone(p.settings[p.siteKey(site)])
	siteRes := p.sites[p.siteKey(site)]
	old := p.apps[site]
	delete(p.apps, site)
	p.mu.Unlock()
	if old != nil {
		old.stop()
	}
	dir, err := os.MkdirTemp(p.dir, site+"-")
	if err != nil {
		return err
	}
	if err := unzip(pkg, dir); err != nil {
		return err
	}
	var hj hostJSON
	if err := readJSON(filepath.Join(dir, "host.json"), &hj); err != nil {
		return err
	}
	var fn struct {
		Bindings []struct {
			Type, QueueName, Connection string
		} `json:"bindings"`
	}
	fdir, function := "", ""
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), "function.json")); err == nil {
				fdir, function = filepath.Join(dir, e.Name()), e.Name()
			}
		}
	}
	if fdir == "" {
		return fmt.Errorf("the package has no function (<name>/function.json)")
	}
	if err := readJSON(filepath.Join(fdir, "function.json"), &fn); err != nil {
		return err
	}
	if len(fn.Bindings) == 0 || fn.Bindings[0].Type != "queueTrigger" {
		return fmt.Errorf("the double runs queue-triggered functions only")
	}
	b := fn.Bindings[0]
	queue := b.QueueName
	if strings.HasPrefix(queue, "%") && strings.HasSuffix(queue, "%") {
		queue = settings[strings.Trim(queue, "%")]
	}
	if queue == "" {
		return fmt.Errorf("binding queue %q not resolved from the app settings", b.QueueName)
	}
	svc, err := p.queueService(siteRes, settings, b.Connection)
	if err != nil {
		return err
	}
	exe := filepath.Join(dir, hj.CustomHandler.Description.DefaultExecutablePath)
	if _, err := os.Stat(exe); err != nil {
		return fmt.Errorf("defaultExecutablePath: %w", err)
	}
	env := slices.Clone(p.opts.Env)
	// The platform's token endpoint, which every app's processes see.
	env = append(env, appsettings.IdentityEndpoint+"="+p.IdentityEndpoint(), appsettings.IdentityHeader+"="+IdentityHeader)
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	// The Functions host refuses a host.json whose spans it cannot read.
	var timeout, retry time.Duration
	if hj.FunctionTimeout != "" {
		if timeout, err = parseSpan(hj.FunctionTimeout); err != nil {
			return fmt.Errorf("host.json functionTimeout %q: %w", hj.FunctionTimeout, err)
		}
	}
	if v := hj.Extensions.Queues.VisibilityTimeout; v != "" {
		if retry, err = parseSpan(v); err != nil {
			return fmt.Errorf("host.json extensions.queues.visibilityTimeout %q: %w", v, err)
		}
	}
	d, err := hostdouble.Start(context.Background(), hostdouble.Options{
		Command: append([]string{exe}, hj.CustomHandler.Description.Arguments...),
		Dir:     dir,
		Env:     env, Queues: svc, Queue: queue, Function: function,
		Instances: p.opts.Instances, MaxDequeueCount: hj.Extensions.Queues.MaxDequeueCount,
		RetryDelay: retry, Lease: p.opts.Lease, FunctionTimeout: timeout, Output: p.opts.Output,
	})
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.apps[site] = &runningApp{double: d, dir: dir}
	p.mu.Unlock()
	return nil
}

// queueService opens the queue service of a binding's connection as the
// Functions host does: the connection string setting conn, or else its
// identity-based settings (conn__queueServiceUri or conn__accountName,
// conn__credential managedidentity, conn__clientId), with the tokens of
// that identity, which must be assigned to the site.
func (p *Platform) queueService(site armappservice.Site, settings map[string]string, conn string) (*azqueue.ServiceClient, error) {
	opts := &azqueue.ClientOptions{}
	if p.opts.StorageClient != nil {
		opts.Transport = p.opts.StorageClient
	}
	if cs := settings[conn]; cs != "" {
		svc, err := azqueue.NewServiceClientFromConnectionString(cs, opts)
		if err != nil {
			return nil, fmt.Errorf("connection %s: %w", conn, err)
		}
		return svc, nil
	}
	get := func(name string) string {
		for k, v := range settings {
			if strings.EqualFold(k, conn+"__"+name) || strings.EqualFold(k, conn+":"+name) {
				return v
			}
		}
		return ""
	}
	uri := get("queueServiceUri")
	if acct := get("accountName"); uri == "" && acct != "" {
		uri = "https://" + acct + ".queue.core.windows.net/"
	}
	if uri == "" {
		return nil, fmt.Errorf("connection %s: neither %s nor its identity-based settings (%s__queueServiceUri or __accountName) are set", conn, conn, conn)
	}
	if c := get("credential"); !strings.EqualFold(c, "managedidentity") {
		return nil, fmt.Errorf("connection %s: %s__credential is %q, want managedidentity", conn, conn, c)
	}
	clientID := get("clientId")
	if clientID == "" {
		return nil, fmt.Errorf("connection %s: %s__clientId is not set (the double has no system-assigned identities)", conn, conn)
	}
	p.mu.Lock()
	id, ok := p.identityByClientID(clientID)
	p.mu.Unlock()
	assigned := false
	if site.Identity != nil {
		for rid := range site.Identity.UserAssignedIdentities {
			assigned = assigned || strings.EqualFold(rid, id.ResourceID)
		}
	}
	if !ok || !assigned {
		return nil, fmt.Errorf("connection %s: the identity of client id %s is not assigned to the site", conn, clientID)
	}
	svc, err := azqueue.NewServiceClient(uri, identityCredential{id}, opts)
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", conn, err)
	}
	return svc, nil
}

// identityCredential is a managed identity's tokens as the platform itself
// uses them.
type identityCredential struct{ id Identity }

func (c identityCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if len(o.Scopes) != 1 {
		return azcore.AccessToken{}, errors.New("azuredouble: want one scope")
	}
	return azcore.AccessToken{Token: AccessToken(strings.TrimSuffix(o.Scopes[0], "/.default"), c.id.PrincipalID, c.id.ClientID),
		ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// parseSpan parses a host.json time span, hh:mm:ss.
func parseSpan(s string) (time.Duration, error) {
	var h, m, sec int
	if n, err := fmt.Sscanf(s, "%d:%d:%d", &h, &m, &sec); err != nil || n != 3 || m > 59 || sec > 59 || h < 0 || m < 0 || sec < 0 {
		return 0, fmt.Errorf("not a time span hh:mm:ss")
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second, nil
}

func readJSON(file string, v any) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(file), err)
	}
	return nil
}

func unzip(pkg []byte, dir string) error {
	zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
	if err != nil {
		return fmt.Errorf("package is not a zip: %w", err)
	}
	for _, f := range zr.File {
		if strings.Contains(f.Name, "..") || strings.HasPrefix(f.Name, "/") {
			return fmt.Errorf("package entry %q leaves the app directory", f.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(f.Name))
		if f.FileInfo().IsDir() {
			os.MkdirAll(dst, 0o755)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, f.Mode().Perm()|0o600)
		if err == nil {
			_, err = io.Copy(out, rc)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
