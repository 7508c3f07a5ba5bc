// Package armdeploy deploys and manages lithops runtimes as Azure Function
// apps on the Flex Consumption plan, through Azure Resource Manager with the
// official Azure SDK for Go and the Kudu OneDeploy endpoint. It needs no az
// CLI.
//
// A runtime is one Flex Consumption plan (sku FC1) holding exactly one
// function app (kind "functionapp,linux") whose functionAppConfig declares a
// custom handler (runtime "custom" 1.0), the instance memory, the maximum
// instance count and the blob container the platform keeps the package in.
// [Deployer.Deploy] creates or updates the plan and the site, merges the app
// settings, uploads the zip package with OneDeploy and waits until the
// service reports the deployment complete. Running it again on an existing
// runtime updates it in place with the same calls.
//
// Invariants:
//
//   - Every plan and site this package creates is tagged type=lithops-runtime,
//     lithops-version=<version> and lithops-runtime=<runtime name>; List only
//     reports such apps, and Deploy and Delete refuse to touch an app or plan
//     of the same name that lacks the tag.
//   - A [Spec] carries no ARM credential, and Deploy rejects app settings that
//     look like one (for example AZURE_CLIENT_SECRET): workers run with the
//     app's own settings and never receive the deployer's identity.
//   - App settings that Flex Consumption does not support
//     (FUNCTIONS_WORKER_RUNTIME, WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENT*,
//     TZ, names with ':', …) are rejected in a Spec before any call; found
//     on a live app, they are dropped with a warning when Deploy merges the
//     app's settings, never written back.
//   - Instance memory is one of 512, 2048 or 4096 MB; the maximum instance
//     count is kept within Flex Consumption's 1..1000, and Deploy warns when
//     instances × memory exceed the regional quota of 512,000 MB.
//   - Missing subscription, resource group, region or names are reported
//     before any request is sent.
//   - The bearer token for the SCM (Kudu) endpoint is only sent to the app's
//     SCM host (or to the endpoint set with [WithSCMEndpoint]); URLs returned
//     by the service that point elsewhere are not followed. It is a token for
//     the App Service audience ([SCMScope]); after a 401 the rest of the
//     publish uses the classic ARM audience ([SCMFallbackScope]), once.
//   - Waiting is always bounded: by the caller's context and by the deploy
//     timeout ([WithDeployTimeout], default 10 minutes).
//
// Errors name the operation and the resource that failed and wrap the
// underlying error (an *azcore.ResponseError for ARM calls, a
// *DeploymentError for a failed OneDeploy deployment).
package armdeploy
