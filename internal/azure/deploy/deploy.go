// Package deploy deploys, probes and deletes the function apps of lithops
// runtimes: it turns the configuration into an armdeploy.Spec (app settings,
// keyed or keyless storage, the managed identity and its roles), creates the
// trigger queue and the app's package container, deploys through a
// Deployer (armdeploy's Resource Manager one, or a test double), and stores
// the runtime's metadata once the deployed runtime answers a probe through
// its own trigger. A runtime is not deployed until its metadata is in
// storage (ReadMeta, ErrNotDeployed).
//
// No ARM credential ever reaches an app setting; a credential is checked
// (CheckARM) before anything is created or deleted, so a missing sign-in
// leaves nothing behind.
package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
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
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/internal/azure/build"
	"github.com/lithops-go/lithops/internal/azure/deploy/armdeploy"
	"github.com/lithops-go/lithops/internal/azure/httptrigger"
	"github.com/lithops-go/lithops/internal/azure/naming"
	"github.com/lithops-go/lithops/internal/azure/queues"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	azblobdriver "github.com/lithops-go/lithops/storage/azblob"
)

// ErrNoARM reports that the configuration lacks what ARM deployment needs.
var ErrNoARM = errors.New("azure_functions: ARM deployment needs azure_functions.subscription_id, resource_group and region (or the azure section)")

// Deployer creates or updates a runtime's function app; the Resource
// Manager implementation is *armdeploy.Deployer.
type Deployer interface {
	Deploy(ctx context.Context, spec armdeploy.Spec, zip []byte) (*armdeploy.App, error)
}

// KeyFetcher is the optional part of a Deployer that reads a function
// app's key, which the HTTPS trigger needs (*armdeploy.Deployer has it).
type KeyFetcher interface {
	FunctionKey(ctx context.Context, resourceGroup, app string) (string, error)
}

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

// NewARM returns an ARM deployer from the configuration: the client
// secret of the azure section if given, else the default credential chain.
// It sends no request: CheckARM tells whether the credential works. A
// credential that cannot be built is an ARMAuthError.
func NewARM(cfg *config.Config, logger *slog.Logger) (*armdeploy.Deployer, error) {
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

// Keyless reports whether the storage configuration has no key to give a
// function app (no connection string, account key or SAS: the client
// signs in with Entra ID). A runtime deployed from it is keyless: a
// user-assigned managed identity with data roles on the account, and
// identity-based app settings.
func Keyless(a config.AzureStorage) bool {
	return a.ConnectionString == "" && a.StorageAccountKey == "" && a.SASToken == ""
}

// IdentityDeployer is the part of a Deployer that deploys keyless
// runtimes; *armdeploy.Deployer is one.
type IdentityDeployer interface {
	EnsureIdentity(ctx context.Context, resourceGroup, region, name string) (*armdeploy.ManagedIdentity, error)
	StorageAccountID(resourceGroup, account string) string
	AssignRoles(ctx context.Context, scope, principalID string, roles ...string) (bool, error)
}

var _ IdentityDeployer = (*armdeploy.Deployer)(nil)

// storageAccountName returns the account of a, from its name or its blob
// endpoint (https://<account>.blob.<suffix>, or path-style
// http://host:port/<account> as Azurite's).
func storageAccountName(a config.AzureStorage) string {
	if n := naming.Account(a); n != "" {
		return n
	}
	u, err := url.Parse(a.Endpoint)
	if err != nil || u.Host == "" {
		return ""
	}
	if acct, _, ok := strings.Cut(u.Hostname(), ".blob."); ok {
		return acct
	}
	first, _, _ := strings.Cut(strings.Trim(u.Path, "/"), "/")
	return first
}

// identitySettings are the identity-based AzureWebJobsStorage__* settings
// of a keyless runtime: the account name, or the service URIs when the
// configuration names an endpoint (never both: the host prefers the
// name), the managed identity credential and its client id.
func identitySettings(a config.AzureStorage, id *armdeploy.ManagedIdentity) (map[string]string, error) {
	s := map[string]string{
		appsettings.HostStorageCredential: azblobdriver.CredentialManagedIdentity,
		appsettings.HostStorageClientID:   id.ClientID,
	}
	if a.Endpoint == "" {
		s[appsettings.HostStorageAccountName] = storageAccountName(a)
		return s, nil
	}
	q := a.QueueEndpoint
	if q == "" && strings.Contains(a.Endpoint, ".blob.") {
		q = strings.Replace(a.Endpoint, ".blob.", ".queue.", 1)
	}
	if q == "" {
		return nil, errors.New("azure_functions: a keyless runtime on azure_storage.endpoint needs azure_storage.queue_endpoint too")
	}
	s[appsettings.HostStorageBlobURI], s[appsettings.HostStorageQueueURI] = a.Endpoint, q
	return s, nil
}

// AppSettings are the settings of a runtime's function app: the storage
// connection (the runtime's own identity for data), lithops settings, and
// the runtime spec's environment. Never an ARM credential. With id (a
// keyless runtime) the storage connection is identity-based
// (AzureWebJobsStorage__*) and no setting holds a key; without, it is a
// connection string.
func AppSettings(cfg *config.Config, runtime string, names naming.Names, man *build.Manifest, id *armdeploy.ManagedIdentity) (map[string]string, error) {
	storageSettings := map[string]string{}
	if id != nil {
		ss, err := identitySettings(cfg.AzureStorage, id)
		if err != nil {
			return nil, err
		}
		storageSettings = ss
	} else {
		conn, err := ConnectionString(cfg.AzureStorage)
		if err != nil {
			return nil, err
		}
		storageSettings[appsettings.HostStorage] = conn
		storageSettings[appsettings.DeploymentStorage] = conn
	}
	af := cfg.AzureFunctions
	s := map[string]string{}
	var userKeys []string
	for k, v := range man.Env {
		s[k] = v
		userKeys = append(userKeys, k)
	}
	sort.Strings(userKeys)
	s[appsettings.UserEnv] = strings.Join(userKeys, ",")
	maps.Copy(s, storageSettings)
	for k, v := range map[string]string{
		appsettings.StorageBucket:   cfg.AzureStorage.StorageBucket,
		appsettings.RuntimeName:     runtime,
		appsettings.Queue:           names.Queue,
		appsettings.RuntimeMemory:   strconv.Itoa(af.RuntimeMemory),
		appsettings.RuntimeTimeout:  strconv.Itoa(af.RuntimeTimeout),
		appsettings.WorkerProcesses: strconv.Itoa(af.WorkerProcesses),
		appsettings.Trigger:         man.Trigger,
		appsettings.Version:         protocol.LithopsVersion,
	} {
		s[k] = v
	}
	return s, nil
}

// Runtime creates or updates the runtime's function app from the app
// package, creates its queue, and stores its metadata once the deployed
// runtime answers a probe. It checks dep's credential (CheckARM) before it
// creates anything.
func Runtime(ctx context.Context, cfg *config.Config, st *storage.Storage, svc *azqueue.ServiceClient, dep Deployer,
	runtime string, pkg []byte, man *build.Manifest, progress func(string)) (*protocol.RuntimeMeta, error) {
	if progress == nil {
		progress = func(string) {}
	}
	af := cfg.AzureFunctions
	names := naming.Runtime(naming.Account(cfg.AzureStorage), runtime, af.RuntimeMemory, protocol.LithopsVersion)
	if err := CheckARM(ctx, dep); err != nil {
		return nil, err
	}
	var id *armdeploy.ManagedIdentity
	freshRoles := false
	if Keyless(cfg.AzureStorage) {
		var err error
		if id, freshRoles, err = keylessIdentity(ctx, cfg, dep, progress); err != nil {
			return nil, err
		}
	}
	settings, err := AppSettings(cfg, runtime, names, man, id)
	if err != nil {
		return nil, err
	}
	progress("creating queue " + names.Queue)
	if err := queues.Ensure(ctx, svc, names.Queue); err != nil {
		return nil, err
	}
	// One container per app: Flex keeps one package per container.
	container := armdeploy.DeploymentContainerName(names.App)
	if err := st.CreateBucket(ctx, container); err != nil {
		return nil, fmt.Errorf("azure_functions: deployment container of app %s: %w", names.App, err)
	}
	endpoint := cfg.AzureStorage.Endpoint
	if endpoint == "" {
		endpoint = "https://" + naming.Account(cfg.AzureStorage) + ".blob.core.windows.net"
	}
	progress(fmt.Sprintf("deploying function app %s (Flex Consumption, %d MB, up to %d instances)", names.App, af.RuntimeMemory, af.MaxWorkers))
	app, err := dep.Deploy(ctx, armdeploy.Spec{
		Name: names.App, PlanName: names.Plan, Region: af.Region, ResourceGroup: af.ResourceGroup,
		RuntimeName: runtime, Version: protocol.LithopsVersion,
		MemoryMB: af.RuntimeMemory, MaxInstances: af.MaxWorkers, TimeoutSeconds: af.RuntimeTimeout,
		AppSettings:            settings,
		Identity:               id,
		DeploymentContainerURL: strings.TrimSuffix(endpoint, "/") + "/" + container,
	}, pkg)
	if err != nil {
		return nil, err
	}
	if app.DeployUnconfirmed {
		progress("the service did not report the deployment's outcome; the probe decides")
	}
	progress("waiting for " + app.Name + " to answer")
	if httptrigger.Is(man.Trigger) {
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
		// An app whose identity cannot read storage yet fails its
		// invocations: any failure may be the roles' delay.
		retry := func(error) bool { return ctx.Err() == nil }
		return probeAfterRoles(freshRoles, progress, retry, func(timeout time.Duration) (*protocol.RuntimeMeta, error) {
			return ProbeHTTP(ctx, st, nil, url, key, runtime, af.RuntimeMemory, timeout)
		})
	}
	retry := func(err error) bool { return errors.Is(err, ErrNoAnswer) }
	return probeAfterRoles(freshRoles, progress, retry, func(timeout time.Duration) (*protocol.RuntimeMeta, error) {
		return Probe(ctx, st, svc, names, runtime, af.RuntimeMemory, timeout)
	})
}

// probeWaits are the timeouts of the successive first probes of a runtime
// whose identity has just been given its roles: Azure takes up to about
// ten minutes to make a new role assignment effective, and until then the
// app cannot read its queue.
var probeWaits = []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute}

// probeAfterRoles runs probe with the usual 5-minute timeout, or, after
// fresh role assignments, with the growing probeWaits timeouts while its
// failures are retryable, saying (progress) why it waits before each new
// try.
func probeAfterRoles(fresh bool, progress func(string), retryable func(error) bool, probe func(time.Duration) (*protocol.RuntimeMeta, error)) (*protocol.RuntimeMeta, error) {
	if !fresh {
		return probe(5 * time.Minute)
	}
	var waited time.Duration
	for i, w := range probeWaits {
		m, err := probe(w)
		if err == nil || !retryable(err) || i == len(probeWaits)-1 {
			return m, err
		}
		waited += w
		progress(fmt.Sprintf("no answer after %s: new role assignments can take several minutes to take effect; probing again (up to %s)", waited, probeWaits[i+1]))
	}
	return nil, ErrNoAnswer // not reached
}

// keylessIdentity creates or reuses the managed identity of the storage
// account's keyless runtimes and gives it the data roles on the account.
// It reports whether any role assignment is new.
func keylessIdentity(ctx context.Context, cfg *config.Config, dep Deployer, progress func(string)) (*armdeploy.ManagedIdentity, bool, error) {
	idep, ok := dep.(IdentityDeployer)
	if !ok || dep == nil {
		return nil, false, errors.New("azure_functions: azure_storage has no key (Entra ID), so the runtime must be keyless, but the deployer cannot create managed identities")
	}
	if d, isARM := dep.(*armdeploy.Deployer); isARM && d == nil {
		return nil, false, ErrNoARM
	}
	af := cfg.AzureFunctions
	account := storageAccountName(cfg.AzureStorage)
	if account == "" {
		return nil, false, errors.New("azure_functions: a keyless runtime needs azure_storage.storage_account_name (the account its identity gets roles on)")
	}
	rg := cmp.Or(cfg.AzureStorage.ResourceGroup, af.ResourceGroup)
	progress("keyless storage: managed identity " + naming.Identity(account))
	id, err := idep.EnsureIdentity(ctx, af.ResourceGroup, af.Region, naming.Identity(account))
	if err != nil {
		return nil, false, err
	}
	progress(fmt.Sprintf("assigning Storage Blob Data Owner and Storage Queue Data Contributor on account %s (resource group %s)", account, rg))
	fresh, err := idep.AssignRoles(ctx, idep.StorageAccountID(rg, account), id.PrincipalID, armdeploy.StorageRoles...)
	if err != nil {
		return nil, false, fmt.Errorf("azure_functions: roles of managed identity %s on storage account %s: %w", naming.Identity(account), account, err)
	}
	return id, fresh, nil
}

// Delete deletes the runtime's deployment at memoryMB: app, plan,
// the app's deployment container (its package), queues and metadata. The
// container is deleted only once the app is (so never with a nil dep): a
// live app reads its package from there. With a dep, its credential is
// checked (CheckARM) before anything is deleted.
func Delete(ctx context.Context, cfg *config.Config, st *storage.Storage, svc *azqueue.ServiceClient, dep *armdeploy.Deployer, runtime string, memoryMB int) error {
	names := naming.Runtime(naming.Account(cfg.AzureStorage), runtime, memoryMB, protocol.LithopsVersion)
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
	for _, q := range []string{names.Queue, naming.PoisonQueue(names.Queue)} {
		if _, err := svc.DeleteQueue(ctx, q, nil); err != nil && !strings.Contains(err.Error(), "QueueNotFound") {
			errs = append(errs, fmt.Errorf("delete queue %s: %w", q, err))
		}
	}
	if err := st.Delete(ctx, st.Bucket(), protocol.RuntimeMetaKey("azure_functions", naming.Key(runtime, memoryMB))); err != nil {
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
