// Listing and deleting the function apps that are lithops runtimes.

package armdeploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5"
)

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
