// Package appsettings names every app setting and platform environment
// variable that lithops-go reads or writes on Azure Functions: the settings
// of a runtime's function app (written by the deployer, read by the
// Functions host and by the runtime host), the variables the platform sets
// for a custom handler, and the settings Flex Consumption refuses. Every
// package that reads or writes one of them uses these constants, so that a
// name is spelled in one place.
//
// App settings reach the runtime host as environment variables of the
// same name. The Functions host matches names without regard to letter
// case and reads ':' for "__" (Lookup does the same).
package appsettings

import (
	"os"
	"strings"
)

// Storage connection of the Functions host (queue triggers, keys, leases),
// also the runtime host's storage unless LithopsConfigJSON is set.
const (
	// HostStorage is the Functions host's storage connection string
	// (keyed runtimes). The queue trigger's binding names it as its
	// connection.
	HostStorage = "AzureWebJobsStorage"
	// HostStorageAccountName is the account of an identity-based
	// connection (keyless runtimes); the host derives the service URIs.
	HostStorageAccountName = HostStorage + "__accountName"
	// HostStorageBlobURI is the blob service URI of an identity-based
	// connection, set instead of HostStorageAccountName when the
	// configuration names an endpoint.
	HostStorageBlobURI = HostStorage + "__blobServiceUri"
	// HostStorageQueueURI is the queue service URI of an identity-based
	// connection, set with HostStorageBlobURI.
	HostStorageQueueURI = HostStorage + "__queueServiceUri"
	// HostStorageCredential is the credential kind of an identity-based
	// connection: "managedidentity".
	HostStorageCredential = HostStorage + "__credential"
	// HostStorageClientID is the client id of the user-assigned managed
	// identity of an identity-based connection.
	HostStorageClientID = HostStorage + "__clientId"
	// IdentityPrefix starts every identity-based HostStorage setting.
	IdentityPrefix = HostStorage + "__"
)

// Settings of the platform that lithops-go writes.
const (
	// DeploymentStorage holds the connection string of the storage account
	// of the app's deployment container; the platform reads the app
	// package from there (keyed runtimes only).
	DeploymentStorage = "DEPLOYMENT_STORAGE_CONNECTION_STRING"
	// FunctionTimeout overrides host.json's functionTimeout; the deployer
	// sets it from the runtime timeout unless the spec sets it itself.
	FunctionTimeout = "AzureFunctionsJobHost__functionTimeout"
)

// Environment the Functions host gives a custom handler.
const (
	// CustomHandlerPort is the port the handler listens on (127.0.0.1). A
	// lithops program started with it set, not in worker mode, is a
	// runtime host.
	CustomHandlerPort = "FUNCTIONS_CUSTOMHANDLER_PORT"
	// HTTPWorkerPort is the older name of CustomHandlerPort.
	HTTPWorkerPort = "FUNCTIONS_HTTPWORKER_PORT"
	// CustomHandlerWorkerID identifies the handler process.
	CustomHandlerWorkerID = "FUNCTIONS_CUSTOMHANDLER_WORKER_ID"
	// AppRootPath is the directory of the unpacked app package.
	AppRootPath = "FUNCTIONS_APP_ROOT_PATH"
)

// Managed-identity endpoint the platform hands to the sandbox (App
// Service: IDENTITY_*; older hosts: MSI_*). Workers of a keyless runtime
// host need them to open storage.
const (
	IdentityEndpoint = "IDENTITY_ENDPOINT" // token endpoint URL
	IdentityHeader   = "IDENTITY_HEADER"   // secret sent as X-IDENTITY-HEADER
	MSIEndpoint      = "MSI_ENDPOINT"      // older name of IdentityEndpoint
	MSISecret        = "MSI_SECRET"        // older name of IdentityHeader
)

// ManagedIdentityEnv are the managed-identity variables, in the order the
// runtime host passes them on to its workers.
var ManagedIdentityEnv = []string{IdentityEndpoint, IdentityHeader, MSIEndpoint, MSISecret}

// Settings of lithops-go, written by the deployer (deploy.AppSettings) and
// read by the runtime host (azurefunctions.Serve).
const (
	// Queue is the runtime's trigger queue; function.json's queue binding
	// reads it as %LITHOPS_QUEUE%.
	Queue = "LITHOPS_QUEUE"
	// StorageBucket is the bucket (container) of lithops records.
	StorageBucket = "LITHOPS_STORAGE_BUCKET"
	// RuntimeName is the runtime's name.
	RuntimeName = "LITHOPS_RUNTIME_NAME"
	// RuntimeMemory is the instance memory in MB.
	RuntimeMemory = "LITHOPS_RUNTIME_MEMORY"
	// RuntimeTimeout is the function timeout in seconds.
	RuntimeTimeout = "LITHOPS_RUNTIME_TIMEOUT"
	// WorkerProcesses is how many calls an instance runs at once.
	WorkerProcesses = "LITHOPS_WORKER_PROCESSES"
	// Trigger is the runtime's trigger: "pub/sub" (queue) or "https".
	Trigger = "LITHOPS_TRIGGER"
	// Version is the lithops-go version of the deployment.
	Version = "LITHOPS_VERSION"
	// UserEnv lists, comma separated, the settings that come from the
	// runtime spec's env: the only settings workers inherit.
	UserEnv = "LITHOPS_USER_ENV"
)

// Settings the runtime host reads that the deployer does not write (tests,
// test doubles and manual overrides).
const (
	// LithopsConfigJSON is a whole lithops configuration (JSON); set, it
	// replaces the storage settings above.
	LithopsConfigJSON = "LITHOPS_CONFIG_JSON"
	// WorkerMemoryMB overrides each worker's memory limit in MB (default:
	// its share of RuntimeMemory, less headroom). It is also the worker
	// process's own variable of the same name.
	WorkerMemoryMB = "LITHOPS_WORKER_MEMORY_MB"
	// HostCache is the runtime host's program cache directory.
	HostCache = "LITHOPS_HOST_CACHE"
)

// Reserved reports whether a runtime spec may not set name as its env:
// the platform's FUNCTIONS_* and WEBSITE_* settings and HostStorage belong
// to the platform or to lithops-go.
func Reserved(name string) bool {
	return strings.HasPrefix(name, "FUNCTIONS_") || strings.HasPrefix(name, "WEBSITE_") || name == HostStorage
}

// FlexUnsupported are app settings Flex Consumption rejects or replaces
// with functionAppConfig or site properties ("Flex Consumption plan
// deprecations" in the app settings reference); prefixes end in '*'. The
// deployer refuses them in a spec and drops them from a live app. Names
// containing ':' are refused as well.
var FlexUnsupported = []string{
	"FUNCTIONS_WORKER_RUNTIME",
	"FUNCTIONS_WORKER_RUNTIME_VERSION",
	"FUNCTIONS_EXTENSION_VERSION",
	"FUNCTIONS_MAX_HTTP_CONCURRENCY",
	"FUNCTIONS_WORKER_PROCESS_COUNT",
	"FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
	"WEBSITE_RUN_FROM_PACKAGE",
	"WEBSITE_CONTENT*",
	"WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
	"WEBSITE_NODE_DEFAULT_VERSION",
	"WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
	"WEBSITE_TIME_ZONE",
	"TZ",
	"WEBSITE_DNS_SERVER",
	"WEBSITE_VNET_ROUTE_ALL",
	"SCM_DO_BUILD_DURING_DEPLOYMENT",
	"ENABLE_ORYX_BUILD",
}

// Lookup returns the app setting name from the environment; like the
// Functions host it accepts any letter case and ':' for "__".
func Lookup(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	alt := strings.ReplaceAll(name, "__", ":")
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if v != "" && (strings.EqualFold(k, name) || strings.EqualFold(k, alt)) {
			return v
		}
	}
	return ""
}
