package armdeploy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"
)

// Built-in role definitions (their GUIDs are the same in every tenant) that
// a keyless runtime's identity gets on the storage account, as in
// Microsoft's Flex Consumption samples: blob data for the deployment
// container, programs, jobs and the Functions host's own blobs; queue data
// for the trigger, completion and poison queues.
const (
	// RoleStorageBlobDataOwner is "Storage Blob Data Owner".
	RoleStorageBlobDataOwner = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
	// RoleStorageQueueDataContributor is "Storage Queue Data Contributor".
	RoleStorageQueueDataContributor = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
)

// RoleNames names the role definitions this package assigns, for messages.
var RoleNames = map[string]string{
	RoleStorageBlobDataOwner:        "Storage Blob Data Owner",
	RoleStorageQueueDataContributor: "Storage Queue Data Contributor",
}

// StorageRoles are the roles a keyless runtime's identity needs on the
// storage account.
var StorageRoles = []string{RoleStorageBlobDataOwner, RoleStorageQueueDataContributor}

// ManagedIdentity is a user-assigned managed identity.
type ManagedIdentity struct {
	// ResourceID is the identity's ARM resource id
	// (/subscriptions/…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>).
	ResourceID string
	// ClientID is its application (client) id: the app setting
	// AzureWebJobsStorage__clientId and the client_id of token requests.
	ClientID string
	// PrincipalID is its service principal's object id, the principal of
	// role assignments.
	PrincipalID string
}

var identityNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{2,127}$`)

// EnsureIdentity returns the user-assigned managed identity name in the
// resource group, creating it in region (tagged type=lithops-runtime) when
// it does not exist. An existing identity is reused as it is.
func (d *Deployer) EnsureIdentity(ctx context.Context, resourceGroup, region, name string) (*ManagedIdentity, error) {
	if err := checkResourceGroup(resourceGroup); err != nil {
		return nil, err
	}
	if !identityNameRE.MatchString(name) {
		return nil, invalid("managed identity name %q: want 3–128 letters, digits, '-' or '_', starting with a letter or digit", name)
	}
	got, err := d.identities.Get(ctx, resourceGroup, name, nil)
	switch {
	case err == nil:
		d.log.Info("reusing managed identity", "identity", name, "resource_group", resourceGroup)
		return identityOf(got.Identity, d.subscriptionID, resourceGroup, name)
	case !isNotFound(err):
		return nil, fmt.Errorf("get managed identity %s in resource group %s: %w", name, resourceGroup, err)
	}
	if region == "" {
		return nil, invalid("region of managed identity %s is not set", name)
	}
	d.log.Info("creating managed identity", "identity", name, "resource_group", resourceGroup, "region", region)
	resp, err := d.identities.CreateOrUpdate(ctx, resourceGroup, name, armmsi.Identity{
		Location: to.Ptr(region),
		Tags:     map[string]*string{TagType: to.Ptr(TagTypeRuntime)},
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("create managed identity %s in resource group %s: %w", name, resourceGroup, err)
	}
	return identityOf(resp.Identity, d.subscriptionID, resourceGroup, name)
}

func identityOf(id armmsi.Identity, sub, rg, name string) (*ManagedIdentity, error) {
	m := &ManagedIdentity{ResourceID: deref(id.ID)}
	if m.ResourceID == "" {
		m.ResourceID = fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ManagedIdentity/userAssignedIdentities/%s", sub, rg, name)
	}
	if p := id.Properties; p != nil {
		m.ClientID, m.PrincipalID = deref(p.ClientID), deref(p.PrincipalID)
	}
	if m.ClientID == "" || m.PrincipalID == "" {
		return nil, fmt.Errorf("managed identity %s in resource group %s: the service reported no client or principal id", name, rg)
	}
	return m, nil
}

// StorageAccountID returns the resource id of a storage account of the
// Deployer's subscription.
func (d *Deployer) StorageAccountID(resourceGroup, account string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Storage/storageAccounts/%s", d.subscriptionID, resourceGroup, account)
}

// RoleAssignmentName returns the name of the role assignment of role (a
// role definition GUID) to principal at scope: a UUID derived from the
// three (version 5 layout over SHA-256), so that assigning again finds the
// same assignment, as Bicep's guid(scope, principal, role) does.
func RoleAssignmentName(scope, principalID, role string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(scope) + "\x00" + strings.ToLower(principalID) + "\x00" + strings.ToLower(role)))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50 // version 5
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Backoff of role assignment creation while a fresh identity's principal
// is not yet known to Resource Manager (PrincipalNotFound).
var (
	principalWait      = 2 * time.Minute
	principalBackoff0  = 2 * time.Second
	principalBackoffUp = 20 * time.Second
)

// AssignRoles gives principalID (a service principal, e.g. a managed
// identity's) each role (a role definition GUID, e.g.
// RoleStorageBlobDataOwner) at scope (e.g. StorageAccountID). It is
// idempotent: each assignment has a deterministic name
// (RoleAssignmentName), an existing one is left alone, and one that exists
// under another name (RoleAssignmentExists) counts as done. It reports
// whether it created any: a fresh assignment takes minutes to take effect,
// so the caller should then wait for it (see the runtime probe).
func (d *Deployer) AssignRoles(ctx context.Context, scope, principalID string, roles ...string) (created bool, err error) {
	if scope == "" || principalID == "" {
		return false, invalid("role assignment needs a scope and a principal")
	}
	for _, role := range roles {
		name := RoleAssignmentName(scope, principalID, role)
		roleName := RoleNames[role]
		if roleName == "" {
			roleName = role
		}
		if _, err := d.assignments.Get(ctx, scope, name, nil); err == nil {
			d.log.Debug("role assignment exists", "role", roleName, "scope", scope, "principal", principalID)
			continue
		} else if !isNotFound(err) {
			return created, fmt.Errorf("get role assignment %s (%s) at %s: %w", name, roleName, scope, err)
		}
		params := armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{
			PrincipalID:      to.Ptr(principalID),
			RoleDefinitionID: to.Ptr(fmt.Sprintf("/subscriptions/%s/providers/Microsoft.Authorization/roleDefinitions/%s", d.subscriptionID, role)),
			// Set for a fresh identity: Resource Manager then does not
			// look the principal up (it may not have replicated yet).
			PrincipalType: to.Ptr(armauthorization.PrincipalTypeServicePrincipal),
			Description:   to.Ptr("lithops runtime storage access"),
		}}
		d.log.Info("assigning role", "role", roleName, "scope", scope, "principal", principalID)
		wait := principalBackoff0
		deadline := time.Now().Add(principalWait)
		for {
			_, err = d.assignments.Create(ctx, scope, name, params, nil)
			if err == nil || responseCode(err) == "RoleAssignmentExists" {
				created = created || err == nil
				break
			}
			if responseCode(err) != "PrincipalNotFound" || time.Now().Add(wait).After(deadline) {
				return created, fmt.Errorf("assign role %s to principal %s at %s: %w", roleName, principalID, scope, err)
			}
			d.log.Info("the new identity is not known to Resource Manager yet, assigning again", "role", roleName, "in", wait)
			if err := d.sleep(ctx, wait); err != nil {
				return created, fmt.Errorf("assign role %s to principal %s at %s: %w", roleName, principalID, scope, err)
			}
			wait = min(2*wait, principalBackoffUp)
		}
	}
	return created, nil
}

// responseCode returns the error code of an ARM error answer, or "".
func responseCode(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return re.ErrorCode
		}
		if re.StatusCode == http.StatusConflict {
			return "Conflict"
		}
	}
	return ""
}
