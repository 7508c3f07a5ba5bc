package azuredouble

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5/fake"
)

// server is the Resource Manager side: plans and sites of any
// subscription and resource group, kept in memory.
func (p *Platform) server() *fake.ServerFactory {
	notFound := func(e *azfake.ErrorResponder) { e.SetResponseError(http.StatusNotFound, "ResourceNotFound") }
	return &fake.ServerFactory{
		PlansServer: fake.PlansServer{
			Get: func(_ context.Context, rg, name string, _ *armappservice.PlansClientGetOptions) (resp azfake.Responder[armappservice.PlansClientGetResponse], errResp azfake.ErrorResponder) {
				p.mu.Lock()
				defer p.mu.Unlock()
				pl, ok := p.plans[rg+"/"+name]
				if !ok {
					notFound(&errResp)
					return
				}
				resp.SetResponse(http.StatusOK, armappservice.PlansClientGetResponse{Plan: pl}, nil)
				return
			},
			BeginCreateOrUpdate: func(_ context.Context, rg, name string, pl armappservice.Plan, _ *armappservice.PlansClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armappservice.PlansClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
				p.mu.Lock()
				defer p.mu.Unlock()
				pl.ID = to.Ptr(fmt.Sprintf("/subscriptions/sub/resourceGroups/%s/providers/Microsoft.Web/serverfarms/%s", rg, name))
				pl.Name = to.Ptr(name)
				p.plans[rg+"/"+name] = pl
				resp.SetTerminalResponse(http.StatusOK, armappservice.PlansClientCreateOrUpdateResponse{Plan: pl}, nil)
				return
			},
			Delete: func(_ context.Context, rg, name string, _ *armappservice.PlansClientDeleteOptions) (resp azfake.Responder[armappservice.PlansClientDeleteResponse], errResp azfake.ErrorResponder) {
				p.mu.Lock()
				defer p.mu.Unlock()
				if _, ok := p.plans[rg+"/"+name]; !ok {
					notFound(&errResp)
					return
				}
				delete(p.plans, rg+"/"+name)
				resp.SetResponse(http.StatusOK, armappservice.PlansClientDeleteResponse{}, nil)
				return
			},
			NewListByResourceGroupPager: func(rg string, _ *armappservice.PlansClientListByResourceGroupOptions) (resp azfake.PagerResponder[armappservice.PlansClientListByResourceGroupResponse]) {
				p.mu.Lock()
				defer p.mu.Unlock()
				var page armappservice.PlansClientListByResourceGroupResponse
				for _, k := range slices.Sorted(maps.Keys(p.plans)) {
					if strings.HasPrefix(k, rg+"/") {
						pl := p.plans[k]
						page.Value = append(page.Value, &pl)
					}
				}
				resp.AddPage(http.StatusOK, page, nil)
				return
			},
		},
		WebAppsServer: fake.WebAppsServer{
			Get: func(_ context.Context, rg, name string, _ *armappservice.WebAppsClientGetOptions) (resp azfake.Responder[armappservice.WebAppsClientGetResponse], errResp azfake.ErrorResponder) {
				p.mu.Lock()
				defer p.mu.Unlock()
				st, ok := p.sites[rg+"/"+name]
				if !ok {
					notFound(&errResp)
					return
				}
				resp.SetResponse(http.StatusOK, armappservice.WebAppsClientGetResponse{Site: st}, nil)
				return
			},
			BeginCreateOrUpdate: func(_ context.Context, rg, name string, st armappservice.Site, _ *armappservice.WebAppsClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armappservice.WebAppsClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
				p.mu.Lock()
				defer p.mu.Unlock()
				if st.Properties == nil {
					errResp.SetResponseError(http.StatusBadRequest, "MissingProperties")
					return
				}
				if st.Properties.SiteConfig != nil && st.Properties.SiteConfig.AppSettings != nil {
					m := map[string]string{}
					for _, kv := range st.Properties.SiteConfig.AppSettings {
						if kv != nil && kv.Name != nil && kv.Value != nil {
							m[*kv.Name] = *kv.Value
						}
					}
					p.settings[rg+"/"+name] = m
				}
				st.Properties.SiteConfig = nil // not echoed by the service
				st.ID = to.Ptr(fmt.Sprintf("/subscriptions/sub/resourceGroups/%s/providers/Microsoft.Web/sites/%s", rg, name))
				st.Name = to.Ptr(name)
				st.Properties.ResourceGroup = to.Ptr(rg)
				host := p.scmHost(name)
				st.Properties.DefaultHostName = to.Ptr(host)
				st.Properties.EnabledHostNames = []*string{to.Ptr(host)}
				st.Properties.HostNameSSLStates = []*armappservice.HostNameSSLState{
					{Name: to.Ptr(host), HostType: to.Ptr(armappservice.HostTypeStandard)},
					{Name: to.Ptr(host), HostType: to.Ptr(armappservice.HostTypeRepository)},
				}
				p.sites[rg+"/"+name] = st
				resp.SetTerminalResponse(http.StatusOK, armappservice.WebAppsClientCreateOrUpdateResponse{Site: st}, nil)
				return
			},
			ListApplicationSettings: func(_ context.Context, rg, name string, _ *armappservice.WebAppsClientListApplicationSettingsOptions) (resp azfake.Responder[armappservice.WebAppsClientListApplicationSettingsResponse], errResp azfake.ErrorResponder) {
				p.mu.Lock()
				defer p.mu.Unlock()
				if _, ok := p.sites[rg+"/"+name]; !ok {
					notFound(&errResp)
					return
				}
				props := map[string]*string{}
				for k, v := range p.settings[rg+"/"+name] {
					props[k] = to.Ptr(v)
				}
				resp.SetResponse(http.StatusOK, armappservice.WebAppsClientListApplicationSettingsResponse{
					StringDictionary: armappservice.StringDictionary{Properties: props},
				}, nil)
				return
			},
			UpdateApplicationSettings: func(_ context.Context, rg, name string, d armappservice.StringDictionary, _ *armappservice.WebAppsClientUpdateApplicationSettingsOptions) (resp azfake.Responder[armappservice.WebAppsClientUpdateApplicationSettingsResponse], errResp azfake.ErrorResponder) {
				p.mu.Lock()
				defer p.mu.Unlock()
				m := map[string]string{}
				for k, v := range d.Properties {
					if v != nil {
						m[k] = *v
					}
				}
				p.settings[rg+"/"+name] = m
				resp.SetResponse(http.StatusOK, armappservice.WebAppsClientUpdateApplicationSettingsResponse{StringDictionary: d}, nil)
				return
			},
			NewListByResourceGroupPager: func(rg string, _ *armappservice.WebAppsClientListByResourceGroupOptions) (resp azfake.PagerResponder[armappservice.WebAppsClientListByResourceGroupResponse]) {
				p.mu.Lock()
				defer p.mu.Unlock()
				var page armappservice.WebAppsClientListByResourceGroupResponse
				for _, k := range slices.Sorted(maps.Keys(p.sites)) {
					if strings.HasPrefix(k, rg+"/") {
						st := p.sites[k]
						page.Value = append(page.Value, &st)
					}
				}
				resp.AddPage(http.StatusOK, page, nil)
				return
			},
			Delete: func(_ context.Context, rg, name string, _ *armappservice.WebAppsClientDeleteOptions) (resp azfake.Responder[armappservice.WebAppsClientDeleteResponse], errResp azfake.ErrorResponder) {
				p.mu.Lock()
				_, ok := p.sites[rg+"/"+name]
				delete(p.sites, rg+"/"+name)
				delete(p.settings, rg+"/"+name)
				app := p.apps[name]
				delete(p.apps, name)
				p.mu.Unlock()
				if app != nil {
					app.stop()
				}
				if !ok {
					notFound(&errResp)
					return
				}
				resp.SetResponse(http.StatusOK, armappservice.WebAppsClientDeleteResponse{}, nil)
				return
			},
			ListHostKeys: func(_ context.Context, rg, name string, _ *armappservice.WebAppsClientListHostKeysOptions) (resp azfake.Responder[armappservice.WebAppsClientListHostKeysResponse], errResp azfake.ErrorResponder) {
				p.mu.Lock()
				defer p.mu.Unlock()
				if _, ok := p.sites[rg+"/"+name]; !ok {
					notFound(&errResp)
					return
				}
				resp.SetResponse(http.StatusOK, armappservice.WebAppsClientListHostKeysResponse{HostKeys: armappservice.HostKeys{
					MasterKey: to.Ptr("master-" + name), FunctionKeys: map[string]*string{"default": to.Ptr("key-" + name)},
				}}, nil)
				return
			},
		},
	}
}
