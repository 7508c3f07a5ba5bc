// Package config loads and validates lithops-go configuration.
//
// The file format is Lithops' YAML: a `lithops` section (backend, storage,
// execution_timeout, …) and one section per backend (`localhost`,
// `azure_functions`, `azure_storage`, …). A file is found in this order:
// an explicit path (WithConfigFile), $LITHOPS_CONFIG_FILE, ./.lithops_config,
// ~/.lithops/config, /etc/lithops/config; no file at all means the embedded
// localhost default.
//
// Invariants: Load never returns a partially valid Config. Unknown keys and
// values of the wrong type are errors that name the file, the line and the
// key path (e.g. `/home/u/.lithops/config:3: lithops.execution_timeout: …`).
// Fields tagged `secret:"true"` are masked by Masked and never logged.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration.
type Config struct {
	Lithops        Lithops        `yaml:"lithops" json:"lithops"`
	Localhost      Localhost      `yaml:"localhost" json:"localhost"`
	AzureStorage   AzureStorage   `yaml:"azure_storage" json:"azure_storage"`
	AzureFunctions AzureFunctions `yaml:"azure_functions" json:"azure_functions"`
	Azure          Azure          `yaml:"azure" json:"azure"`

	// Source is the file the config was read from ("" for defaults).
	Source string `yaml:"-" json:"-"`
	// Foreign lists what the file holds for Python Lithops that lithops-go
	// does not use: sections of backends it lacks (ForeignSections) and
	// keys Lithops defines that it ignores (ForeignKeys, "section.key").
	// One config file serves both tools; clients log these once.
	ForeignSections []string `yaml:"-" json:"-"`
	ForeignKeys     []string `yaml:"-" json:"-"`
	// Warnings are problems that do not stop the program (a config file
	// with secrets that other users can read).
	Warnings []string `yaml:"-" json:"-"`
}

// Lithops is the `lithops` section.
type Lithops struct {
	Backend            string   `yaml:"backend" json:"backend"`
	Storage            string   `yaml:"storage" json:"storage"`
	Mode               string   `yaml:"mode,omitempty" json:"mode,omitempty"`
	LogLevel           string   `yaml:"log_level" json:"log_level"`
	ExecutionTimeout   float64  `yaml:"execution_timeout" json:"execution_timeout"`     // seconds per call
	DataLimit          *float64 `yaml:"data_limit" json:"data_limit"`                   // MiB of inputs per job; 0: no limit
	DataCleaner        *bool    `yaml:"data_cleaner" json:"data_cleaner"`               // delete job data on Close
	MonitoringInterval float64  `yaml:"monitoring_interval" json:"monitoring_interval"` // seconds between storage polls
	Monitoring         string   `yaml:"monitoring,omitempty" json:"monitoring,omitempty"`
	Chunksize          int      `yaml:"chunksize,omitempty" json:"chunksize,omitempty"`
	Retries            int      `yaml:"retries,omitempty" json:"retries,omitempty"`
	// LeaseTimeout is how long a running call may go without a heartbeat
	// before the client declares its worker lost (seconds; cloud backends).
	LeaseTimeout float64 `yaml:"lease_timeout" json:"lease_timeout"`
	Codec        string  `yaml:"codec" json:"codec"` // gob or json
}

// Localhost is the `localhost` section (compute and storage).
type Localhost struct {
	// Runtime is the program the workers run; empty means the client's own
	// executable.
	Runtime         string `yaml:"runtime,omitempty" json:"runtime,omitempty"`
	WorkerProcesses int    `yaml:"worker_processes" json:"worker_processes"`
	// StorageRoot is the directory that holds localhost storage buckets.
	StorageRoot   string `yaml:"storage_root" json:"storage_root"`
	StorageBucket string `yaml:"storage_bucket" json:"storage_bucket"`
	RuntimeMemory int    `yaml:"runtime_memory,omitempty" json:"runtime_memory,omitempty"` // MiB per worker; 0: unlimited
	Version       int    `yaml:"version,omitempty" json:"version,omitempty"`
}

// AzureStorage is the `azure_storage` section.
type AzureStorage struct {
	StorageAccountName string `yaml:"storage_account_name" json:"storage_account_name,omitempty"`
	StorageAccountKey  string `yaml:"storage_account_key" json:"storage_account_key,omitempty" secret:"true"`
	ConnectionString   string `yaml:"connection_string" json:"connection_string,omitempty" secret:"true"`
	SASToken           string `yaml:"sas_token" json:"sas_token,omitempty" secret:"true"`
	Endpoint           string `yaml:"endpoint" json:"endpoint,omitempty"`
	QueueEndpoint      string `yaml:"queue_endpoint" json:"queue_endpoint,omitempty"`
	StorageBucket      string `yaml:"storage_bucket" json:"storage_bucket"`
	// Credential selects the Entra ID credential used when no key, SAS or
	// connection string is set: "" for the default chain, "managedidentity"
	// for the managed identity of the Azure host (a runtime host's
	// identity-based AzureWebJobsStorage__* settings select it).
	Credential string `yaml:"credential,omitempty" json:"credential,omitempty"`
	// ClientID is the client id of the user-assigned managed identity that
	// Credential "managedidentity" uses ("" for the system-assigned one).
	ClientID string `yaml:"client_id,omitempty" json:"client_id,omitempty"`
	// ResourceGroup is the storage account's resource group, for the role
	// assignments of a keyless deploy; "" means azure_functions.resource_group.
	ResourceGroup string `yaml:"resource_group,omitempty" json:"resource_group,omitempty"`
	// MaxRetries and TryTimeout (seconds) bound how long a storage
	// operation keeps retrying transient failures before it fails.
	MaxRetries int     `yaml:"max_retries" json:"max_retries,omitempty"`
	TryTimeout float64 `yaml:"try_timeout" json:"try_timeout,omitempty"`
}

// AzureFunctions is the `azure_functions` section.
type AzureFunctions struct {
	ResourceGroup     string `yaml:"resource_group" json:"resource_group,omitempty"`
	Region            string `yaml:"region" json:"region,omitempty"`
	Location          string `yaml:"location" json:"location,omitempty"`
	SubscriptionID    string `yaml:"subscription_id" json:"subscription_id,omitempty"`
	Runtime           string `yaml:"runtime,omitempty" json:"runtime,omitempty"`
	RuntimeMemory     int    `yaml:"runtime_memory" json:"runtime_memory"`
	RuntimeTimeout    int    `yaml:"runtime_timeout" json:"runtime_timeout"`
	MaxWorkers        int    `yaml:"max_workers" json:"max_workers"`
	WorkerProcesses   int    `yaml:"worker_processes" json:"worker_processes"`
	InvokePoolThreads int    `yaml:"invoke_pool_threads" json:"invoke_pool_threads"`
	FunctionsVersion  int    `yaml:"functions_version" json:"functions_version,omitempty"`
	Trigger           string `yaml:"trigger" json:"trigger"`
	// FunctionKey authorizes HTTPS invocations (trigger: https); without it
	// the client fetches the key through ARM.
	FunctionKey string `yaml:"function_key" json:"function_key,omitempty" secret:"true"`
	// Endpoint overrides the runtime's HTTPS URL (trigger: https).
	Endpoint string `yaml:"endpoint" json:"endpoint,omitempty"`
}

// Azure is the shared `azure` section.
type Azure struct {
	SubscriptionID string `yaml:"subscription_id" json:"subscription_id,omitempty"`
	ResourceGroup  string `yaml:"resource_group" json:"resource_group,omitempty"`
	Region         string `yaml:"region" json:"region,omitempty"`
	TenantID       string `yaml:"tenant_id" json:"tenant_id,omitempty"`
	ClientID       string `yaml:"client_id" json:"client_id,omitempty"`
	ClientSecret   string `yaml:"client_secret" json:"client_secret,omitempty" secret:"true"`
	// ResourceManagerEndpoint is the Azure Resource Manager URL of a cloud
	// other than the public one (Azure Stack, a sovereign cloud, a test
	// double); "" means https://management.azure.com.
	ResourceManagerEndpoint string `yaml:"resource_manager_endpoint" json:"resource_manager_endpoint,omitempty"`
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid configuration")

// Default returns the configuration used when there is no file: localhost
// compute and storage with every default filled in.
func Default() *Config {
	c := &Config{}
	c.applyDefaults()
	return c
}

func (c *Config) applyDefaults() {
	l := &c.Lithops
	if l.Backend == "" {
		l.Backend = "localhost"
	}
	if l.Storage == "" {
		if l.Backend == "localhost" || l.Backend == "inprocess" {
			l.Storage = "localhost"
		} else {
			l.Storage = "azure_storage"
		}
	}
	if l.LogLevel == "" {
		l.LogLevel = "warning"
	}
	if l.ExecutionTimeout == 0 {
		if l.Backend == "localhost" {
			l.ExecutionTimeout = 3600
		} else {
			l.ExecutionTimeout = 1800
		}
	}
	if l.DataCleaner == nil {
		t := true
		l.DataCleaner = &t
	}
	if l.MonitoringInterval == 0 {
		l.MonitoringInterval = 2
		if l.Storage == "localhost" {
			l.MonitoringInterval = 0.5
		}
	}
	if l.Codec == "" {
		l.Codec = "gob"
	}
	if l.LeaseTimeout == 0 {
		l.LeaseTimeout = 30
	}
	if l.DataLimit == nil {
		four := 4.0
		l.DataLimit = &four
	}
	lh := &c.Localhost
	if lh.WorkerProcesses == 0 {
		lh.WorkerProcesses = runtime.NumCPU()
	}
	if lh.StorageRoot == "" {
		lh.StorageRoot = filepath.Join(os.TempDir(), "lithops-"+userName())
	}
	if lh.StorageBucket == "" {
		lh.StorageBucket = "storage"
	}
	if lh.Version == 0 {
		lh.Version = 2
	}
	az := &c.AzureStorage
	if az.StorageBucket == "" {
		az.StorageBucket = "lithops"
	}
	af := &c.AzureFunctions
	if af.Region == "" {
		af.Region = af.Location
	}
	if af.Region == "" {
		af.Region = c.Azure.Region
	}
	if af.ResourceGroup == "" {
		af.ResourceGroup = c.Azure.ResourceGroup
	}
	if af.SubscriptionID == "" {
		af.SubscriptionID = c.Azure.SubscriptionID
	}
	if af.RuntimeMemory == 0 {
		af.RuntimeMemory = 2048
	}
	if af.RuntimeTimeout == 0 {
		af.RuntimeTimeout = 300
	}
	if af.MaxWorkers == 0 {
		// As many instances as the default regional quota of instance
		// memory allows (512,000 MB per subscription and region), at most
		// Flex's 1000: a default deploy never starts over quota.
		af.MaxWorkers = 1000
		if af.RuntimeMemory > 0 {
			af.MaxWorkers = max(1, min(1000, 512000/af.RuntimeMemory))
		}
	}
	if af.WorkerProcesses == 0 {
		af.WorkerProcesses = 1
	}
	if af.InvokePoolThreads == 0 {
		af.InvokePoolThreads = 64
	}
	if af.Trigger == "" {
		af.Trigger = "pub/sub"
	}
}

func userName() string {
	for _, k := range []string{"USER", "USERNAME"} {
		if u := os.Getenv(k); u != "" {
			return u
		}
	}
	return "root"
}

// Validate checks values after defaults are applied. Errors name the key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if c.Source != "" {
			errs = append(errs, fmt.Errorf("%w: %s: %s: %s", ErrInvalid, c.Source, key, msg))
		} else {
			errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalid, key, msg))
		}
	}
	if !contains(ComputeBackends, c.Lithops.Backend) {
		bad("lithops.backend", "unknown compute backend %q (known: %s)", c.Lithops.Backend, strings.Join(ComputeBackends, ", "))
	}
	if !contains(StorageBackends, c.Lithops.Storage) {
		bad("lithops.storage", "unknown storage backend %q (known: %s)", c.Lithops.Storage, strings.Join(StorageBackends, ", "))
	}
	if c.Lithops.Backend == "azure_functions" && c.Lithops.Storage == "localhost" {
		bad("lithops.storage", "localhost storage cannot be used with the %s backend: its workers cannot reach this machine's disk", c.Lithops.Backend)
	}
	if c.Lithops.ExecutionTimeout < 0 {
		bad("lithops.execution_timeout", "must be a positive number of seconds, got %v", c.Lithops.ExecutionTimeout)
	}
	if c.Lithops.MonitoringInterval < 0 {
		bad("lithops.monitoring_interval", "must be a positive number of seconds, got %v", c.Lithops.MonitoringInterval)
	}
	if *c.Lithops.DataLimit < 0 {
		bad("lithops.data_limit", "must be ≥ 0 MiB (0: no limit), got %v", *c.Lithops.DataLimit)
	}
	if c.Lithops.LeaseTimeout < 1 {
		bad("lithops.lease_timeout", "must be at least 1 second, got %v", c.Lithops.LeaseTimeout)
	}
	if c.Lithops.Retries < 0 {
		bad("lithops.retries", "must be ≥ 0, got %d", c.Lithops.Retries)
	}
	switch c.Lithops.Codec {
	case "gob", "json":
	default:
		bad("lithops.codec", "unknown codec %q (known: gob, json)", c.Lithops.Codec)
	}
	switch strings.ToLower(c.Lithops.LogLevel) {
	case "debug", "info", "warning", "warn", "error", "critical":
	default:
		bad("lithops.log_level", "unknown level %q (known: debug, info, warning, error, critical)", c.Lithops.LogLevel)
	}
	if c.Localhost.WorkerProcesses < 0 || c.Localhost.WorkerProcesses > 1024 {
		bad("localhost.worker_processes", "must be between 1 and 1024, got %d", c.Localhost.WorkerProcesses)
	}
	if c.Localhost.RuntimeMemory < 0 {
		bad("localhost.runtime_memory", "must be ≥ 0 MiB, got %d", c.Localhost.RuntimeMemory)
	}
	switch c.AzureFunctions.RuntimeMemory {
	case 512, 2048, 4096:
	default:
		bad("azure_functions.runtime_memory", "Flex Consumption offers 512, 2048 or 4096 MB, got %d", c.AzureFunctions.RuntimeMemory)
	}
	if c.AzureFunctions.MaxWorkers < 1 || c.AzureFunctions.MaxWorkers > 1000 {
		bad("azure_functions.max_workers", "must be between 1 and 1000, got %d", c.AzureFunctions.MaxWorkers)
	}
	if e := c.Azure.ResourceManagerEndpoint; e != "" {
		if u, err := url.Parse(e); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("azure.resource_manager_endpoint", "must be an https:// URL, got %q", e)
		}
	}
	switch c.AzureFunctions.Trigger {
	case "pub/sub", "queue", "https", "http":
	default:
		bad("azure_functions.trigger", "unknown trigger %q (known: pub/sub, https)", c.AzureFunctions.Trigger)
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Find returns the config file to use, following the lookup order, or ""
// when there is none.
func Find() string {
	if p := os.Getenv("LITHOPS_CONFIG_FILE"); p != "" {
		return p
	}
	candidates := []string{".lithops_config"}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, ".lithops", "config"))
	}
	candidates = append(candidates, "/etc/lithops/config")
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

// Load reads the file at path ("" means: Find one; none found means the
// defaults), applies defaults and validates.
func Load(path string) (*Config, error) {
	if path == "" {
		path = Find()
	}
	if path == "" {
		return Default(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 && len(c.Secrets()) > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("config file %s holds secrets and is readable by other users (mode %v): chmod 600 %s", path, fi.Mode().Perm(), path))
	}
	return c, nil
}

// Parse decodes YAML data (named name in errors), applies defaults and
// validates.
func Parse(name string, data []byte) (*Config, error) {
	c := &Config{Source: name}
	if len(bytes.TrimSpace(data)) > 0 {
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
		}
		if len(doc.Content) > 0 {
			if err := decodeStrict(doc.Content[0], reflect.ValueOf(c).Elem(), "", name, c); err != nil {
				return nil, err
			}
		}
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeStrict walks a mapping node into a struct, rejecting unknown keys and
// wrapping type errors with file, line and key path.
func decodeStrict(n *yaml.Node, v reflect.Value, path, file string, c *Config) error {
	at := func(n *yaml.Node, key, format string, args ...any) error {
		return fmt.Errorf("%w: %s:%d: %s: %s", ErrInvalid, file, n.Line, key, fmt.Sprintf(format, args...))
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		key := path
		if key == "" {
			key = "(top level)"
		}
		return at(n, key, "want a mapping of keys, got %s", kindName(n))
	}
	t := v.Type()
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		key := kn.Value
		full := key
		if path != "" {
			full = path + "." + key
		}
		fi := -1
		for j := 0; j < t.NumField(); j++ {
			if name, _, _ := strings.Cut(t.Field(j).Tag.Get("yaml"), ","); name == key && name != "-" {
				fi = j
				break
			}
		}
		if fi < 0 {
			// One file for both tools: what Python Lithops defines is
			// accepted and noted; only a key neither knows is an error.
			switch {
			case path == "" && lithopsSections[key]:
				c.ForeignSections = append(c.ForeignSections, key)
				continue
			case lithopsKeys[full]:
				c.ForeignKeys = append(c.ForeignKeys, full)
				continue
			}
			msg := fmt.Sprintf("unknown key (known: %s)", strings.Join(knownKeys(t), ", "))
			if near := closest(key, knownKeys(t)); near != "" {
				msg = fmt.Sprintf("unknown key; did you mean %s? (known: %s)", near, strings.Join(knownKeys(t), ", "))
			}
			return at(kn, full, "%s", msg)
		}
		fv := v.Field(fi)
		if fv.Kind() == reflect.Struct {
			if err := decodeStrict(vn, fv, full, file, c); err != nil {
				return err
			}
			continue
		}
		if vn.Kind != yaml.ScalarNode {
			return at(vn, full, "want a single value, got %s", kindName(vn))
		}
		if vn.Tag == "!!null" {
			continue
		}
		if full == "lithops.data_limit" && vn.Tag == "!!bool" && vn.Value != "" && strings.EqualFold(vn.Value, "false") {
			// Lithops documents "Set to False for unlimited size".
			zero := 0.0
			fv.Set(reflect.ValueOf(&zero))
			continue
		}
		if k := fv.Kind(); (k == reflect.Int || k == reflect.Int64) && vn.Tag != "!!int" {
			return at(vn, full, "want %s, got %q", typeName(fv.Type()), vn.Value)
		}
		if err := vn.Decode(fv.Addr().Interface()); err != nil {
			return at(vn, full, "want %s, got %q", typeName(fv.Type()), vn.Value)
		}
		// Values that cannot work, said where they are (a zero here would
		// otherwise silently become the default).
		switch {
		case positiveKeys[full] && fv.Kind() == reflect.Int && fv.Int() <= 0:
			return at(vn, full, "must be at least 1, got %d (leave it out for the default)", fv.Int())
		case full == "localhost.runtime" && (strings.HasPrefix(vn.Value, "python") || strings.Contains(vn.Value, ":")):
			return at(vn, full, "%q is a Python Lithops runtime; lithops-go's localhost backend runs a Go program: give the path of a lithops program, or leave it out to run this one", vn.Value)
		}
	}
	return nil
}

// positiveKeys must be at least 1 when given.
var positiveKeys = map[string]bool{
	"localhost.worker_processes": true, "azure_functions.worker_processes": true,
	"azure_functions.max_workers": true, "azure_functions.invoke_pool_threads": true,
}

// lithopsSections are the top-level sections of Python Lithops' config for
// backends lithops-go does not have (its docs' config reference).
var lithopsSections = map[string]bool{}

func init() {
	for _, s := range strings.Fields(`aws aws_lambda aws_batch aws_ec2 aws_s3 ibm ibm_cf ibm_cos code_engine
		gcp gcp_functions gcp_cloudrun gcp_batch gcp_storage azure_containers azure_vms aliyun aliyun_fc
		aliyun_oss oracle oracle_f oracle_oss k8s knative openwhisk one singularity ceph minio redis
		infinispan infinispan_hotrod swift vm standalone tencent cloudrun ibm_vpc ibm_ssh
		gcp_compute_engine rabbitmq prometheus`) {
		lithopsSections[s] = true
	}
}

// lithopsKeys are keys Python Lithops defines in sections lithops-go reads
// but that it does not use.
var lithopsKeys = map[string]bool{
	"lithops.mode": true, "lithops.include_modules": true, "lithops.exclude_modules": true,
	"lithops.log_format": true, "lithops.log_stream": true, "lithops.log_filename": true,
	"lithops.customized_runtime": true, "lithops.worker_processes": true, "lithops.monitoring": true,
	"lithops.rabbitmq_monitor": true, "lithops.invoke_pool_threads": true, "lithops.telemetry": true,
	"localhost.version_check": true, "azure_storage.region": true,
	"azure_functions.invoke_pool_threads_per_worker": true, "azure_functions.runtime_include_function": true,
}

// closest returns the known key nearest to key (edit distance ≤ 2), or "".
func closest(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func knownKeys(t reflect.Type) []string {
	var ks []string
	for j := 0; j < t.NumField(); j++ {
		if name, _, _ := strings.Cut(t.Field(j).Tag.Get("yaml"), ","); name != "" && name != "-" {
			ks = append(ks, name)
		}
	}
	return ks
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func typeName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	}
	return t.String()
}

// Masked returns a copy of c with every secret field replaced by "****"
// (empty secrets stay empty so the reader sees what is unset).
func (c *Config) Masked() *Config {
	m := *c
	maskStruct(reflect.ValueOf(&m).Elem())
	return &m
}

func maskStruct(v reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := v.Field(i)
		switch {
		case f.Kind() == reflect.Struct:
			maskStruct(f)
		case t.Field(i).Tag.Get("secret") == "true" && f.Kind() == reflect.String && f.String() != "":
			f.SetString("****")
		}
	}
}

// Secrets returns every non-empty secret value in c, for leak checks.
func (c *Config) Secrets() []string {
	var out []string
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := v.Field(i)
			switch {
			case f.Kind() == reflect.Struct:
				walk(f)
			case t.Field(i).Tag.Get("secret") == "true" && f.Kind() == reflect.String && f.String() != "":
				out = append(out, f.String())
			}
		}
	}
	walk(reflect.ValueOf(c).Elem())
	return out
}

// YAML renders c (callers mask it first when printing).
func (c *Config) YAML() ([]byte, error) { return yaml.Marshal(c) }
