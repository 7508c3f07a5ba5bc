// App settings: what a deploy writes, merged with what the app has.

package armdeploy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
)

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
