// Package azurefunctions is the Azure Functions compute backend: a Flex
// Consumption function app running the generic runtime host (a custom
// handler, see internal/host) that receives invocations through a storage
// queue (or HTTPS) and runs the user's program fetched by hash.
package azurefunctions
