package armdeploy

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5/fake"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
)

const (
	testSub    = "00000000-0000-0000-0000-000000000001"
	testRG     = "lithops-rg"
	testSecret = "sp-secret-never-on-the-wire" // the deployer's own client secret
	testConn   = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net"
)

// testZip is a minimal (empty) zip archive.
var testZip = []byte("PK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// --- ARM: an in-memory resource group behind the SDK's fake servers ---

type armCall struct {
	API  string         // e.g. "PlansClient.BeginCreateOrUpdate"
	Path string         // URL path
	Body map[string]any // decoded JSON body, nil when none
	Raw  string
}

// recorder sits between the ARM pipeline and the fake transport and keeps
// every request as sent on the wire.
type recorder struct {
	next policy.Transporter
	mu   sync.Mutex
	reqs []armCall
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	c := armCall{Path: req.URL.Path}
	if name, ok := req.Context().Value(runtime.CtxAPINameKey{}).(string); ok {
		c.API = name
	}
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		c.Raw = string(b)
		if len(b) > 0 {
			if err := json.Unmarshal(b, &c.Body); err != nil {
				return nil, fmt.Errorf("recorder: body of %s is not JSON: %v", c.API, err)
			}
		}
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, c)
	r.mu.Unlock()
	// The SDK's fake servers panic (send on a closed channel) when the
	// request's ctx ends while they answer: they always answer at once, so
	// they get a ctx that does not end; the caller's ctx still rules the
	// pipeline around them.
	return r.next.Do(req.WithContext(context.WithoutCancel(req.Context())))
}

func (r *recorder) calls() []armCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

func (r *recorder) apis() []string {
	var out []string
	for _, c := range r.calls() {
		out = append(out, c.API)
	}
	return out
}

func (r *recorder) find(api string) []armCall {
	var out []armCall
	for _, c := range r.calls() {
		if c.API == api {
			out = append(out, c)
		}
	}
	return out
}

// cloud is a resource group: plans, sites, app settings and host keys.
type cloud struct {
	mu       sync.Mutex
	plans    map[string]armappservice.Plan
	sites    map[string]armappservice.Site
	settings map[string]map[string]string
	keys     map[string]armappservice.HostKeys

	ignoreSiteConfigSettings bool  // the site PUT does not apply siteConfig.appSettings
	siteDeleteNotFound       bool  // site DELETE answers 404 (deleted concurrently)
	planDeleteNotFound       bool  // plan DELETE answers 404
	pageSize                 int   // list pages of this many sites (0: one page)
	keyErrors                []int // ListHostKeys answers these HTTP codes first, one per call
	keyAlways                int   // then this one, when set
	keyCalls                 int
	deleteOptions            []*armappservice.WebAppsClientDeleteOptions
	updatedSettings          []map[string]string
}

func newCloud() *cloud {
	return &cloud{
		plans:    map[string]armappservice.Plan{},
		sites:    map[string]armappservice.Site{},
		settings: map[string]map[string]string{},
		keys:     map[string]armappservice.HostKeys{},
	}
}

func planID(rg, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Web/serverfarms/%s", testSub, rg, name)
}

func scmHost(name string) string { return name + "-f3a9.scm.westeurope-01.azurewebsites.net" }

func (c *cloud) server() *fake.ServerFactory {
	return &fake.ServerFactory{
		PlansServer: fake.PlansServer{
			Get: func(_ context.Context, rg, name string, _ *armappservice.PlansClientGetOptions) (resp azfake.Responder[armappservice.PlansClientGetResponse], errResp azfake.ErrorResponder) {
				c.mu.Lock()
				defer c.mu.Unlock()
				p, ok := c.plans[rg+"/"+name]
				if !ok {
					errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
					return
				}
				resp.SetResponse(http.StatusOK, armappservice.PlansClientGetResponse{Plan: p}, nil)
				return
			},
			BeginCreateOrUpdate: func(_ context.Context, rg, name string, p armappservice.Plan, _ *armappservice.PlansClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armappservice.PlansClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
				c.mu.Lock()
				defer c.mu.Unlock()
				p.ID, p.Name = to.Ptr(planID(rg, name)), to.Ptr(name)
				c.plans[rg+"/"+name] = p
				resp.AddNonTerminalResponse(http.StatusAccepted, nil)
				resp.SetTerminalResponse(http.StatusOK, armappservice.PlansClientCreateOrUpdateResponse{Plan: p}, nil)
				return
			},
			Delete: func(_ context.Context, rg, name string, _ *armappservice.PlansClientDeleteOptions) (resp azfake.Responder[armappservice.PlansClientDeleteResponse], errResp azfake.ErrorResponder) {
				c.mu.Lock()
				defer c.mu.Unlock()
				if _, ok := c.plans[rg+"/"+name]; !ok || c.planDeleteNotFound {
					errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
					return
				}
				delete(c.plans, rg+"/"+name)
				resp.SetResponse(http.StatusOK, armappservice.PlansClientDeleteResponse{}, nil)
				return
			},
			NewListByResourceGroupPager: func(rg string, _ *armappservice.PlansClientListByResourceGroupOptions) (resp azfake.PagerResponder[armappservice.PlansClientListByResourceGroupResponse]) {
				c.mu.Lock()
				defer c.mu.Unlock()
				var page armappservice.PlansClientListByResourceGroupResponse
				for _, k := range slices.Sorted(maps.Keys(c.plans)) {
					if strings.HasPrefix(k, rg+"/") {
						p := c.plans[k]
						page.Value = append(page.Value, &p)
					}
				}
				resp.AddPage(http.StatusOK, page, nil)
				return
			},
		},
		WebAppsServer: fake.WebAppsServer{
			Get: func(_ context.Context, rg, name string, _ *armappservice.WebAppsClientGetOptions) (resp azfake.Responder[armappservice.WebAppsClientGetResponse], errResp azfake.ErrorResponder) {
				c.mu.Lock()
				defer c.mu.Unlock()
				s, ok := c.sites[rg+"/"+name]
				if !ok {
					errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
					return
				}
				resp.SetResponse(http.StatusOK, armappservice.WebAppsClientGetResponse{Site: s}, nil)
				return
			},
			BeginCreateOrUpdate: func(_ context.Context, rg, name string, s armappservice.Site, _ *armappservice.WebAppsClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armappservice.WebAppsClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
				c.mu.Lock()
				defer c.mu.Unlock()
				if s.Properties == nil {
					errResp.SetResponseError(http.StatusBadRequest, "MissingProperties")
					return
				}
				if !c.ignoreSiteConfigSettings && s.Properties.SiteConfig != nil {
					m := map[string]string{}
					for _, p := range s.Properties.SiteConfig.AppSettings {
						m[*p.Name] = *p.Value
					}
					c.settings[rg+"/"+name] = m
				}
				s.Properties.SiteConfig = nil // not echoed by the service
				s.ID = to.Ptr(fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Web/sites/%s", testSub, rg, name))
				s.Name = to.Ptr(name)
				s.Properties.ResourceGroup = to.Ptr(rg)
				s.Properties.DefaultHostName = to.Ptr(name + "-f3a9.westeurope-01.azurewebsites.net")
				s.Properties.EnabledHostNames = []*string{s.Properties.DefaultHostName, to.Ptr(scmHost(name))}
				s.Properties.HostNameSSLStates = []*armappservice.HostNameSSLState{
					{Name: s.Properties.DefaultHostName, HostType: to.Ptr(armappservice.HostTypeStandard)},
					{Name: to.Ptr(scmHost(name)), HostType: to.Ptr(armappservice.HostTypeRepository)},
				}
				c.sites[rg+"/"+name] = s
				resp.SetTerminalResponse(http.StatusOK, armappservice.WebAppsClientCreateOrUpdateResponse{Site: s}, nil)
				return
			},
			ListApplicationSettings: func(_ context.Context, rg, name string, _ *armappservice.WebAppsClientListApplicationSettingsOptions) (resp azfake.Responder[armappservice.WebAppsClientListApplicationSettingsResponse], errResp azfake.ErrorResponder) {
				c.mu.Lock()
				defer c.mu.Unlock()
				if _, ok := c.sites[rg+"/"+name]; !ok {
					errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
					return
				}
				resp.SetResponse(http.StatusOK, armappservice.WebAppsClientListApplicationSettingsResponse{
					StringDictionary: armappservice.StringDictionary{Properties: ptrMap(c.settings[rg+"/"+name])},
				}, nil)
				return
			},
			UpdateApplicationSettings: func(_ context.Context, rg, name string, d armappservice.StringDictionary, _ *armappservice.WebAppsClientUpdateApplicationSettingsOptions) (resp azfake.Responder[armappservice.WebAppsClientUpdateApplicationSettingsResponse], errResp azfake.ErrorResponder) {
				c.mu.Lock()
				defer c.mu.Unlock()
				m := map[string]string{}
				for k, v := range d.Properties {
					m[k] = *v
				}
				c.settings[rg+"/"+name] = m
				c.updatedSettings = append(c.updatedSettings, m)
				resp.SetResponse(http.StatusOK, armappservice.WebAppsClientUpdateApplicationSettingsResponse{StringDictionary: d}, nil)
				return
			},
			NewListByResourceGroupPager: func(rg string, _ *armappservice.WebAppsClientListByResourceGroupOptions) (resp azfake.PagerResponder[armappservice.WebAppsClientListByResourceGroupResponse]) {
				c.mu.Lock()
				defer c.mu.Unlock()
				var all []*armappservice.Site
				for _, k := range slices.Sorted(maps.Keys(c.sites)) {
					if strings.HasPrefix(k, rg+"/") {
						s := c.sites[k]
						all = append(all, &s)
					}
				}
				size := c.pageSize
				if size <= 0 {
					size = max(len(all), 1)
				}
				for len(all) > size {
					resp.AddPage(http.StatusOK, armappservice.WebAppsClientListByResourceGroupResponse{WebAppCollection: armappservice.WebAppCollection{Value: all[:size]}}, nil)
					all = all[size:]
				}
				resp.AddPage(http.StatusOK, armappservice.WebAppsClientListByResourceGroupResponse{WebAppCollection: armappservice.WebAppCollection{Value: all}}, nil)
				return
			},
			Delete: func(_ context.Context, rg, name string, o *armappservice.WebAppsClientDeleteOptions) (resp azfake.Responder[armappservice.WebAppsClientDeleteResponse], errResp azfake.ErrorResponder) {
				c.mu.Lock()
				defer c.mu.Unlock()
				c.deleteOptions = append(c.deleteOptions, o)
				if _, ok := c.sites[rg+"/"+name]; !ok || c.siteDeleteNotFound {
					delete(c.sites, rg+"/"+name)
					errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
					return
				}
				delete(c.sites, rg+"/"+name)
				delete(c.settings, rg+"/"+name)
				resp.SetResponse(http.StatusOK, armappservice.WebAppsClientDeleteResponse{}, nil)
				return
			},
			ListHostKeys: func(_ context.Context, rg, name string, _ *armappservice.WebAppsClientListHostKeysOptions) (resp azfake.Responder[armappservice.WebAppsClientListHostKeysResponse], errResp azfake.ErrorResponder) {
				c.mu.Lock()
				defer c.mu.Unlock()
				c.keyCalls++
				code := c.keyAlways
				if len(c.keyErrors) > 0 {
					code, c.keyErrors = c.keyErrors[0], c.keyErrors[1:]
				}
				if code != 0 {
					errResp.SetResponseError(code, http.StatusText(code))
					return
				}
				k, ok := c.keys[rg+"/"+name]
				if !ok {
					errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
					return
				}
				resp.SetResponse(http.StatusOK, armappservice.WebAppsClientListHostKeysResponse{HostKeys: k}, nil)
				return
			},
		},
	}
}

// --- credential that records the scopes it was asked for ---

type scopeCred struct {
	azfake.TokenCredential
	secret    string // what a client secret credential would hold; must never be sent
	mu        sync.Mutex
	scopes    []string
	failScope string            // scope whose tokens fail
	tokens    map[string]string // token per scope; others get the fake's token
}

func (c *scopeCred) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	c.scopes = append(c.scopes, o.Scopes...)
	fail := c.failScope != "" && slices.Contains(o.Scopes, c.failScope)
	c.mu.Unlock()
	if fail {
		return azcore.AccessToken{}, errors.New("AADSTS500011: resource principal not found in tenant")
	}
	for _, s := range o.Scopes {
		if tok, ok := c.tokens[s]; ok {
			return azcore.AccessToken{Token: tok, ExpiresOn: time.Now().Add(time.Hour)}, nil
		}
	}
	return c.TokenCredential.GetToken(ctx, o)
}

// --- OneDeploy: a loopback Kudu ---

type post struct {
	Query, ContentType, Auth string
	Body                     []byte
}

type kudu struct {
	t  *testing.T
	mu sync.Mutex

	postCodes  []int             // answers to successive POSTs before the 202
	accept     func(http.Header) // sets the 202's headers; body from acceptBody
	acceptBody string
	statuses   []any // successive GET answers: a JSON object, or an int HTTP code
	log        []logEntry
	// rejectPost and rejectGet are Authorization headers answered with 401
	// on POSTs and on GETs.
	rejectPost, rejectGet []string
	retryAfter            string // Retry-After of status answers
	statusTimes           []time.Time

	posts     []post
	statusGet []string // paths polled
	auths     []string // Authorization of every GET
}

func (k *kudu) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/publish":
		b, _ := io.ReadAll(r.Body)
		k.posts = append(k.posts, post{Query: r.URL.RawQuery, ContentType: r.Header.Get("Content-Type"), Auth: r.Header.Get("Authorization"), Body: b})
		if slices.Contains(k.rejectPost, r.Header.Get("Authorization")) {
			http.Error(w, "invalid audience", http.StatusUnauthorized)
			return
		}
		if n := len(k.posts); n <= len(k.postCodes) {
			http.Error(w, fmt.Sprintf("try later (%d)", k.postCodes[n-1]), k.postCodes[n-1])
			return
		}
		if k.accept != nil {
			k.accept(w.Header())
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, k.acceptBody)
	case r.Method == http.MethodGet && slices.Contains(k.rejectGet, r.Header.Get("Authorization")):
		k.auths = append(k.auths, r.Header.Get("Authorization"))
		http.Error(w, "invalid audience", http.StatusUnauthorized)
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/log"):
		k.auths = append(k.auths, r.Header.Get("Authorization"))
		json.NewEncoder(w).Encode(k.log)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/deployments/"):
		k.auths = append(k.auths, r.Header.Get("Authorization"))
		k.statusGet = append(k.statusGet, r.URL.Path)
		k.statusTimes = append(k.statusTimes, time.Now())
		if k.retryAfter != "" {
			w.Header().Set("Retry-After", k.retryAfter)
		}
		if len(k.statuses) == 0 {
			http.Error(w, "no deployment", http.StatusNotFound)
			return
		}
		st := k.statuses[0]
		if len(k.statuses) > 1 {
			k.statuses = k.statuses[1:]
		}
		if code, ok := st.(int); ok {
			http.Error(w, "status", code)
			return
		}
		json.NewEncoder(w).Encode(st)
	default:
		k.t.Errorf("kudu: unexpected %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	}
}

func status(id string, st int, complete bool, text string) map[string]any {
	return map[string]any{"id": id, "status": st, "complete": complete, "status_text": text, "active": st == 4}
}

// --- harness ---

type harness struct {
	cloud *cloud
	rec   *recorder
	kudu  *kudu
	srv   *httptest.Server
	cred  *scopeCred
	d     *Deployer
}

func newHarness(t *testing.T, opts ...Option) *harness {
	t.Helper()
	h := &harness{cloud: newCloud(), cred: &scopeCred{secret: testSecret}}
	h.kudu = &kudu{t: t, acceptBody: `"dep-1"`, statuses: []any{status("dep-1", 4, true, "Deployment successful.")}}
	h.srv = httptest.NewServer(h.kudu)
	t.Cleanup(h.srv.Close)
	h.rec = &recorder{next: fake.NewServerFactoryTransport(h.cloud.server())}
	base := []Option{
		// No SDK retries: tests see every answer of the fake.
		WithClientOptions(&arm.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: h.rec, Retry: policy.RetryOptions{MaxRetries: -1}}}),
		WithSCMEndpoint(h.srv.URL),
		WithHTTPClient(h.srv.Client()),
		WithPollInterval(5 * time.Millisecond),
		WithDeployTimeout(10 * time.Second),
		WithKeyWait(300 * time.Millisecond),
	}
	d, err := New(testSub, h.cred, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h.d = d
	return h
}

func testSpec() Spec {
	return Spec{
		Name:          "lithops-default-0123456789",
		PlanName:      "lithops-default-0123456789-plan",
		Region:        "westeurope",
		ResourceGroup: testRG,
		RuntimeName:   "default",
		Version:       "0.3.0",
		MemoryMB:      4096,
		MaxInstances:  200,
		AppSettings: map[string]string{
			"AzureWebJobsStorage":         testConn,
			appsettings.DeploymentStorage: testConn,
			"LITHOPS_RUNTIME":             "default",
			"LITHOPS_STORAGE_BACKEND":     "azure_storage",
			"LITHOPS_TRIGGER_QUEUE":       "lithops-default-0123456789-in",
			"LITHOPS_STORAGE_ACCOUNT":     "acct",
			"LITHOPS_WORKER_PROCESSES":    "4",
		},
		DeploymentContainerURL: "https://acct.blob.core.windows.net/lithops-deploy",
		Tags:                   map[string]string{"owner": "ci", TagType: "something-else"},
	}
}

// get walks a decoded JSON body: get(m, "properties", "sku", "name").
func get(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func wantJSON(t *testing.T, body map[string]any, want any, path ...string) {
	t.Helper()
	got := get(body, path...)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", strings.Join(path, "."), got, want)
	}
}

// --- tests ---

func TestDeployNewRuntime(t *testing.T) {
	h := newHarness(t)
	spec := testSpec()
	spec.TimeoutSeconds = 600
	app, err := h.d.Deploy(t.Context(), spec, testZip)
	if err != nil {
		t.Fatal(err)
	}

	wantAPIs := []string{
		"WebAppsClient.Get", "PlansClient.Get",
		"PlansClient.BeginCreateOrUpdate", "PlansClient.BeginCreateOrUpdate", // PUT, then one poll
		"WebAppsClient.BeginCreateOrUpdate",
		"WebAppsClient.ListApplicationSettings",
	}
	if got := h.rec.apis(); !slices.Equal(got, wantAPIs) {
		t.Errorf("ARM calls:\n got %q\nwant %q", got, wantAPIs)
	}

	// The plan: Flex Consumption, Linux, tagged.
	plan := h.rec.find("PlansClient.BeginCreateOrUpdate")[0]
	if plan.Path != "/subscriptions/"+testSub+"/resourceGroups/"+testRG+"/providers/Microsoft.Web/serverfarms/"+spec.PlanName {
		t.Errorf("plan PUT path %s", plan.Path)
	}
	for _, c := range []struct {
		want any
		path []string
	}{
		{"westeurope", []string{"location"}},
		{"functionapp", []string{"kind"}},
		{"FC1", []string{"sku", "name"}},
		{"FlexConsumption", []string{"sku", "tier"}},
		{true, []string{"properties", "reserved"}},
		{"lithops-runtime", []string{"tags", "type"}},
		{"0.3.0", []string{"tags", "lithops-version"}},
		{"default", []string{"tags", "lithops-runtime"}},
		{spec.Name, []string{"tags", "lithops-app"}},
		{"ci", []string{"tags", "owner"}},
	} {
		wantJSON(t, plan.Body, c.want, c.path...)
	}

	// The site: custom handler on Flex with the spec's memory, scale,
	// deployment container, settings and tags.
	site := h.rec.find("WebAppsClient.BeginCreateOrUpdate")[0]
	for _, c := range []struct {
		want any
		path []string
	}{
		{"functionapp,linux", []string{"kind"}},
		{"westeurope", []string{"location"}},
		{planID(testRG, spec.PlanName), []string{"properties", "serverFarmId"}},
		{true, []string{"properties", "httpsOnly"}},
		{"custom", []string{"properties", "functionAppConfig", "runtime", "name"}},
		{"1.0", []string{"properties", "functionAppConfig", "runtime", "version"}},
		{4096, []string{"properties", "functionAppConfig", "scaleAndConcurrency", "instanceMemoryMB"}},
		{200, []string{"properties", "functionAppConfig", "scaleAndConcurrency", "maximumInstanceCount"}},
		{"blobContainer", []string{"properties", "functionAppConfig", "deployment", "storage", "type"}},
		{spec.DeploymentContainerURL, []string{"properties", "functionAppConfig", "deployment", "storage", "value"}},
		{"StorageAccountConnectionString", []string{"properties", "functionAppConfig", "deployment", "storage", "authentication", "type"}},
		{appsettings.DeploymentStorage, []string{"properties", "functionAppConfig", "deployment", "storage", "authentication", "storageAccountConnectionStringName"}},
		{"lithops-runtime", []string{"tags", "type"}},
		{"0.3.0", []string{"tags", "lithops-version"}},
		{"default", []string{"tags", "lithops-runtime"}},
		{"4096", []string{"tags", "lithops-memory"}},
	} {
		wantJSON(t, site.Body, c.want, c.path...)
	}
	gotSettings := map[string]string{}
	for _, p := range get(site.Body, "properties", "siteConfig", "appSettings").([]any) {
		m := p.(map[string]any)
		gotSettings[m["name"].(string)] = m["value"].(string)
	}
	wantSettings := maps.Clone(spec.AppSettings)
	wantSettings[appsettings.FunctionTimeout] = "00:10:00"
	if !maps.Equal(gotSettings, wantSettings) {
		t.Errorf("app settings:\n got %v\nwant %v", gotSettings, wantSettings)
	}
	for k := range gotSettings {
		if strings.Contains(strings.ToUpper(k), "SECRET") || strings.HasPrefix(k, "AZURE_CLIENT") {
			t.Errorf("app setting %s looks like an ARM credential", k)
		}
	}
	for _, c := range h.rec.calls() {
		if strings.Contains(c.Raw, testSecret) {
			t.Errorf("%s carries the deployer's client secret", c.API)
		}
	}
	if len(h.cloud.updatedSettings) != 0 {
		t.Errorf("settings rewritten although the site took them: %v", h.cloud.updatedSettings)
	}

	// OneDeploy: zip bytes, content type, bearer token.
	if len(h.kudu.posts) != 1 {
		t.Fatalf("%d OneDeploy POSTs, want 1", len(h.kudu.posts))
	}
	p := h.kudu.posts[0]
	if p.Query != "RemoteBuild=false" || p.ContentType != "application/zip" || p.Auth != "Bearer fake_token" || !bytes.Equal(p.Body, testZip) {
		t.Errorf("OneDeploy POST: query %q, content type %q, auth %q, %d bytes", p.Query, p.ContentType, p.Auth, len(p.Body))
	}
	if bytes.Contains(p.Body, []byte(testSecret)) {
		t.Error("OneDeploy body carries the client secret")
	}
	if !slices.Equal(h.kudu.statusGet, []string{"/api/deployments/dep-1"}) {
		t.Errorf("status polls %q", h.kudu.statusGet)
	}
	// ARM calls ask for the ARM audience of the cloud configuration, the SCM
	// calls for SCMScope.
	if !slices.Contains(h.cred.scopes, SCMScope) {
		t.Errorf("no token requested for the SCM scope %s (scopes %q)", SCMScope, h.cred.scopes)
	}

	want := App{
		Name: spec.Name, ResourceGroup: testRG, PlanName: spec.PlanName, Region: "westeurope",
		RuntimeName: "default", Version: "0.3.0", MemoryMB: 4096, MaxInstances: 200,
		DefaultHostName: spec.Name + "-f3a9.westeurope-01.azurewebsites.net",
		SCMHostName:     scmHost(spec.Name),
	}
	gotApp := *app
	gotApp.Tags = nil
	if fmt.Sprintf("%+v", gotApp) != fmt.Sprintf("%+v", want) {
		t.Errorf("app:\n got %+v\nwant %+v", gotApp, want)
	}
	if app.Tags[TagType] != TagTypeRuntime || app.Tags["owner"] != "ci" {
		t.Errorf("app tags %v", app.Tags)
	}
}

func TestRedeployUpdatesInPlace(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		t.Run(fmt.Sprintf("siteTakesSettings=%v", !ignore), func(t *testing.T) {
			h := newHarness(t)
			spec := testSpec()
			if _, err := h.d.Deploy(t.Context(), spec, testZip); err != nil {
				t.Fatal(err)
			}
			// Out of band: someone adds Application Insights.
			key := testRG + "/" + spec.Name
			h.cloud.mu.Lock()
			h.cloud.settings[key]["APPLICATIONINSIGHTS_CONNECTION_STRING"] = "InstrumentationKey=x"
			h.cloud.ignoreSiteConfigSettings = ignore
			h.cloud.mu.Unlock()

			spec.Version, spec.MemoryMB, spec.MaxInstances = "0.4.0", 512, 0
			spec.AppSettings["LITHOPS_WORKER_PROCESSES"] = "1"
			h.rec.reqs = nil
			h.kudu.statuses = []any{status("dep-2", 4, true, "")}
			app, err := h.d.Deploy(t.Context(), spec, testZip)
			if err != nil {
				t.Fatal(err)
			}
			if app.Version != "0.4.0" || app.MemoryMB != 512 || app.MaxInstances != DefaultMaxInstances {
				t.Errorf("app after redeploy %+v", app)
			}
			site := h.rec.find("WebAppsClient.BeginCreateOrUpdate")
			if len(site) != 1 || len(h.rec.find("PlansClient.BeginCreateOrUpdate")) == 0 {
				t.Fatalf("redeploy calls %q", h.rec.apis())
			}
			wantJSON(t, site[0].Body, 512, "properties", "functionAppConfig", "scaleAndConcurrency", "instanceMemoryMB")
			wantJSON(t, site[0].Body, 100, "properties", "functionAppConfig", "scaleAndConcurrency", "maximumInstanceCount")
			wantJSON(t, site[0].Body, "0.4.0", "tags", "lithops-version")

			h.cloud.mu.Lock()
			got := maps.Clone(h.cloud.settings[key])
			updates := len(h.cloud.updatedSettings)
			h.cloud.mu.Unlock()
			if got["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "" {
				t.Error("redeploy dropped a setting added out of band")
			}
			if got["LITHOPS_WORKER_PROCESSES"] != "1" {
				t.Errorf("LITHOPS_WORKER_PROCESSES = %q after redeploy, want 1", got["LITHOPS_WORKER_PROCESSES"])
			}
			if wantUpdates := map[bool]int{false: 0, true: 1}[ignore]; updates != wantUpdates {
				t.Errorf("%d UpdateApplicationSettings calls, want %d", updates, wantUpdates)
			}
		})
	}
}

func TestInstanceCountAndQuota(t *testing.T) {
	tests := []struct {
		max, memory int
		wantMax     int
		wantWarn    []string // substrings of the WARN lines; nil: no warning
	}{
		{max: 1, memory: 2048, wantMax: 1},
		{max: 8, memory: 4096, wantMax: 8},
		{max: 125, memory: 4096, wantMax: 125},  // 512,000 MB: at the quota
		{max: 1000, memory: 512, wantMax: 1000}, // 512,000 MB
		{max: 126, memory: 4096, wantMax: 126, wantWarn: []string{"quota", "max_instances=126", "memory_mb=4096", "total_mb=516096", "quota_mb=512000"}},
		{max: 1000, memory: 2048, wantMax: 1000, wantWarn: []string{"quota", "total_mb=2048000"}},
		{max: 0, memory: 4096, wantMax: 100}, // default 100 × 4096 = 409,600
		{max: 5000, memory: 512, wantMax: 1000, wantWarn: []string{"adjusted", "requested=5000"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dx%dMB", tt.max, tt.memory), func(t *testing.T) {
			var logs bytes.Buffer
			h := newHarness(t, WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
			spec := testSpec()
			spec.MaxInstances, spec.MemoryMB = tt.max, tt.memory
			app, err := h.d.Deploy(t.Context(), spec, testZip)
			if err != nil {
				t.Fatal(err)
			}
			if app.MaxInstances != tt.wantMax {
				t.Errorf("max instances %d, want %d", app.MaxInstances, tt.wantMax)
			}
			site := h.rec.find("WebAppsClient.BeginCreateOrUpdate")[0]
			wantJSON(t, site.Body, tt.wantMax, "properties", "functionAppConfig", "scaleAndConcurrency", "maximumInstanceCount")
			out := logs.String()
			if tt.wantWarn == nil && out != "" {
				t.Errorf("unexpected warning: %s", out)
			}
			for _, w := range tt.wantWarn {
				if !strings.Contains(out, "level=WARN") || !strings.Contains(out, w) {
					t.Errorf("warnings %q, want one containing %q", out, w)
				}
			}
		})
	}
}

func TestRedeployDropsRefusedLiveSettings(t *testing.T) {
	refused := map[string]string{
		"FUNCTIONS_WORKER_RUNTIME":                     "custom",
		"FUNCTIONS_WORKER_PROCESS_COUNT":               "4",
		"FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED": "true",
		"WEBSITE_DNS_SERVER":                           "168.63.129.16",
		"WEBSITE_SKIP_CONTENTSHARE_VALIDATION":         "1",
		"WEBSITE_VNET_ROUTE_ALL":                       "1",
		"TZ":                                           "Europe/Madrid",
		"Logging:LogLevel:Default":                     "Debug",
	}
	for _, ignore := range []bool{false, true} {
		t.Run(fmt.Sprintf("siteTakesSettings=%v", !ignore), func(t *testing.T) {
			var logs bytes.Buffer
			h := newHarness(t, WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
			spec := testSpec()
			if _, err := h.d.Deploy(t.Context(), spec, testZip); err != nil {
				t.Fatal(err)
			}
			// Out of band: settings Flex refuses, and one it takes.
			key := testRG + "/" + spec.Name
			h.cloud.mu.Lock()
			maps.Copy(h.cloud.settings[key], refused)
			h.cloud.settings[key]["APPLICATIONINSIGHTS_CONNECTION_STRING"] = "InstrumentationKey=x"
			h.cloud.ignoreSiteConfigSettings = ignore
			h.cloud.mu.Unlock()
			h.rec.reqs = nil
			if _, err := h.d.Deploy(t.Context(), spec, testZip); err != nil {
				t.Fatal(err)
			}
			// What was sent back: the site PUT and any settings update.
			var sent []map[string]string
			site := h.rec.find("WebAppsClient.BeginCreateOrUpdate")[0]
			m := map[string]string{}
			for _, p := range get(site.Body, "properties", "siteConfig", "appSettings").([]any) {
				m[p.(map[string]any)["name"].(string)] = p.(map[string]any)["value"].(string)
			}
			sent = append(sent, m)
			h.cloud.mu.Lock()
			sent = append(sent, h.cloud.updatedSettings...)
			live := maps.Clone(h.cloud.settings[key])
			h.cloud.mu.Unlock()
			for _, m := range sent {
				for name := range refused {
					if _, ok := m[name]; ok {
						t.Errorf("refused setting %s sent back to the app", name)
					}
				}
			}
			for name := range refused {
				if _, ok := live[name]; ok {
					t.Errorf("refused setting %s left on the app", name)
				}
				if !strings.Contains(logs.String(), name) {
					t.Errorf("no warning names %s:\n%s", name, logs.String())
				}
			}
			if live["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "" {
				t.Error("a supported setting added out of band was dropped")
			}
			if !strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("no WARN:\n%s", logs.String())
			}
		})
	}
}

func TestDeployRefusesForeignResources(t *testing.T) {
	for _, which := range []string{"site", "plan"} {
		t.Run(which, func(t *testing.T) {
			h := newHarness(t)
			spec := testSpec()
			h.cloud.mu.Lock()
			if which == "site" {
				h.cloud.sites[testRG+"/"+spec.Name] = armappservice.Site{Name: to.Ptr(spec.Name), Tags: map[string]*string{"team": to.Ptr("web")}}
			} else {
				h.cloud.plans[testRG+"/"+spec.PlanName] = armappservice.Plan{Name: to.Ptr(spec.PlanName)}
			}
			h.cloud.mu.Unlock()
			_, err := h.d.Deploy(t.Context(), spec, testZip)
			if !errors.Is(err, ErrNotLithopsRuntime) {
				t.Fatalf("err = %v, want ErrNotLithopsRuntime", err)
			}
			for _, api := range h.rec.apis() {
				if strings.Contains(api, "CreateOrUpdate") || strings.Contains(api, "Update") {
					t.Errorf("foreign %s modified: %s", which, api)
				}
			}
		})
	}
}

func TestSpecValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Spec)
		want   string // substring of the error; "" = valid
		check  func(*testing.T, normalized)
	}{
		{name: "valid", mutate: func(*Spec) {}},
		{name: "memory 1024", mutate: func(s *Spec) { s.MemoryMB = 1024 }, want: "memory 1024 MB of app lithops-default-0123456789: Flex Consumption offers 512, 2048, 4096 MB"},
		{name: "memory 8192", mutate: func(s *Spec) { s.MemoryMB = 8192 }, want: "offers 512, 2048, 4096"},
		{name: "memory default", mutate: func(s *Spec) { s.MemoryMB = 0 }, check: func(t *testing.T, n normalized) {
			if n.MemoryMB != 2048 || n.Tags[TagMemory] != "2048" {
				t.Errorf("memory %d, tag %q", n.MemoryMB, n.Tags[TagMemory])
			}
		}},
		{name: "memory 512", mutate: func(s *Spec) { s.MemoryMB = 512 }},
		{name: "max instances 8", mutate: func(s *Spec) { s.MaxInstances = 8 }, check: func(t *testing.T, n normalized) {
			if n.MaxInstances != 8 || n.clampedFrom != 0 {
				t.Errorf("max instances %d (clamped from %d), want 8 as asked", n.MaxInstances, n.clampedFrom)
			}
		}},
		{name: "max instances 1", mutate: func(s *Spec) { s.MaxInstances = 1 }, check: func(t *testing.T, n normalized) {
			if n.MaxInstances != 1 || n.clampedFrom != 0 {
				t.Errorf("max instances %d (clamped from %d), want 1 as asked", n.MaxInstances, n.clampedFrom)
			}
		}},
		{name: "max instances 1000", mutate: func(s *Spec) { s.MaxInstances = 1000 }, check: func(t *testing.T, n normalized) {
			if n.MaxInstances != 1000 || n.clampedFrom != 0 {
				t.Errorf("max instances %d (clamped from %d), want 1000", n.MaxInstances, n.clampedFrom)
			}
		}},
		{name: "max instances high", mutate: func(s *Spec) { s.MaxInstances = 5000 }, check: func(t *testing.T, n normalized) {
			if n.MaxInstances != 1000 {
				t.Errorf("max instances %d, want 1000", n.MaxInstances)
			}
		}},
		{name: "max instances default", mutate: func(s *Spec) { s.MaxInstances = 0 }, check: func(t *testing.T, n normalized) {
			if n.MaxInstances != 100 || n.clampedFrom != 0 {
				t.Errorf("max instances %d, want 100", n.MaxInstances)
			}
		}},
		{name: "max instances negative", mutate: func(s *Spec) { s.MaxInstances = -1 }, want: "negative"},
		{name: "no resource group", mutate: func(s *Spec) { s.ResourceGroup = "" }, want: "resource group is not set"},
		{name: "bad resource group", mutate: func(s *Spec) { s.ResourceGroup = "a/b" }, want: "resource group"},
		{name: "no region", mutate: func(s *Spec) { s.Region = "" }, want: "region is not set"},
		{name: "no app name", mutate: func(s *Spec) { s.Name = "" }, want: "app name"},
		{name: "bad app name", mutate: func(s *Spec) { s.Name = "-x_y" }, want: "app name \"-x_y\""},
		{name: "long app name", mutate: func(s *Spec) { s.Name = strings.Repeat("a", 61) }, want: "2–60"},
		{name: "no plan", mutate: func(s *Spec) { s.PlanName = "" }, want: "plan name"},
		{name: "no runtime", mutate: func(s *Spec) { s.RuntimeName = "" }, want: "runtime name"},
		{name: "no version", mutate: func(s *Spec) { s.Version = "" }, want: "version"},
		{name: "negative timeout", mutate: func(s *Spec) { s.TimeoutSeconds = -5 }, want: "timeout"},
		{name: "timeout setting", mutate: func(s *Spec) { s.TimeoutSeconds = 90000 }, check: func(t *testing.T, n normalized) {
			if got := n.AppSettings[appsettings.FunctionTimeout]; got != "1.01:00:00" {
				t.Errorf("timeout setting %q", got)
			}
		}},
		{name: "timeout setting given", mutate: func(s *Spec) { s.TimeoutSeconds = 60; s.AppSettings[appsettings.FunctionTimeout] = "-1" }, check: func(t *testing.T, n normalized) {
			if got := n.AppSettings[appsettings.FunctionTimeout]; got != "-1" {
				t.Errorf("timeout setting %q, want the spec's -1", got)
			}
		}},
		{name: "no container", mutate: func(s *Spec) { s.DeploymentContainerURL = "" }, want: "deployment container URL is not set"},
		{name: "http container", mutate: func(s *Spec) { s.DeploymentContainerURL = "http://acct.blob.core.windows.net/c" }, want: "want https://"},
		{name: "container with blob path", mutate: func(s *Spec) { s.DeploymentContainerURL = "https://acct.blob.core.windows.net/c/x.zip" }, want: "want https://"},
		{name: "container with SAS", mutate: func(s *Spec) { s.DeploymentContainerURL = "https://acct.blob.core.windows.net/c?sig=x" }, want: "without query"},
		{name: "no deployment storage", mutate: func(s *Spec) { delete(s.AppSettings, appsettings.DeploymentStorage) }, want: appsettings.DeploymentStorage},
		{name: "no host storage", mutate: func(s *Spec) { delete(s.AppSettings, "AzureWebJobsStorage") }, want: "AzureWebJobsStorage"},
		{name: "identity host storage", mutate: func(s *Spec) {
			delete(s.AppSettings, "AzureWebJobsStorage")
			s.AppSettings["AzureWebJobsStorage__accountName"] = "acct"
		}},
		{name: "worker runtime", mutate: func(s *Spec) { s.AppSettings["FUNCTIONS_WORKER_RUNTIME"] = "custom" }, want: "FUNCTIONS_WORKER_RUNTIME of app lithops-default-0123456789 is not supported on Flex"},
		{name: "run from package", mutate: func(s *Spec) { s.AppSettings["WEBSITE_RUN_FROM_PACKAGE"] = "1" }, want: "not supported on Flex"},
		{name: "content share", mutate: func(s *Spec) { s.AppSettings["website_contentshare"] = "x" }, want: "not supported on Flex"},
		{name: "worker process count", mutate: func(s *Spec) { s.AppSettings["FUNCTIONS_WORKER_PROCESS_COUNT"] = "2" }, want: "FUNCTIONS_WORKER_PROCESS_COUNT of app lithops-default-0123456789 is not supported on Flex"},
		{name: "dynamic concurrency", mutate: func(s *Spec) { s.AppSettings["FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED"] = "true" }, want: "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED"},
		{name: "dns server", mutate: func(s *Spec) { s.AppSettings["WEBSITE_DNS_SERVER"] = "168.63.129.16" }, want: "WEBSITE_DNS_SERVER"},
		{name: "skip content share validation", mutate: func(s *Spec) { s.AppSettings["WEBSITE_SKIP_CONTENTSHARE_VALIDATION"] = "1" }, want: "WEBSITE_SKIP_CONTENTSHARE_VALIDATION"},
		{name: "vnet route all", mutate: func(s *Spec) { s.AppSettings["WEBSITE_VNET_ROUTE_ALL"] = "1" }, want: "WEBSITE_VNET_ROUTE_ALL"},
		{name: "TZ", mutate: func(s *Spec) { s.AppSettings["TZ"] = "Europe/Madrid" }, want: "app setting TZ of app"},
		{name: "time zone", mutate: func(s *Spec) { s.AppSettings["WEBSITE_TIME_ZONE"] = "UTC" }, want: "WEBSITE_TIME_ZONE"},
		{name: "colon", mutate: func(s *Spec) { s.AppSettings["Logging:LogLevel:Default"] = "Debug" }, want: "Logging:LogLevel:Default"},
		{name: "double underscore is fine", mutate: func(s *Spec) { s.AppSettings["Logging__LogLevel__Default"] = "Debug" }},
		{name: "TZ prefix is fine", mutate: func(s *Spec) { s.AppSettings["TZDATA_DIR"] = "/x" }},
		{name: "client secret", mutate: func(s *Spec) { s.AppSettings["AZURE_CLIENT_SECRET"] = testSecret }, want: "looks like an ARM credential"},
		{name: "lithops client secret", mutate: func(s *Spec) { s.AppSettings["LITHOPS_AZURE_CLIENT_SECRET"] = testSecret }, want: "looks like an ARM credential"},
		{name: "certificate", mutate: func(s *Spec) { s.AppSettings["AZURE_CLIENT_CERTIFICATE_PATH"] = "/x.pem" }, want: "looks like an ARM credential"},
		{name: "lithops tags win", mutate: func(*Spec) {}, check: func(t *testing.T, n normalized) {
			if n.Tags[TagType] != TagTypeRuntime || n.Tags[TagVersion] != "0.3.0" || n.Tags[TagRuntime] != "default" || n.Tags["owner"] != "ci" {
				t.Errorf("tags %v", n.Tags)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := testSpec()
			spec.AppSettings = maps.Clone(spec.AppSettings)
			tt.mutate(&spec)
			n, err := spec.validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tt.check != nil {
					tt.check(t, n)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("err = %v, want ErrInvalidSpec containing %q", err, tt.want)
			}
			// Through Deploy: rejected before any request.
			h := newHarness(t)
			if _, err := h.d.Deploy(t.Context(), spec, testZip); !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("Deploy err = %v", err)
			}
			if n := len(h.rec.calls()); n != 0 {
				t.Errorf("%d ARM requests sent for an invalid spec", n)
			}
		})
	}
}

func TestNewAndArgumentChecks(t *testing.T) {
	if _, err := New("", &azfake.TokenCredential{}); !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "subscription") {
		t.Errorf("New without subscription: %v", err)
	}
	if _, err := New(testSub, nil); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("New without credential: %v", err)
	}
	if _, err := New(testSub, &azfake.TokenCredential{}, WithSCMEndpoint("not a url")); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("New with bad SCM endpoint: %v", err)
	}
	h := newHarness(t)
	ctx := t.Context()
	if _, err := h.d.List(ctx, ""); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("List without resource group: %v", err)
	}
	if err := h.d.Delete(ctx, testRG, ""); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("Delete without app: %v", err)
	}
	if _, err := h.d.FunctionKey(ctx, "", "app"); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("FunctionKey without resource group: %v", err)
	}
	if _, err := h.d.Deploy(ctx, testSpec(), []byte("not a zip")); !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "not a zip") {
		t.Errorf("Deploy of a non-zip: %v", err)
	}
	if n := len(h.rec.calls()); n != 0 {
		t.Errorf("%d ARM requests sent for invalid arguments", n)
	}
}

func TestDeploymentPolling(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(*kudu)
		timeout    time.Duration
		wantErr    []error  // errors.Is targets
		wantMsg    []string // substrings of the error
		wantPolls  []string // exact status paths polled, when set
		wantPosts  int
		wantDeploy *DeploymentError
	}{
		{
			name: "success after progress",
			setup: func(k *kudu) {
				k.statuses = []any{http.StatusNotFound, status("dep-1", 0, false, "Pending"), status("dep-1", 1, false, "Building"),
					status("dep-1", 2, false, "Deploying"), status("dep-1", 4, false, "Finishing"), status("dep-1", 4, true, "Deployment successful.")}
			},
			wantPolls: slices.Repeat([]string{"/api/deployments/dep-1"}, 6),
			wantPosts: 1,
		},
		{
			name: "id as plain text",
			setup: func(k *kudu) {
				k.acceptBody = "0b1e5c2f-7d7a-4a8e-9e1b-2a3f4c5d6e7f\n"
				k.statuses = []any{status("0b1e5c2f-7d7a-4a8e-9e1b-2a3f4c5d6e7f", 4, true, "")}
			},
			wantPolls: []string{"/api/deployments/0b1e5c2f-7d7a-4a8e-9e1b-2a3f4c5d6e7f"},
			wantPosts: 1,
		},
		{
			name: "id as JSON object",
			setup: func(k *kudu) {
				k.acceptBody = `{"id":"abc123","status":0}`
				k.statuses = []any{status("abc123", 4, true, "")}
			},
			wantPolls: []string{"/api/deployments/abc123"},
			wantPosts: 1,
		},
		{
			name: "Location header only",
			setup: func(k *kudu) {
				k.acceptBody = ""
				k.accept = func(h http.Header) { h.Set("Location", "/api/deployments/latest?deployer=OneDeploy&time=2026-01-01") }
			},
			wantPolls: []string{"/api/deployments/latest"},
			wantPosts: 1,
		},
		{
			name: "foreign Location not followed",
			setup: func(k *kudu) {
				k.acceptBody = ""
				k.accept = func(h http.Header) { h.Set("Location", "https://collector.example/api/deployments/x") }
			},
			wantPolls: []string{"/api/deployments/latest"},
			wantPosts: 1,
		},
		{
			name:      "upload retried after 503 and 409",
			setup:     func(k *kudu) { k.postCodes = []int{http.StatusServiceUnavailable, http.StatusConflict} },
			wantPosts: 3,
		},
		{
			name:      "upload unauthorized",
			setup:     func(k *kudu) { k.postCodes = []int{http.StatusForbidden} },
			wantMsg:   []string{"POST", "/api/publish", "403", "Website Contributor"},
			wantPosts: 1,
		},
		{
			name: "failed with the service's message",
			setup: func(k *kudu) {
				fail := status("dep-1", 3, true, "Failed to deploy package: lithops_handler/function.json is invalid")
				fail["log_url"] = "__BASE__/api/deployments/dep-1/log"
				k.statuses = []any{status("dep-1", 2, false, "Deploying"), fail}
				k.log = []logEntry{{Message: "Fetching changes."}, {Message: "Extracting package"}, {Message: "Sync triggers failed: binding type queueTriger not registered", Type: 2}}
			},
			wantErr:    []error{ErrDeploymentFailed},
			wantMsg:    []string{"deployment dep-1 failed (status 3)", "function.json is invalid", "queueTriger not registered", "/api/deployments/dep-1/log"},
			wantPosts:  1,
			wantDeploy: &DeploymentError{ID: "dep-1", Status: 3},
		},
		{
			name:       "cancelled",
			setup:      func(k *kudu) { k.statuses = []any{status("dep-1", -1, true, "Cancelled by a newer deployment")} },
			wantErr:    []error{ErrDeploymentCancelled},
			wantMsg:    []string{"cancelled (status -1)", "newer deployment"},
			wantPosts:  1,
			wantDeploy: &DeploymentError{ID: "dep-1", Status: -1},
		},
		{
			name:       "partial",
			setup:      func(k *kudu) { k.statuses = []any{status("dep-1", 6, true, "Some triggers were not synced")} },
			wantErr:    []error{ErrDeploymentFailed},
			wantMsg:    []string{"partially succeeded (status 6)", "triggers were not synced"},
			wantPosts:  1,
			wantDeploy: &DeploymentError{ID: "dep-1", Status: 6},
		},
		{
			name:      "timeout",
			setup:     func(k *kudu) { k.statuses = []any{status("dep-1", 1, false, "Building")} },
			timeout:   150 * time.Millisecond,
			wantErr:   []error{ErrDeploymentTimeout, context.DeadlineExceeded},
			wantMsg:   []string{"deployment timed out after 150ms", "last status 1 building", "/api/deployments/dep-1"},
			wantPosts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []Option
			if tt.timeout > 0 {
				opts = append(opts, WithDeployTimeout(tt.timeout))
			}
			h := newHarness(t, opts...)
			tt.setup(h.kudu)
			for _, s := range h.kudu.statuses {
				if m, ok := s.(map[string]any); ok {
					if u, ok := m["log_url"].(string); ok {
						m["log_url"] = strings.Replace(u, "__BASE__", h.srv.URL, 1)
					}
				}
			}
			start := time.Now()
			_, err := h.d.Deploy(t.Context(), testSpec(), testZip)
			t.Logf("Deploy: %v", err)
			if elapsed := time.Since(start); elapsed > 8*time.Second {
				t.Errorf("Deploy took %v", elapsed)
			}
			if tt.wantErr == nil && tt.wantMsg == nil {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil {
				t.Fatal("Deploy succeeded, want an error")
			}
			for _, target := range tt.wantErr {
				if !errors.Is(err, target) {
					t.Errorf("err = %v, want errors.Is %v", err, target)
				}
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("err = %q, want it to contain %q", err, m)
				}
			}
			if tt.wantDeploy != nil {
				var de *DeploymentError
				if !errors.As(err, &de) || de.ID != tt.wantDeploy.ID || de.Status != tt.wantDeploy.Status || de.App != testSpec().Name {
					t.Errorf("DeploymentError = %+v, want id %s status %d", de, tt.wantDeploy.ID, tt.wantDeploy.Status)
				}
			}
			h.kudu.mu.Lock()
			defer h.kudu.mu.Unlock()
			if len(h.kudu.posts) != tt.wantPosts {
				t.Errorf("%d POSTs, want %d", len(h.kudu.posts), tt.wantPosts)
			}
			for _, p := range h.kudu.posts {
				if !bytes.Equal(p.Body, testZip) || p.Auth != "Bearer fake_token" {
					t.Errorf("POST lost the zip or the token: %d bytes, auth %q", len(p.Body), p.Auth)
				}
			}
			for _, a := range h.kudu.auths {
				if a != "Bearer fake_token" {
					t.Errorf("status GET with Authorization %q", a)
				}
			}
			if tt.wantPolls != nil && !slices.Equal(h.kudu.statusGet, tt.wantPolls) {
				t.Errorf("polled %q, want %q", h.kudu.statusGet, tt.wantPolls)
			}
		})
	}
}

// sleeps replaces the deployer's sleep: it records the durations asked for
// and waits only a millisecond.
func sleeps(d *Deployer) *[]time.Duration {
	var mu sync.Mutex
	var got []time.Duration
	d.sleep = func(ctx context.Context, t time.Duration) error {
		mu.Lock()
		got = append(got, t)
		mu.Unlock()
		return sleepCtx(ctx, time.Millisecond)
	}
	return &got
}

func TestStatusPollInterval(t *testing.T) {
	running := status("dep-1", 2, false, "Deploying")
	done := status("dep-1", 4, true, "")
	tests := []struct {
		name       string
		opts       []Option
		retryAfter string
		want       []time.Duration
	}{
		{name: "default 1 s", want: []time.Duration{time.Second, time.Second}},
		{name: "Retry-After seconds", retryAfter: "3", want: []time.Duration{3 * time.Second, 3 * time.Second}},
		{name: "Retry-After over the option", opts: []Option{WithPollInterval(2 * time.Second)}, retryAfter: "4", want: []time.Duration{4 * time.Second, 4 * time.Second}},
		{name: "option", opts: []Option{WithPollInterval(2 * time.Second)}, want: []time.Duration{2 * time.Second, 2 * time.Second}},
		{name: "Retry-After capped", retryAfter: "86400", want: []time.Duration{time.Minute, time.Minute}},
		{name: "Retry-After unparsable", retryAfter: "soon", want: []time.Duration{time.Second, time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			d, err := New(testSub, h.cred, append([]Option{
				WithClientOptions(&arm.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: h.rec}}),
				WithSCMEndpoint(h.srv.URL), WithHTTPClient(h.srv.Client()),
			}, tt.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			got := sleeps(d)
			h.kudu.statuses = []any{running, running, done}
			h.kudu.retryAfter = tt.retryAfter
			if _, err := d.Deploy(t.Context(), testSpec(), testZip); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(*got, tt.want) {
				t.Errorf("slept %v between status polls, want %v", *got, tt.want)
			}
		})
	}
}

func TestStatusPollRetryAfterOnTheWire(t *testing.T) {
	h := newHarness(t)
	h.kudu.statuses = []any{status("dep-1", 2, false, "Deploying"), status("dep-1", 4, true, "")}
	h.kudu.retryAfter = "1"
	if _, err := h.d.Deploy(t.Context(), testSpec(), testZip); err != nil {
		t.Fatal(err)
	}
	h.kudu.mu.Lock()
	defer h.kudu.mu.Unlock()
	if n := len(h.kudu.statusTimes); n != 2 {
		t.Fatalf("%d status polls, want 2", n)
	}
	if gap := h.kudu.statusTimes[1].Sub(h.kudu.statusTimes[0]); gap < 500*time.Millisecond {
		t.Errorf("polls %v apart with Retry-After: 1", gap)
	}
}

func TestStatusRecordGone(t *testing.T) {
	tests := []struct {
		name     string
		statuses []any
		wantGets int
	}{
		{name: "404 after progress", statuses: []any{status("dep-1", 1, false, "Building"), status("dep-1", 2, false, "Deploying"), http.StatusNotFound}, wantGets: 3},
		{name: "404 from the start", statuses: []any{http.StatusNotFound}, wantGets: 1 + statusNotFoundGrace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := newHarness(t, WithDeployTimeout(time.Minute), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			sleeps(h.d)
			h.kudu.statuses = tt.statuses
			start := time.Now()
			app, err := h.d.Deploy(t.Context(), testSpec(), testZip)
			if err != nil {
				t.Fatalf("Deploy: %v", err)
			}
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("Deploy took %v: waited for the deploy timeout", elapsed)
			}
			if !app.DeployUnconfirmed {
				t.Error("app.DeployUnconfirmed = false, want true: the outcome is unknown")
			}
			if n := len(h.kudu.statusGet); n != tt.wantGets {
				t.Errorf("%d status polls, want %d", n, tt.wantGets)
			}
			if !strings.Contains(logs.String(), "level=INFO") || !strings.Contains(logs.String(), "deployment record gone") {
				t.Errorf("log does not report the vanished record at INFO:\n%s", logs.String())
			}
		})
	}
	// A confirmed deployment says so.
	h := newHarness(t)
	app, err := h.d.Deploy(t.Context(), testSpec(), testZip)
	if err != nil || app.DeployUnconfirmed {
		t.Errorf("confirmed deployment: %+v, %v", app, err)
	}
}

func TestDeployHonoursCallerContext(t *testing.T) {
	h := newHarness(t, WithDeployTimeout(time.Minute))
	h.kudu.statuses = []any{status("dep-1", 1, false, "Building")}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := h.d.Deploy(ctx, testSpec(), testZip)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrDeploymentTimeout) {
		t.Fatalf("err = %v, want the caller's deadline, not the deploy timeout", err)
	}
}

func TestDeployTokenError(t *testing.T) {
	h := newHarness(t, WithSCMTokenScope("https://example.invalid/.default"))
	h.cred.failScope = "https://example.invalid/.default"
	_, err := h.d.Deploy(t.Context(), testSpec(), testZip)
	if err == nil || !strings.Contains(err.Error(), "AADSTS500011") || !strings.Contains(err.Error(), "https://example.invalid/.default") {
		t.Fatalf("err = %v, want the token error naming the scope", err)
	}
	if len(h.rec.find("WebAppsClient.BeginCreateOrUpdate")) != 1 {
		t.Errorf("ARM calls %q, want the site created before the upload", h.rec.apis())
	}
	if len(h.kudu.posts) != 0 {
		t.Error("OneDeploy POST sent without a token")
	}
}

func TestSCMTokenAudience(t *testing.T) {
	const (
		appSvc  = "Bearer tok-appservice"
		classic = "Bearer tok-classic-arm"
		custom  = "Bearer tok-custom"
	)
	tests := []struct {
		name        string
		opts        []Option
		rejectPost  []string
		rejectGet   []string
		wantErr     string   // substring; "" = success
		wantPosts   []string // Authorization of every POST
		wantGetAuth string   // Authorization of the last status GET
	}{
		{name: "App Service audience", wantPosts: []string{appSvc}, wantGetAuth: appSvc},
		{name: "upload falls back once", rejectPost: []string{appSvc}, wantPosts: []string{appSvc, classic}, wantGetAuth: classic},
		{name: "status poll falls back once", rejectGet: []string{appSvc}, wantPosts: []string{appSvc}, wantGetAuth: classic},
		{name: "both refused", rejectPost: []string{appSvc, classic}, wantPosts: []string{appSvc, classic}, wantErr: "401"},
		{name: "override has no fallback", opts: []Option{WithSCMTokenScope("https://custom.example/.default")},
			rejectPost: []string{custom}, wantPosts: []string{custom}, wantErr: "https://custom.example/.default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.opts...)
			h.cred.tokens = map[string]string{
				"https://appservice.azure.com/.default":         "tok-appservice",
				"https://management.core.windows.net//.default": "tok-classic-arm",
				"https://custom.example/.default":               "tok-custom",
			}
			h.kudu.rejectPost, h.kudu.rejectGet = tt.rejectPost, tt.rejectGet
			_, err := h.d.Deploy(t.Context(), testSpec(), testZip)
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			h.kudu.mu.Lock()
			defer h.kudu.mu.Unlock()
			var posts []string
			for _, p := range h.kudu.posts {
				posts = append(posts, p.Auth)
			}
			if !slices.Equal(posts, tt.wantPosts) {
				t.Errorf("POSTs with %q, want %q", posts, tt.wantPosts)
			}
			if tt.wantGetAuth != "" {
				if n := len(h.kudu.auths); n == 0 || h.kudu.auths[n-1] != tt.wantGetAuth {
					t.Errorf("status GETs with %q, want the last with %q", h.kudu.auths, tt.wantGetAuth)
				}
			}
		})
	}
	if SCMScope != "https://appservice.azure.com/.default" || SCMFallbackScope != "https://management.core.windows.net//.default" {
		t.Errorf("SCMScope %q, SCMFallbackScope %q", SCMScope, SCMFallbackScope)
	}
}

func TestList(t *testing.T) {
	h := newHarness(t)
	h.cloud.pageSize = 2
	spec := testSpec()
	if _, err := h.d.Deploy(t.Context(), spec, testZip); err != nil {
		t.Fatal(err)
	}
	spec2 := testSpec()
	spec2.Name, spec2.PlanName, spec2.RuntimeName, spec2.MemoryMB, spec2.MaxInstances = "lithops-big-aaaa", "lithops-big-aaaa-plan", "big", 2048, 1000
	if _, err := h.d.Deploy(t.Context(), spec2, testZip); err != nil {
		t.Fatal(err)
	}
	h.cloud.mu.Lock()
	// Not runtimes: an untagged function app, a tagged web app, another type.
	h.cloud.sites[testRG+"/user-func"] = armappservice.Site{Name: to.Ptr("user-func"), Kind: to.Ptr("functionapp,linux")}
	h.cloud.sites[testRG+"/lithops-web"] = armappservice.Site{Name: to.Ptr("lithops-web"), Kind: to.Ptr("app,linux"), Tags: map[string]*string{TagType: to.Ptr(TagTypeRuntime)}}
	h.cloud.sites[testRG+"/other"] = armappservice.Site{Name: to.Ptr("other"), Kind: to.Ptr("functionapp"), Tags: map[string]*string{TagType: to.Ptr("cache")}}
	// A runtime whose functionAppConfig is not reported: memory from the tag,
	// tag names in another case.
	h.cloud.sites[testRG+"/lithops-old-bbbb"] = armappservice.Site{Name: to.Ptr("lithops-old-bbbb"), Kind: to.Ptr("functionapp,linux"),
		Tags: map[string]*string{"Type": to.Ptr(TagTypeRuntime), "Lithops-Version": to.Ptr("0.1.0"), TagRuntime: to.Ptr("old"), TagMemory: to.Ptr("512")}}
	h.cloud.mu.Unlock()

	apps, err := h.d.List(t.Context(), testRG)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Name, Runtime, Version string
		Mem, Max               int
		SCM                    string
	}
	var got []row
	for _, a := range apps {
		got = append(got, row{a.Name, a.RuntimeName, a.Version, a.MemoryMB, a.MaxInstances, a.SCMHostName})
	}
	want := []row{
		{"lithops-big-aaaa", "big", "0.3.0", 2048, 1000, scmHost("lithops-big-aaaa")},
		{"lithops-default-0123456789", "default", "0.3.0", 4096, 200, scmHost("lithops-default-0123456789")},
		{"lithops-old-bbbb", "old", "0.1.0", 512, 0, ""},
	}
	if !slices.Equal(got, want) {
		t.Errorf("List:\n got %+v\nwant %+v", got, want)
	}
	if apps[0].PlanName != "lithops-big-aaaa-plan" || apps[0].ResourceGroup != testRG {
		t.Errorf("plan %q, resource group %q", apps[0].PlanName, apps[0].ResourceGroup)
	}

	empty, err := h.d.List(t.Context(), "other-rg")
	if err != nil || len(empty) != 0 {
		t.Errorf("List of an empty group: %v, %v", empty, err)
	}
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(*testing.T, *harness) // after a deploy of testSpec
		wantErr   error
		wantAPIs  []string // delete calls expected, in order
		wantSites int
		wantPlans int
	}{
		{
			name:     "site then plan",
			setup:    func(*testing.T, *harness) {},
			wantAPIs: []string{"WebAppsClient.Delete", "PlansClient.Delete"},
		},
		{
			name: "both answer 404",
			setup: func(_ *testing.T, h *harness) {
				h.cloud.siteDeleteNotFound, h.cloud.planDeleteNotFound = true, true
			},
			wantAPIs:  []string{"WebAppsClient.Delete", "PlansClient.Delete"},
			wantPlans: 1,
		},
		{
			name: "plan already gone",
			setup: func(_ *testing.T, h *harness) {
				delete(h.cloud.plans, testRG+"/"+testSpec().PlanName)
			},
			wantAPIs: []string{"WebAppsClient.Delete"},
		},
		{
			name: "site already gone, plan found by tag",
			setup: func(_ *testing.T, h *harness) {
				delete(h.cloud.sites, testRG+"/"+testSpec().Name)
				h.cloud.plans[testRG+"/unrelated-plan"] = armappservice.Plan{Name: to.Ptr("unrelated-plan"), Tags: map[string]*string{TagType: to.Ptr(TagTypeRuntime), TagApp: to.Ptr("another-app")}}
			},
			wantAPIs:  []string{"PlansClient.Delete"},
			wantPlans: 1,
		},
		{
			name: "nothing left",
			setup: func(_ *testing.T, h *harness) {
				h.cloud.sites = map[string]armappservice.Site{}
				h.cloud.plans = map[string]armappservice.Plan{}
			},
		},
		{
			name: "foreign site",
			setup: func(_ *testing.T, h *harness) {
				s := h.cloud.sites[testRG+"/"+testSpec().Name]
				s.Tags = map[string]*string{"team": to.Ptr("web")}
				h.cloud.sites[testRG+"/"+testSpec().Name] = s
			},
			wantErr:   ErrNotLithopsRuntime,
			wantSites: 1, wantPlans: 1,
		},
		{
			name: "foreign plan kept",
			setup: func(_ *testing.T, h *harness) {
				p := h.cloud.plans[testRG+"/"+testSpec().PlanName]
				p.Tags = nil
				h.cloud.plans[testRG+"/"+testSpec().PlanName] = p
			},
			wantAPIs:  []string{"WebAppsClient.Delete"},
			wantPlans: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if _, err := h.d.Deploy(t.Context(), testSpec(), testZip); err != nil {
				t.Fatal(err)
			}
			h.cloud.mu.Lock()
			tt.setup(t, h)
			h.cloud.mu.Unlock()
			h.rec.reqs = nil

			err := h.d.Delete(t.Context(), testRG, testSpec().Name)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var deletes []string
			for _, api := range h.rec.apis() {
				if strings.HasSuffix(api, ".Delete") {
					deletes = append(deletes, api)
				}
			}
			if !slices.Equal(deletes, tt.wantAPIs) {
				t.Errorf("deletes %q, want %q (all calls %q)", deletes, tt.wantAPIs, h.rec.apis())
			}
			h.cloud.mu.Lock()
			if len(h.cloud.sites) != tt.wantSites || len(h.cloud.plans) != tt.wantPlans {
				t.Errorf("left %d sites and %d plans, want %d and %d", len(h.cloud.sites), len(h.cloud.plans), tt.wantSites, tt.wantPlans)
			}
			for _, o := range h.cloud.deleteOptions {
				if o == nil || o.DeleteEmptyServerFarm == nil || *o.DeleteEmptyServerFarm {
					t.Errorf("site deleted with %+v, want deleteEmptyServerFarm=false", o)
				}
			}
			h.cloud.mu.Unlock()
			// Idempotent.
			if tt.wantErr == nil {
				if err := h.d.Delete(t.Context(), testRG, testSpec().Name); err != nil {
					t.Errorf("second Delete: %v", err)
				}
			}
		})
	}
}

func TestFunctionKey(t *testing.T) {
	tests := []struct {
		name string
		keys *armappservice.HostKeys
		want string
		err  string
	}{
		{name: "default", keys: &armappservice.HostKeys{MasterKey: to.Ptr("master"), FunctionKeys: map[string]*string{"default": to.Ptr("k-default"), "a": to.Ptr("k-a")}}, want: "k-default"},
		{name: "first by name", keys: &armappservice.HostKeys{MasterKey: to.Ptr("master"), FunctionKeys: map[string]*string{"zeta": to.Ptr("k-z"), "beta": to.Ptr("k-b")}}, want: "k-b"},
		{name: "master only", keys: &armappservice.HostKeys{MasterKey: to.Ptr("master")}, err: "no function key yet"},
		{name: "app missing", err: "list host keys of app lithops-default-0123456789 in resource group lithops-rg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.keys != nil {
				h.cloud.keys[testRG+"/"+testSpec().Name] = *tt.keys
			}
			got, err := h.d.FunctionKey(t.Context(), testRG, testSpec().Name)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("key %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestFunctionKeyWaitsForTheHost(t *testing.T) {
	keys := armappservice.HostKeys{FunctionKeys: map[string]*string{"default": to.Ptr("k-default")}}
	tests := []struct {
		name      string
		errors    []int // answers before the keys
		always    int   // then this answer for ever
		keyWait   time.Duration
		wantErr   string
		wantCalls int // 0: don't check
		wantSleep []time.Duration
	}{
		{name: "400 then keys", errors: []int{400, 400, 400}, wantCalls: 4, wantSleep: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
		{name: "5xx, 404, 409, 429 then keys", errors: []int{503, 500, 404, 409, 429, 502}, wantCalls: 7,
			wantSleep: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second}},
		{name: "403 fails at once", errors: []int{403}, wantErr: "403", wantCalls: 1},
		{name: "401 fails at once", errors: []int{401, 401}, wantErr: "401", wantCalls: 1},
		{name: "bounded", always: 503, keyWait: 100 * time.Millisecond, wantErr: "503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, WithKeyWait(cmp.Or(tt.keyWait, time.Minute)))
			slept := sleeps(h.d)
			h.cloud.keys[testRG+"/"+testSpec().Name] = keys
			h.cloud.keyErrors, h.cloud.keyAlways = tt.errors, tt.always
			start := time.Now()
			key, err := h.d.FunctionKey(t.Context(), testRG, testSpec().Name)
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("FunctionKey took %v", elapsed)
			}
			if tt.wantErr == "" {
				if err != nil || key != "k-default" {
					t.Fatalf("key %q, %v", key, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			} else {
				var re *azcore.ResponseError
				if !errors.As(err, &re) {
					t.Errorf("err = %v does not wrap the ARM response error", err)
				}
			}
			if tt.wantCalls != 0 && h.cloud.keyCalls != tt.wantCalls {
				t.Errorf("%d listkeys calls, want %d", h.cloud.keyCalls, tt.wantCalls)
			}
			if tt.wantSleep != nil && !slices.Equal(*slept, tt.wantSleep) {
				t.Errorf("backoff %v, want %v", *slept, tt.wantSleep)
			}
		})
	}
	t.Run("caller's context", func(t *testing.T) {
		h := newHarness(t, WithKeyWait(time.Minute))
		h.cloud.keyAlways = 503
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := h.d.FunctionKey(ctx, testRG, testSpec().Name)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Errorf("err = %v after %v, want the caller's deadline", err, time.Since(start))
		}
	})
}

func TestCredential(t *testing.T) {
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "") // restored after the test
	os.Unsetenv("AZURE_TOKEN_CREDENTIALS")
	c, err := Credential("tenant-1", "client-1", "secret-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*azidentity.ClientSecretCredential); !ok {
		t.Errorf("all three set: %T, want *azidentity.ClientSecretCredential", c)
	}
	c, err = Credential("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*azidentity.DefaultAzureCredential); !ok {
		t.Errorf("none set: %T, want *azidentity.DefaultAzureCredential", c)
	}
	c, err = Credential("tenant-1", "client-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*azidentity.DefaultAzureCredential); !ok {
		t.Errorf("no secret: %T, want *azidentity.DefaultAzureCredential", c)
	}
	if _, err := Credential("", "client-1", "secret-1"); !errors.Is(err, ErrInvalidSpec) || strings.Contains(err.Error(), "secret-1") {
		t.Errorf("secret without tenant: %v", err)
	}
}

func TestTimeSpan(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second:              "00:00:30",
		10 * time.Minute:              "00:10:00",
		2*time.Hour + 5*time.Second:   "02:00:05",
		25*time.Hour + 61*time.Second: "1.01:01:01",
	} {
		if got := timeSpan(d); got != want {
			t.Errorf("timeSpan(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestDeploymentContainerName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	names := []string{
		"ab", "lithops-default-2048-0123456789", "lithops-default-4096-0123456789", "lithops-default-512-0123456789",
		"Lithops-Mixed-Case", "a--b", "a-b", strings.Repeat("x", 60), strings.Repeat("x", 59) + "y",
		strings.Repeat("ab-", 19) + "abc", "x", "9", "-", "",
	}
	for i := range 200 {
		names = append(names, fmt.Sprintf("lithops-rt%d-%d-%010x", i%7, []int{512, 2048, 4096}[i%3], i*7919))
	}
	seen := map[string]string{}
	for _, n := range names {
		c := DeploymentContainerName(n)
		if !valid.MatchString(c) || strings.Contains(c, "--") || len(c) > 63 {
			t.Errorf("DeploymentContainerName(%q) = %q: not a valid container name", n, c)
		}
		if c != DeploymentContainerName(n) {
			t.Errorf("DeploymentContainerName(%q) is not deterministic", n)
		}
		if prev, ok := seen[c]; ok && !strings.EqualFold(prev, n) {
			t.Errorf("apps %q and %q share container %q", prev, n, c)
		}
		seen[c] = n
	}
	if c := DeploymentContainerName("lithops-default-2048-0123456789"); !strings.HasPrefix(c, "app-package-lithops-default-2048-0123456789-") {
		t.Errorf("container %q does not name the app", c)
	}
}
