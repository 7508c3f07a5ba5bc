// Package azurefunctions is the Azure Functions compute backend: a Flex
// Consumption function app running the generic runtime host (a custom
// handler, see internal/host) that receives invocations through a storage
// queue (or HTTPS) and runs the user's program fetched by hash. Importing
// the package registers the azure_functions backend (compute.Register);
// programs import github.com/lithops-go/lithops/azure, which also links
// azure_storage and the runtime host.
package azurefunctions
