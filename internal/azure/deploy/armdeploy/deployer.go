package armdeploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
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
