package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown section", "lithops:\n  backend: localhost\nlocalhots:\n  worker_processes: 2\n", "cfg.yaml:3: localhots: unknown key"},
		{"unknown key", "lithops:\n  backend: localhost\n  execution_timout: 10\n", "cfg.yaml:3: lithops.execution_timout: unknown key"},
		{"wrong type", "lithops:\n  execution_timeout: ten\n", `cfg.yaml:2: lithops.execution_timeout: want a number, got "ten"`},
		{"wrong int", "localhost:\n  worker_processes: 2.5\n", `cfg.yaml:2: localhost.worker_processes: want an integer, got "2.5"`},
		{"section not mapping", "lithops: 3\n", `cfg.yaml:1: lithops: want a mapping of keys`},
		{"list value", "lithops:\n  backend: [a, b]\n", `cfg.yaml:2: lithops.backend: want a single value, got a list`},
		{"bad yaml", "lithops:\n  backend: : :\n", "cfg.yaml"},
		{"unknown backend", "lithops:\n  backend: aws_lambda\n", `lithops.backend: unknown compute backend "aws_lambda"`},
		{"localhost storage with cloud", "lithops:\n  backend: azure_functions\n  storage: localhost\n", "localhost storage cannot be used with the azure_functions backend"},
		{"bad memory", "azure_functions:\n  runtime_memory: 1000\n", "azure_functions.runtime_memory: Flex Consumption offers 512, 2048 or 4096 MB, got 1000"},
		{"negative timeout", "lithops:\n  execution_timeout: -1\n", "lithops.execution_timeout: must be a positive number"},
		{"bad codec", "lithops:\n  codec: xml\n", `lithops.codec: unknown codec "xml"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("cfg.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	c, err := Parse("cfg.yaml", []byte(`
lithops:
  backend: localhost
  storage: localhost
  execution_timeout: 10
  data_limit: 0
  log_level: debug
localhost:
  worker_processes: 3
  storage_root: /tmp/x
azure_storage:
  storage_account_name: acct
  storage_account_key: c2VjcmV0
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Lithops.ExecutionTimeout != 10 || c.Localhost.WorkerProcesses != 3 || *c.Lithops.DataLimit != 0 || c.Localhost.StorageRoot != "/tmp/x" {
		t.Fatalf("parsed %+v", c)
	}
	m := c.Masked()
	if m.AzureStorage.StorageAccountKey != "****" || c.AzureStorage.StorageAccountKey != "c2VjcmV0" {
		t.Fatalf("masking: %q / %q", m.AzureStorage.StorageAccountKey, c.AzureStorage.StorageAccountKey)
	}
	if s := c.Secrets(); len(s) != 1 || s[0] != "c2VjcmV0" {
		t.Fatalf("secrets %v", s)
	}
	y, _ := m.YAML()
	if strings.Contains(string(y), "c2VjcmV0") {
		t.Fatalf("masked YAML shows the secret:\n%s", y)
	}
}

func TestDefaults(t *testing.T) {
	c := Default()
	if c.Lithops.Backend != "localhost" || c.Lithops.Storage != "localhost" || c.Lithops.ExecutionTimeout != 3600 || c.Localhost.WorkerProcesses < 1 {
		t.Fatalf("defaults %+v", c.Lithops)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("empty", nil)
	if err != nil || c.Lithops.Backend != "localhost" {
		t.Fatalf("empty file: %+v, %v", c, err)
	}
	c, err = Parse("cloud", []byte("lithops:\n  backend: azure_functions\n"))
	if err != nil || c.Lithops.Storage != "azure_storage" || c.Lithops.ExecutionTimeout != 1800 {
		t.Fatalf("cloud defaults: %+v, %v", c, err)
	}
}

func TestLookupOrder(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("HOME", filepath.Join(dir, "home"))
	t.Setenv("LITHOPS_CONFIG_FILE", "")
	if got := Find(); got != "" && got != "/etc/lithops/config" {
		t.Fatalf("no config: Find() = %q", got)
	}
	home := filepath.Join(dir, "home", ".lithops", "config")
	os.MkdirAll(filepath.Dir(home), 0o755)
	os.WriteFile(home, []byte("localhost:\n  worker_processes: 5\n"), 0o600)
	if got := Find(); got != home {
		t.Fatalf("Find() = %q, want %q", got, home)
	}
	os.WriteFile(".lithops_config", []byte("localhost:\n  worker_processes: 6\n"), 0o600)
	if got := Find(); got != ".lithops_config" {
		t.Fatalf("Find() = %q, want ./.lithops_config", got)
	}
	env := filepath.Join(dir, "env.yaml")
	os.WriteFile(env, []byte("localhost:\n  worker_processes: 7\n"), 0o600)
	t.Setenv("LITHOPS_CONFIG_FILE", env)
	c, err := Load("")
	if err != nil || c.Localhost.WorkerProcesses != 7 || c.Source != env {
		t.Fatalf("env file: %+v, %v", c, err)
	}
	c, err = Load(home)
	if err != nil || c.Localhost.WorkerProcesses != 5 {
		t.Fatalf("explicit file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestSecretFilePermissions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body string
		mode       os.FileMode
		warn       bool
	}{
		{"secret, world readable", "azure_storage:\n  storage_account_key: a2V5\n", 0o644, true},
		{"secret, private", "azure_storage:\n  storage_account_key: a2V5\n", 0o600, false},
		{"no secret", "localhost:\n  worker_processes: 2\n", 0o644, false},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
		os.WriteFile(p, []byte(tc.body), tc.mode)
		os.Chmod(p, tc.mode)
		c, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(c.Warnings) > 0; got != tc.warn || tc.warn && !strings.Contains(c.Warnings[0], "chmod 600") {
			t.Errorf("%s: warnings %q", tc.name, c.Warnings)
		}
	}
}

// The default maximum instance count stays within the regional quota of
// instance memory (512,000 MB), at most 1000; a configured one is kept.
func TestDefaultMaxWorkersWithinQuota(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want int
	}{
		{"azure_functions:\n  runtime_memory: 512\n", 1000},
		{"azure_functions:\n  runtime_memory: 2048\n", 250},
		{"azure_functions:\n  runtime_memory: 4096\n", 125},
		{"azure_functions:\n  runtime_memory: 4096\n  max_workers: 1\n", 1},
	} {
		c, err := Parse("t", []byte(tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.AzureFunctions.MaxWorkers; got != tc.want {
			t.Errorf("%q: max_workers %d, want %d", tc.yaml, got, tc.want)
		}
	}
}

// A Python Lithops user's whole config file reads: sections of backends
// lithops-go lacks are noted and ignored, keys Lithops defines but
// lithops-go does not use are noted (clients warn once), and only a key
// neither tool knows is an error, with a suggestion.
func TestLithopsConfigReads(t *testing.T) {
	full := `lithops:
  backend: localhost
  storage: localhost
  mode: localhost
  include_modules: [mymod]
  log_level: INFO
  log_format: "%(asctime)s"
  execution_timeout: 1800
  data_cleaner: true
  monitoring: storage
localhost:
  worker_processes: 2
aws:
  access_key_id: AKIA
  secret_access_key: x
aws_lambda:
  execution_role: arn:aws:iam::1:role/lithops
  region: us-east-1
aws_s3:
  storage_bucket: b
ibm:
  iam_api_key: k
ibm_cf:
  namespace: ns
ibm_cos:
  region: us-east
gcp:
  region: europe-west1
gcp_functions:
  runtime_memory: 256
k8s:
  docker_server: docker.io
minio:
  endpoint: http://localhost:9000
redis:
  host: 127.0.0.1
azure_storage:
  storage_account_name: acct
  storage_account_key: a2V5
azure_functions:
  resource_group: rg
  region: westeurope
`
	c, err := Parse("config", []byte(full))
	if err != nil {
		t.Fatalf("a full Lithops config: %v", err)
	}
	if fmt.Sprint(c.ForeignSections) != "[aws aws_lambda aws_s3 ibm ibm_cf ibm_cos gcp gcp_functions k8s minio redis]" {
		t.Errorf("foreign sections %v", c.ForeignSections)
	}
	if fmt.Sprint(c.ForeignKeys) != "[lithops.include_modules lithops.log_format]" {
		t.Errorf("foreign keys %v", c.ForeignKeys)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"lithops:\n  backedn: localhost\n", "config:2: lithops.backedn: unknown key; did you mean backend?"},
		{"localhost:\n  worker_processes: 0\n", "config:2: localhost.worker_processes: must be at least 1, got 0"},
		{"localhost:\n  runtime: python3\n", `config:2: localhost.runtime: "python3" is a Python Lithops runtime`},
		{"nosuchsection:\n  a: 1\n", "config:1: nosuchsection: unknown key"},
	} {
		if _, err := Parse("config", []byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
