package config

import "testing"

// Lithops' -r/--region lands in the compute backend's section; localhost
// has no region.
func TestOverrideRegion(t *testing.T) {
	tests := []struct {
		backend, region, want string
	}{
		{"azure_functions", "westeurope", "westeurope"},
		{"azure_functions", "", "northeurope"}, // the config's stays
		{"localhost", "westeurope", "northeurope"},
	}
	for _, tc := range tests {
		c := Default()
		c.AzureFunctions.Region = "northeurope"
		c.Override(Overrides{Backend: tc.backend, Region: tc.region})
		if c.AzureFunctions.Region != tc.want {
			t.Errorf("%s, -r %q: azure_functions.region = %q, want %q", tc.backend, tc.region, c.AzureFunctions.Region, tc.want)
		}
	}
}
