package armdeploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
)

// Token scopes of the bearer token sent to the SCM (Kudu) endpoint. The SCM
// endpoint does not accept tokens for https://management.azure.com.
const (
	// SCMScope is the scope asked for first: the App Service audience, as
	// Microsoft's VS Code extensions and recent az CLI versions send.
	SCMScope = "https://appservice.azure.com/.default"
	// SCMFallbackScope is asked for once when the SCM endpoint answers 401
	// to a token for SCMScope: the classic ARM audience (note the double
	// slash), as azd and the Functions core tools send.
	SCMFallbackScope = "https://management.core.windows.net//.default"
)

// ErrNotLithopsRuntime is returned when a site or plan of the requested
// name exists but is not tagged type=lithops-runtime: this package never
// modifies or deletes resources it did not create.
var ErrNotLithopsRuntime = errors.New("armdeploy: resource is not a lithops runtime")

// App is a deployed lithops runtime.
type App struct {
	Name            string // function app (site) name
	ResourceGroup   string
	PlanName        string // Flex Consumption plan
	Region          string
	RuntimeName     string // lithops runtime name
	Version         string // lithops-go version
	MemoryMB        int    // instance memory
	MaxInstances    int    // maximum instance count
	DefaultHostName string // <app>.azurewebsites.net or the regional name
	SCMHostName     string // SCM (Kudu) host, target of OneDeploy
	Tags            map[string]string

	// DeployUnconfirmed is set by Deploy when the service accepted the
	// package but dropped the deployment record (404) before reporting the
	// outcome, as Flex Consumption does when it recycles records: the
	// deployment may have succeeded or failed, and the caller should check
	// the app (for example by invoking it).
	DeployUnconfirmed bool
}

// Deployer deploys, lists and deletes lithops runtimes in one Azure
// subscription. It is safe for concurrent use.
type Deployer struct {
	subscriptionID string
	cred           azcore.TokenCredential
	plans          *armappservice.PlansClient
	sites          *armappservice.WebAppsClient
	identities     *armmsi.UserAssignedIdentitiesClient
	assignments    *armauthorization.RoleAssignmentsClient

	armOptions    *arm.ClientOptions
	httpClient    *http.Client
	scmEndpoint   *url.URL
	scmScope      string
	scmFallback   string // scope tried once after a 401; "" for none
	deployTimeout time.Duration
	pollInterval  time.Duration
	keyWait       time.Duration
	log           *slog.Logger
	sleep         func(context.Context, time.Duration) error // replaced in tests
}

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

// New returns a Deployer for the subscription, authenticating ARM and SCM
// requests with cred. It sends no request.
func New(subscriptionID string, cred azcore.TokenCredential, opts ...Option) (*Deployer, error) {
	if strings.TrimSpace(subscriptionID) == "" {
		return nil, fmt.Errorf("%w: subscription ID is not set", ErrInvalidSpec)
	}
	if cred == nil {
		return nil, fmt.Errorf("%w: no Azure credential for subscription %s", ErrInvalidSpec, subscriptionID)
	}
	d := &Deployer{
		subscriptionID: subscriptionID,
		cred:           cred,
		httpClient:     &http.Client{},
		scmScope:       SCMScope,
		scmFallback:    SCMFallbackScope,
		deployTimeout:  10 * time.Minute,
		pollInterval:   time.Second,
		keyWait:        5 * time.Minute,
		log:            slog.New(slog.DiscardHandler),
		sleep:          sleepCtx,
	}
	for _, o := range opts {
		o(d)
	}
	if d.scmEndpoint != nil && d.scmEndpoint.Host == "" {
		return nil, fmt.Errorf("%w: SCM endpoint override is not an absolute URL", ErrInvalidSpec)
	}
	var err error
	if d.plans, err = armappservice.NewPlansClient(subscriptionID, cred, d.armOptions); err != nil {
		return nil, fmt.Errorf("armdeploy: App Service plans client for subscription %s: %w", subscriptionID, err)
	}
	if d.sites, err = armappservice.NewWebAppsClient(subscriptionID, cred, d.armOptions); err != nil {
		return nil, fmt.Errorf("armdeploy: web apps client for subscription %s: %w", subscriptionID, err)
	}
	if d.identities, err = armmsi.NewUserAssignedIdentitiesClient(subscriptionID, cred, d.armOptions); err != nil {
		return nil, fmt.Errorf("armdeploy: managed identities client for subscription %s: %w", subscriptionID, err)
	}
	if d.assignments, err = armauthorization.NewRoleAssignmentsClient(subscriptionID, cred, d.armOptions); err != nil {
		return nil, fmt.Errorf("armdeploy: role assignments client for subscription %s: %w", subscriptionID, err)
	}
	return d, nil
}

// Deploy creates or updates the runtime described by spec and publishes the
// app package zip (host.json, function folders, handler binary) with
// OneDeploy, waiting until the deployment completes. Steps: the Flex
// Consumption plan, the site with its functionAppConfig and app settings,
// a read-modify-write of the app settings when the site did not take them
// (settings already on the app and absent from the spec are kept), the
// upload and the status polls. Re-deploying an existing runtime updates it
// in place. When the service drops the deployment record before reporting
// the outcome, Deploy returns the app with DeployUnconfirmed set instead of
// waiting for the deploy timeout.
func (d *Deployer) Deploy(ctx context.Context, spec Spec, zip []byte) (*App, error) {
	s, err := spec.validate()
	if err != nil {
		return nil, err
	}
	if len(zip) < 4 || string(zip[:2]) != "PK" {
		return nil, fmt.Errorf("%w: package of app %s is not a zip archive (%d bytes)", ErrInvalidSpec, s.Name, len(zip))
	}
	if s.clampedFrom != 0 {
		d.log.Warn("maximum instance count outside Flex Consumption limits, adjusted",
			"app", s.Name, "requested", s.clampedFrom, "used", s.MaxInstances,
			"min", MinMaxInstances, "max", MaxMaxInstances)
	}
	if total := s.MaxInstances * s.MemoryMB; total > RegionalMemoryQuotaMB {
		d.log.Warn("maximum instance count × instance memory exceeds the regional Flex Consumption memory quota: "+
			"scale-out stops at the quota unless it is raised (or lower max_workers)",
			"app", s.Name, "max_instances", s.MaxInstances, "memory_mb", s.MemoryMB,
			"total_mb", total, "quota_mb", RegionalMemoryQuotaMB)
	}

	// Refuse to take over resources lithops did not create.
	existing, err := d.getSite(ctx, s.ResourceGroup, s.Name)
	if err != nil {
		return nil, err
	}
	if existing != nil && !isLithops(existing.Tags) {
		return nil, fmt.Errorf("deploy app %s in resource group %s: %w: the site exists without tag %s=%s",
			s.Name, s.ResourceGroup, ErrNotLithopsRuntime, TagType, TagTypeRuntime)
	}
	if err := d.checkPlan(ctx, s.ResourceGroup, s.PlanName); err != nil {
		return nil, err
	}

	// Settings: the spec's over what the app already has.
	settings := s.AppSettings
	if existing != nil {
		cur, err := d.sites.ListApplicationSettings(ctx, s.ResourceGroup, s.Name, nil)
		if err != nil {
			return nil, fmt.Errorf("list app settings of app %s in resource group %s: %w", s.Name, s.ResourceGroup, err)
		}
		settings = d.mergeSettings(s.Name, cur.Properties, s.AppSettings, s.Identity != nil)
	}

	planID, err := d.putPlan(ctx, s)
	if err != nil {
		return nil, err
	}
	site, err := d.putSite(ctx, s, planID, settings)
	if err != nil {
		return nil, err
	}
	if err := d.ensureSettings(ctx, s); err != nil {
		return nil, err
	}

	app := appFromSite(site)
	if app.SCMHostName == "" || app.DefaultHostName == "" {
		got, err := d.getSite(ctx, s.ResourceGroup, s.Name)
		if err != nil {
			return nil, err
		}
		if got != nil {
			app = appFromSite(got)
		}
	}
	// Fill what the service did not echo with what was asked for.
	app.Name, app.ResourceGroup, app.PlanName = s.Name, s.ResourceGroup, s.PlanName
	if app.Region == "" {
		app.Region = s.Region
	}
	app.RuntimeName, app.Version = s.RuntimeName, s.Version
	app.MemoryMB, app.MaxInstances = s.MemoryMB, s.MaxInstances
	app.Tags = maps.Clone(s.Tags)
	if app.SCMHostName == "" {
		app.SCMHostName = s.Name + ".scm.azurewebsites.net"
		d.log.Debug("no repository host name reported, using the classic SCM host", "app", s.Name, "scm", app.SCMHostName)
	}
	if app.DefaultHostName == "" {
		app.DefaultHostName = s.Name + ".azurewebsites.net"
	}

	switch err := d.publish(ctx, app, zip); {
	case errors.Is(err, errStatusGone):
		app.DeployUnconfirmed = true
	case err != nil:
		return nil, err
	}
	d.log.Info("runtime deployed", "app", app.Name, "runtime", app.RuntimeName, "version", app.Version,
		"memory_mb", app.MemoryMB, "max_instances", app.MaxInstances, "host", app.DefaultHostName,
		"confirmed", !app.DeployUnconfirmed)
	return &app, nil
}

func (d *Deployer) armPoll() *runtime.PollUntilDoneOptions {
	return &runtime.PollUntilDoneOptions{Frequency: max(d.pollInterval, time.Second)}
}

// getSite returns the site, or nil when it does not exist.
func (d *Deployer) getSite(ctx context.Context, rg, name string) (*armappservice.Site, error) {
	resp, err := d.sites.Get(ctx, rg, name, nil)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get app %s in resource group %s: %w", name, rg, err)
	}
	return &resp.Site, nil
}

// checkPlan fails when a plan of that name exists without the lithops tag.
func (d *Deployer) checkPlan(ctx context.Context, rg, name string) error {
	resp, err := d.plans.Get(ctx, rg, name, nil)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get plan %s in resource group %s: %w", name, rg, err)
	}
	if !isLithops(resp.Tags) {
		return fmt.Errorf("deploy plan %s in resource group %s: %w: the plan exists without tag %s=%s",
			name, rg, ErrNotLithopsRuntime, TagType, TagTypeRuntime)
	}
	return nil
}

func (d *Deployer) putPlan(ctx context.Context, s normalized) (string, error) {
	tags := maps.Clone(s.Tags)
	tags[TagApp] = s.Name
	plan := armappservice.Plan{
		Location: to.Ptr(s.Region),
		Kind:     to.Ptr("functionapp"),
		SKU:      &armappservice.SKUDescription{Name: to.Ptr("FC1"), Tier: to.Ptr("FlexConsumption")},
		Properties: &armappservice.PlanProperties{
			Reserved: to.Ptr(true), // Linux
		},
		Tags: ptrMap(tags),
	}
	d.log.Info("creating or updating Flex Consumption plan", "plan", s.PlanName, "resource_group", s.ResourceGroup, "region", s.Region)
	poller, err := d.plans.BeginCreateOrUpdate(ctx, s.ResourceGroup, s.PlanName, plan, nil)
	if err != nil {
		return "", fmt.Errorf("create or update plan %s in resource group %s: %w", s.PlanName, s.ResourceGroup, err)
	}
	resp, err := poller.PollUntilDone(ctx, d.armPoll())
	if err != nil {
		return "", fmt.Errorf("create or update plan %s in resource group %s: %w", s.PlanName, s.ResourceGroup, err)
	}
	if resp.ID != nil && *resp.ID != "" {
		return *resp.ID, nil
	}
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Web/serverfarms/%s",
		d.subscriptionID, s.ResourceGroup, s.PlanName), nil
}

func (d *Deployer) putSite(ctx context.Context, s normalized, planID string, settings map[string]string) (*armappservice.Site, error) {
	pairs := make([]*armappservice.NameValuePair, 0, len(settings))
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		pairs = append(pairs, &armappservice.NameValuePair{Name: to.Ptr(k), Value: to.Ptr(settings[k])})
	}
	auth := &armappservice.FunctionsDeploymentStorageAuthentication{
		Type:                               to.Ptr(armappservice.AuthenticationTypeStorageAccountConnectionString),
		StorageAccountConnectionStringName: to.Ptr(appsettings.DeploymentStorage),
	}
	var identity *armappservice.ManagedServiceIdentity
	if s.Identity != nil {
		// Keyless: the platform reads the package with the identity.
		auth = &armappservice.FunctionsDeploymentStorageAuthentication{
			Type:                           to.Ptr(armappservice.AuthenticationTypeUserAssignedIdentity),
			UserAssignedIdentityResourceID: to.Ptr(s.Identity.ResourceID),
		}
		identity = &armappservice.ManagedServiceIdentity{
			Type:                   to.Ptr(armappservice.ManagedServiceIdentityTypeUserAssigned),
			UserAssignedIdentities: map[string]*armappservice.UserAssignedIdentity{s.Identity.ResourceID: {}},
		}
	}
	site := armappservice.Site{
		Location: to.Ptr(s.Region),
		Kind:     to.Ptr("functionapp,linux"),
		Tags:     ptrMap(s.Tags),
		Identity: identity,
		Properties: &armappservice.SiteProperties{
			ServerFarmID: to.Ptr(planID),
			HTTPSOnly:    to.Ptr(true),
			SiteConfig:   &armappservice.SiteConfig{AppSettings: pairs},
			FunctionAppConfig: &armappservice.FunctionAppConfig{
				Deployment: &armappservice.FunctionsDeployment{
					Storage: &armappservice.FunctionsDeploymentStorage{
						Type:           to.Ptr(armappservice.FunctionsDeploymentStorageTypeBlobContainer),
						Value:          to.Ptr(s.DeploymentContainerURL),
						Authentication: auth,
					},
				},
				Runtime: &armappservice.FunctionsRuntime{
					Name:    to.Ptr(armappservice.RuntimeNameCustom),
					Version: to.Ptr("1.0"),
				},
				ScaleAndConcurrency: &armappservice.FunctionsScaleAndConcurrency{
					InstanceMemoryMB:     to.Ptr(int32(s.MemoryMB)),
					MaximumInstanceCount: to.Ptr(int32(s.MaxInstances)),
				},
			},
		},
	}
	d.log.Info("creating or updating function app", "app", s.Name, "resource_group", s.ResourceGroup,
		"memory_mb", s.MemoryMB, "max_instances", s.MaxInstances)
	poller, err := d.sites.BeginCreateOrUpdate(ctx, s.ResourceGroup, s.Name, site, nil)
	if err != nil {
		return nil, fmt.Errorf("create or update app %s in resource group %s: %w", s.Name, s.ResourceGroup, err)
	}
	resp, err := poller.PollUntilDone(ctx, d.armPoll())
	if err != nil {
		return nil, fmt.Errorf("create or update app %s in resource group %s: %w", s.Name, s.ResourceGroup, err)
	}
	return &resp.Site, nil
}

// ensureSettings reads the app settings back and, when a spec setting is
// missing or different, writes the merged set (UpdateApplicationSettings
// replaces the whole set).
func (d *Deployer) ensureSettings(ctx context.Context, s normalized) error {
	cur, err := d.sites.ListApplicationSettings(ctx, s.ResourceGroup, s.Name, nil)
	if err != nil {
		return fmt.Errorf("list app settings of app %s in resource group %s: %w", s.Name, s.ResourceGroup, err)
	}
	var stale []string
	for k, v := range s.AppSettings {
		if p, ok := cur.Properties[k]; !ok || p == nil || *p != v {
			stale = append(stale, k)
		}
	}
	for k := range cur.Properties {
		if _, bad := flexRefuses(k); bad {
			stale = append(stale, k) // to be dropped
		} else if s.Identity != nil && keyedSetting(k) {
			stale = append(stale, k) // a keyed runtime turned keyless
		}
	}
	if len(stale) == 0 {
		return nil
	}
	slices.Sort(stale)
	d.log.Info("updating app settings", "app", s.Name, "settings", stale) // names only, never values
	merged := d.mergeSettings(s.Name, cur.Properties, s.AppSettings, s.Identity != nil)
	_, err = d.sites.UpdateApplicationSettings(ctx, s.ResourceGroup, s.Name,
		armappservice.StringDictionary{Properties: ptrMap(merged)}, nil)
	if err != nil {
		return fmt.Errorf("update app settings of app %s in resource group %s: %w", s.Name, s.ResourceGroup, err)
	}
	return nil
}

// List returns the lithops runtimes (function apps tagged
// type=lithops-runtime) in the resource group, sorted by name.
func (d *Deployer) List(ctx context.Context, resourceGroup string) ([]App, error) {
	if err := checkResourceGroup(resourceGroup); err != nil {
		return nil, err
	}
	var apps []App
	pager := d.sites.NewListByResourceGroupPager(resourceGroup, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list apps in resource group %s: %w", resourceGroup, err)
		}
		for _, site := range page.Value {
			if site == nil || !isLithops(site.Tags) || !isFunctionApp(site) {
				continue
			}
			a := appFromSite(site)
			if a.ResourceGroup == "" {
				a.ResourceGroup = resourceGroup
			}
			apps = append(apps, a)
		}
	}
	slices.SortFunc(apps, func(a, b App) int { return strings.Compare(a.Name, b.Name) })
	return apps, nil
}

// Delete deletes the runtime's site and then its plan. Missing resources
// are not an error, so Delete can be repeated; when the site is already
// gone, plans tagged lithops-app=<appName> are deleted. A site without the
// lithops tag is left alone (ErrNotLithopsRuntime).
func (d *Deployer) Delete(ctx context.Context, resourceGroup, appName string) error {
	if err := checkResourceGroup(resourceGroup); err != nil {
		return err
	}
	if appName == "" {
		return fmt.Errorf("%w: app name is not set", ErrInvalidSpec)
	}
	site, err := d.getSite(ctx, resourceGroup, appName)
	if err != nil {
		return err
	}

	type planRef struct{ rg, name string }
	var plans []planRef
	if site != nil {
		if !isLithops(site.Tags) {
			return fmt.Errorf("delete app %s in resource group %s: %w", appName, resourceGroup, ErrNotLithopsRuntime)
		}
		if site.Properties != nil && site.Properties.ServerFarmID != nil {
			if id, err := arm.ParseResourceID(*site.Properties.ServerFarmID); err == nil && id.Name != "" {
				rg := id.ResourceGroupName
				if rg == "" {
					rg = resourceGroup
				}
				plans = append(plans, planRef{rg, id.Name})
			}
		}
		d.log.Info("deleting function app", "app", appName, "resource_group", resourceGroup)
		_, err := d.sites.Delete(ctx, resourceGroup, appName, &armappservice.WebAppsClientDeleteOptions{
			DeleteEmptyServerFarm: to.Ptr(false), // deleted below, after the lithops tag check
		})
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("delete app %s in resource group %s: %w", appName, resourceGroup, err)
		}
	} else {
		pager := d.plans.NewListByResourceGroupPager(resourceGroup, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("list plans in resource group %s: %w", resourceGroup, err)
			}
			for _, p := range page.Value {
				if p != nil && p.Name != nil && isLithops(p.Tags) && tag(p.Tags, TagApp) == appName {
					plans = append(plans, planRef{resourceGroup, *p.Name})
				}
			}
		}
	}

	for _, p := range plans {
		got, err := d.plans.Get(ctx, p.rg, p.name, nil)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("get plan %s in resource group %s: %w", p.name, p.rg, err)
		}
		if !isLithops(got.Tags) {
			d.log.Warn("plan of the deleted app is not a lithops plan, left alone", "plan", p.name, "resource_group", p.rg)
			continue
		}
		d.log.Info("deleting plan", "plan", p.name, "resource_group", p.rg)
		if _, err := d.plans.Delete(ctx, p.rg, p.name, nil); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete plan %s in resource group %s: %w", p.name, p.rg, err)
		}
	}
	return nil
}

// Backoff between host key requests while the Functions host starts.
const (
	keyBackoffFirst = time.Second
	keyBackoffMax   = 15 * time.Second
)

// FunctionKey returns a host-level function key of the app, for calling
// its HTTP-triggered functions (authLevel function) with the
// x-functions-key header: the key named "default" when present, else the
// first by name. The master key is never returned. Keys exist only once
// the Functions host has started on the app: right after a deploy the
// service answers 400, 404, 409, 429 or 5xx, or no function key, and
// FunctionKey asks again with exponential backoff (1 s doubling to 15 s)
// for up to the key wait (WithKeyWait, default 5 minutes). Other 4xx
// answers (401, 403, …) fail at once.
func (d *Deployer) FunctionKey(ctx context.Context, resourceGroup, app string) (string, error) {
	if err := checkResourceGroup(resourceGroup); err != nil {
		return "", err
	}
	if app == "" {
		return "", fmt.Errorf("%w: app name is not set", ErrInvalidSpec)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, d.keyWait)
	defer cancel()
	wait := keyBackoffFirst
	// answer is the last failure that came from the service: when the wait
	// runs out mid-request, that says more than the deadline does.
	var answer error
	for attempt := 1; ; attempt++ {
		key, err := d.functionKeyOnce(ctx, resourceGroup, app)
		if err == nil || parent.Err() != nil {
			return key, err
		}
		if ctx.Err() == nil || answer == nil {
			if !keyRetryable(err) {
				return key, err
			}
			if ctx.Err() == nil {
				answer = err
			}
		}
		if ctx.Err() == nil {
			d.log.Debug("host keys not available yet, asking again", "app", app, "attempt", attempt, "in", wait, "err", err)
		}
		if ctx.Err() != nil || d.sleep(ctx, wait) != nil {
			if perr := parent.Err(); perr != nil {
				return "", fmt.Errorf("list host keys of app %s in resource group %s: %w", app, resourceGroup, perr)
			}
			return "", fmt.Errorf("list host keys of app %s in resource group %s: the Functions host gave no function key within %s (%d attempts): %w",
				app, resourceGroup, d.keyWait, attempt, cmp.Or(answer, err))
		}
		wait = min(2*wait, keyBackoffMax)
	}
}

// errNoFunctionKey: the host answered with keys but no function key yet.
var errNoFunctionKey = errors.New("no function key yet (has the Functions host started?)")

func (d *Deployer) functionKeyOnce(ctx context.Context, resourceGroup, app string) (string, error) {
	resp, err := d.sites.ListHostKeys(ctx, resourceGroup, app, nil)
	if err != nil {
		return "", fmt.Errorf("list host keys of app %s in resource group %s: %w", app, resourceGroup, err)
	}
	if k := resp.FunctionKeys["default"]; k != nil && *k != "" {
		return *k, nil
	}
	for _, name := range slices.Sorted(maps.Keys(resp.FunctionKeys)) {
		if k := resp.FunctionKeys[name]; k != nil && *k != "" {
			return *k, nil
		}
	}
	return "", fmt.Errorf("list host keys of app %s in resource group %s: %w", app, resourceGroup, errNoFunctionKey)
}

// keyRetryable reports whether a listkeys failure may go away once the
// Functions host is up.
func keyRetryable(err error) bool {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return true // no function key yet, or the request did not get through
	}
	switch c := re.StatusCode; {
	case c == http.StatusBadRequest, c == http.StatusNotFound, c == http.StatusConflict, c == http.StatusTooManyRequests:
		return true
	case c >= 500:
		return true
	}
	return false
}

// appFromSite describes a site as an App, from its tags and functionAppConfig.
func appFromSite(site *armappservice.Site) App {
	a := App{
		Name:        deref(site.Name),
		Region:      deref(site.Location),
		RuntimeName: tag(site.Tags, TagRuntime),
		Version:     tag(site.Tags, TagVersion),
		Tags:        map[string]string{},
	}
	for k, v := range site.Tags {
		if v != nil {
			a.Tags[k] = *v
		}
	}
	if m, err := strconv.Atoi(tag(site.Tags, TagMemory)); err == nil {
		a.MemoryMB = m
	}
	p := site.Properties
	if p == nil {
		return a
	}
	if p.ResourceGroup != nil {
		a.ResourceGroup = *p.ResourceGroup
	}
	if p.ServerFarmID != nil {
		if id, err := arm.ParseResourceID(*p.ServerFarmID); err == nil {
			a.PlanName = id.Name
		}
	}
	if c := p.FunctionAppConfig; c != nil && c.ScaleAndConcurrency != nil {
		if m := c.ScaleAndConcurrency.InstanceMemoryMB; m != nil {
			a.MemoryMB = int(*m)
		}
		if n := c.ScaleAndConcurrency.MaximumInstanceCount; n != nil {
			a.MaxInstances = int(*n)
		}
	}
	a.DefaultHostName = deref(p.DefaultHostName)
	for _, st := range p.HostNameSSLStates {
		if st != nil && st.HostType != nil && *st.HostType == armappservice.HostTypeRepository && st.Name != nil {
			a.SCMHostName = *st.Name
			break
		}
	}
	if a.SCMHostName == "" {
		for _, h := range p.EnabledHostNames {
			if h != nil && strings.Contains(*h, ".scm.") {
				a.SCMHostName = *h
				break
			}
		}
	}
	return a
}

func isFunctionApp(site *armappservice.Site) bool {
	return site.Kind == nil || strings.Contains(strings.ToLower(*site.Kind), "functionapp")
}

// tag returns the value of tag key (Azure tag names are case-insensitive).
func tag(tags map[string]*string, key string) string {
	if v, ok := tags[key]; ok && v != nil {
		return *v
	}
	for k, v := range tags {
		if strings.EqualFold(k, key) && v != nil {
			return *v
		}
	}
	return ""
}

func isLithops(tags map[string]*string) bool { return tag(tags, TagType) == TagTypeRuntime }

func isNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// keyedSetting reports whether an app setting holds a storage connection
// string, which a keyless app must not keep.
func keyedSetting(name string) bool {
	return strings.EqualFold(name, appsettings.HostStorage) || strings.EqualFold(name, appsettings.DeploymentStorage)
}

// mergeSettings returns the app's current settings overlaid with want
// (already validated). Current settings Flex Consumption refuses are
// dropped with a warning naming them, never sent back; so are the storage
// connection strings when the app becomes keyless (a connection string
// would win over the identity-based settings).
func (d *Deployer) mergeSettings(app string, cur map[string]*string, want map[string]string, keyless bool) map[string]string {
	out := make(map[string]string, len(cur)+len(want))
	for _, k := range slices.Sorted(maps.Keys(cur)) {
		v := cur[k]
		if v == nil {
			continue
		}
		if why, bad := flexRefuses(k); bad {
			d.log.Warn("dropping an app setting of the live app that Flex Consumption refuses", "app", app, "setting", k, "reason", why) // never the value
			continue
		}
		if keyless && keyedSetting(k) {
			d.log.Info("dropping a storage connection string of the live app: it becomes keyless", "app", app, "setting", k) // never the value
			continue
		}
		out[k] = *v
	}
	maps.Copy(out, want)
	return out
}

func ptrMap(m map[string]string) map[string]*string {
	out := make(map[string]*string, len(m))
	for k, v := range m {
		out[k] = to.Ptr(v)
	}
	return out
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
