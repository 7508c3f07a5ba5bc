package azurefunctions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/lithops-go/lithops/compute/azurefunctions/armdeploy"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
)

// ErrNoARM reports that the configuration lacks what ARM deployment needs.
var ErrNoARM = errors.New("azure_functions: ARM deployment needs azure_functions.subscription_id, resource_group and region (or the azure section)")

// ARMAuthHint is the first line of every ARM authentication error: what to
// set for Resource Manager to accept this client.
const ARMAuthHint = "azure: tenant_id / client_id / client_secret in the config, or sign in with az login for the default credential chain"

// ErrARMAuth reports that no credential for Resource Manager could be built
// or give a token. Its message is ARMAuthHint; the errors that wrap it
// (ARMAuthError) carry the credential's own error on the lines after it.
var ErrARMAuth = errors.New(ARMAuthHint)

// ARMAuthError wraps err, an error of the ARM credential, as ErrARMAuth:
// ARMAuthHint on the first line, err after it. Both match errors.Is.
func ARMAuthError(err error) error {
	return fmt.Errorf("%w\n%w", ErrARMAuth, err)
}

// CredentialChecker is a deployer that can check its credential before it
// changes anything; *armdeploy.Deployer is one.
type CredentialChecker interface {
	CheckCredential(ctx context.Context) error
}

// CheckARM acquires a token for Resource Manager with dep's credential, when
// dep is a CredentialChecker (other deployers, e.g. test doubles, pass), and
// returns a failure as an ARMAuthError. Callers run it before they create or
// delete anything, so a missing sign-in leaves no queue or record behind.
func CheckARM(ctx context.Context, dep any) error {
	c, ok := dep.(CredentialChecker)
	if !ok {
		return nil
	}
	if d, isARM := c.(*armdeploy.Deployer); isARM && d == nil {
		return nil
	}
	if err := c.CheckCredential(ctx); err != nil {
		return ARMAuthError(err)
	}
	return nil
}

// NewDeployer returns an ARM deployer from the configuration: the client
// secret of the azure section if given, else the default credential chain.
// It sends no request: CheckARM tells whether the credential works. A
// credential that cannot be built is an ARMAuthError.
func NewDeployer(cfg *config.Config, logger *slog.Logger) (*armdeploy.Deployer, error) {
	af := cfg.AzureFunctions
	if af.SubscriptionID == "" || af.ResourceGroup == "" || af.Region == "" {
		return nil, ErrNoARM
	}
	cred, err := armdeploy.Credential(cfg.Azure.TenantID, cfg.Azure.ClientID, cfg.Azure.ClientSecret)
	if err != nil {
		return nil, ARMAuthError(err)
	}
	opts := []armdeploy.Option{armdeploy.WithLogger(logger)}
	if e := cfg.Azure.ResourceManagerEndpoint; e != "" {
		opts = append(opts, armdeploy.WithClientOptions(&arm.ClientOptions{ClientOptions: policy.ClientOptions{
			Cloud: cloud.Configuration{
				ActiveDirectoryAuthorityHost: cloud.AzurePublic.ActiveDirectoryAuthorityHost,
				Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
					cloud.ResourceManager: {Endpoint: e, Audience: "https://management.core.windows.net/"},
				},
			},
		}}))
	}
	return armdeploy.New(af.SubscriptionID, cred, opts...)
}

// ConnectionString returns the storage connection string function apps use
// (AzureWebJobsStorage): the configured one, or one built from the account
// key.
func ConnectionString(a config.AzureStorage) (string, error) {
	if a.ConnectionString != "" {
		return a.ConnectionString, nil
	}
	if a.StorageAccountName != "" && a.StorageAccountKey != "" {
		return "DefaultEndpointsProtocol=https;AccountName=" + a.StorageAccountName + ";AccountKey=" + a.StorageAccountKey + ";EndpointSuffix=core.windows.net", nil
	}
	return "", errors.New("azure_functions: the function app needs a storage connection: set azure_storage.connection_string or storage_account_name and storage_account_key")
}

// AppSettings are the settings of a runtime's function app: the storage
// connection (the runtime's own identity for data), lithops settings, and
// the runtime spec's environment. Never an ARM credential.
func AppSettings(cfg *config.Config, runtime string, names Names, man *Manifest) (map[string]string, error) {
	conn, err := ConnectionString(cfg.AzureStorage)
	if err != nil {
		return nil, err
	}
	af := cfg.AzureFunctions
	s := map[string]string{}
	var userKeys []string
	for k, v := range man.Env {
		s[k] = v
		userKeys = append(userKeys, k)
	}
	sort.Strings(userKeys)
	s["LITHOPS_USER_ENV"] = strings.Join(userKeys, ",")
	for k, v := range map[string]string{
		"AzureWebJobsStorage":              conn,
		armdeploy.DeploymentStorageSetting: conn,
		"LITHOPS_STORAGE_BUCKET":           cfg.AzureStorage.StorageBucket,
		"LITHOPS_RUNTIME_NAME":             runtime,
		QueueSetting:                       names.Queue,
		"LITHOPS_RUNTIME_MEMORY":           strconv.Itoa(af.RuntimeMemory),
		"LITHOPS_RUNTIME_TIMEOUT":          strconv.Itoa(af.RuntimeTimeout),
		"LITHOPS_WORKER_PROCESSES":         strconv.Itoa(af.WorkerProcesses),
		"LITHOPS_TRIGGER":                  man.Trigger,
		"LITHOPS_VERSION":                  protocol.LithopsVersion,
	} {
		s[k] = v
	}
	return s, nil
}

// DeployRuntime creates or updates the runtime's function app from the app
// package, creates its queue, and stores its metadata once the deployed
// runtime answers a probe. It checks dep's credential (CheckARM) before it
// creates anything.
func DeployRuntime(ctx context.Context, cfg *config.Config, st *storage.Storage, svc *azqueue.ServiceClient, dep RuntimeDeployer,
	runtime string, pkg []byte, man *Manifest, progress func(string)) (*protocol.RuntimeMeta, error) {
	if progress == nil {
		progress = func(string) {}
	}
	af := cfg.AzureFunctions
	names := RuntimeNames(AccountName(cfg.AzureStorage), runtime, af.RuntimeMemory, protocol.LithopsVersion)
	settings, err := AppSettings(cfg, runtime, names, man)
	if err != nil {
		return nil, err
	}
	if err := CheckARM(ctx, dep); err != nil {
		return nil, err
	}
	progress("creating queue " + names.Queue)
	if err := EnsureQueue(ctx, svc, names.Queue); err != nil {
		return nil, err
	}
	// One container per app: Flex keeps one package per container.
	container := armdeploy.DeploymentContainerName(names.App)
	if err := st.CreateBucket(ctx, container); err != nil {
		return nil, fmt.Errorf("azure_functions: deployment container of app %s: %w", names.App, err)
	}
	endpoint := cfg.AzureStorage.Endpoint
	if endpoint == "" {
		endpoint = "https://" + AccountName(cfg.AzureStorage) + ".blob.core.windows.net"
	}
	progress(fmt.Sprintf("deploying function app %s (Flex Consumption, %d MB, up to %d instances)", names.App, af.RuntimeMemory, af.MaxWorkers))
	app, err := dep.Deploy(ctx, armdeploy.Spec{
		Name: names.App, PlanName: names.Plan, Region: af.Region, ResourceGroup: af.ResourceGroup,
		RuntimeName: runtime, Version: protocol.LithopsVersion,
		MemoryMB: af.RuntimeMemory, MaxInstances: af.MaxWorkers, TimeoutSeconds: af.RuntimeTimeout,
		AppSettings:            settings,
		DeploymentContainerURL: strings.TrimSuffix(endpoint, "/") + "/" + container,
	}, pkg)
	if err != nil {
		return nil, err
	}
	if app.DeployUnconfirmed {
		progress("the service did not report the deployment's outcome; the probe decides")
	}
	progress("waiting for " + app.Name + " to answer")
	if isHTTPS(man.Trigger) {
		kf, ok := dep.(KeyFetcher)
		if !ok {
			return nil, errors.New("azure_functions: the deployer cannot read function keys, which the https trigger needs")
		}
		key, err := kf.FunctionKey(ctx, af.ResourceGroup, app.Name)
		if err != nil {
			return nil, err
		}
		url := af.Endpoint
		if url == "" {
			url = "https://" + app.DefaultHostName + "/api/lithops_handler"
		}
		return ProbeMetadataHTTP(ctx, st, nil, url, key, runtime, af.RuntimeMemory, 5*time.Minute)
	}
	return ProbeMetadata(ctx, st, svc, names, runtime, af.RuntimeMemory, 5*time.Minute)
}

// DeleteRuntime deletes the runtime's deployment at memoryMB: app, plan,
// the app's deployment container (its package), queues and metadata. The
// container is deleted only once the app is (so never with a nil dep): a
// live app reads its package from there. With a dep, its credential is
// checked (CheckARM) before anything is deleted.
func DeleteRuntime(ctx context.Context, cfg *config.Config, st *storage.Storage, svc *azqueue.ServiceClient, dep *armdeploy.Deployer, runtime string, memoryMB int) error {
	names := RuntimeNames(AccountName(cfg.AzureStorage), runtime, memoryMB, protocol.LithopsVersion)
	if err := CheckARM(ctx, dep); err != nil {
		return err
	}
	var errs []error
	if dep != nil {
		if err := dep.Delete(ctx, cfg.AzureFunctions.ResourceGroup, names.App); err != nil {
			errs = append(errs, err)
		} else if err := deleteContainer(ctx, st, armdeploy.DeploymentContainerName(names.App)); err != nil {
			errs = append(errs, fmt.Errorf("azure_functions: deployment container of app %s: %w", names.App, err))
		}
	}
	for _, q := range []string{names.Queue, names.Queue + "-poison"} {
		if _, err := svc.DeleteQueue(ctx, q, nil); err != nil && !strings.Contains(err.Error(), "QueueNotFound") {
			errs = append(errs, fmt.Errorf("delete queue %s: %w", q, err))
		}
	}
	if err := st.Delete(ctx, st.Bucket(), protocol.RuntimeMetaKey("azure_functions", RuntimeKey(runtime, memoryMB))); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// deleteContainer deletes a blob container and what it holds: the
// container itself on Azure Blob storage, else (other drivers) its objects.
// A missing container is not an error.
func deleteContainer(ctx context.Context, st *storage.Storage, container string) error {
	if c, ok := st.Driver().(interface{ Client() *azblob.Client }); ok {
		_, err := c.Client().DeleteContainer(ctx, container, nil)
		if err != nil && !bloberror.HasCode(err, bloberror.ContainerNotFound) {
			return fmt.Errorf("delete container %s: %w", container, err)
		}
		return nil
	}
	if _, err := st.DeletePrefix(ctx, container, ""); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return nil
}
