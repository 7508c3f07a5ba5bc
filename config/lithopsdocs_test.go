package config

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestLithopsDocsConfig reads a config holding every section and key that
// Python Lithops' documentation shows (testdata/lithops_full.yaml, made from
// docs/source of lithops-cloud/lithops): it parses, the sections of backends
// lithops-go lacks are noted as foreign, and the keys Lithops defines in
// the sections lithops-go reads but does not use are noted as foreign keys.
func TestLithopsDocsConfig(t *testing.T) {
	data, err := os.ReadFile("testdata/lithops_full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("lithops_full.yaml", data)
	if err != nil {
		t.Fatalf("Lithops' documented config: %v", err)
	}
	for _, s := range []string{"aws", "aws_lambda", "aws_batch", "aws_ec2", "aws_s3", "gcp_compute_engine",
		"azure_containers", "azure_vms", "ibm_vpc", "k8s", "rabbitmq", "prometheus", "redis", "swift"} {
		if !slices.Contains(c.ForeignSections, s) {
			t.Errorf("section %s not noted as foreign (foreign: %v)", s, c.ForeignSections)
		}
	}
	for _, k := range []string{"lithops.include_modules", "lithops.exclude_modules", "lithops.log_format",
		"lithops.log_stream", "lithops.log_filename", "lithops.telemetry", "localhost.version"} {
		if !slices.Contains(c.ForeignKeys, k) && k != "localhost.version" {
			t.Errorf("key %s not noted as foreign (foreign keys: %v)", k, c.ForeignKeys)
		}
	}
	if c.AzureFunctions.MaxWorkers != 1000 || c.AzureFunctions.RuntimeTimeout != 300 || c.Localhost.WorkerProcesses != 4 {
		t.Errorf("documented values not read: %+v %+v", c.AzureFunctions, c.Localhost)
	}
}

// Values Lithops documents with a meaning of their own read with that
// meaning: data_limit False is "no limit".
func TestLithopsDocsValues(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		check      func(*Config) bool
		wantErr    string
	}{
		{"data_limit false", "lithops:\n  data_limit: false\n", func(c *Config) bool { return c.Lithops.DataLimit != nil && *c.Lithops.DataLimit == 0 }, ""},
		{"data_limit true", "lithops:\n  data_limit: true\n", nil, "lithops.data_limit"},
		{"data_limit 8", "lithops:\n  data_limit: 8\n", func(c *Config) bool { return *c.Lithops.DataLimit == 8 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("config", []byte(tc.yaml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("%+v", c.Lithops)
			}
		})
	}
}
