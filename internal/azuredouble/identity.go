package azuredouble

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	authfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"
	msifake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi/fake"
)

// Identity is a user-assigned managed identity the double created.
type Identity struct {
	ResourceID, ClientID, PrincipalID string
}

// RoleAssignment is a role assignment the double holds.
type RoleAssignment struct {
	Scope, Name, PrincipalID string
	// Role is the role definition's GUID (the last segment of its id).
	Role string
}

// Identities returns the user-assigned managed identities by resource id.
func (p *Platform) Identities() map[string]Identity {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]Identity{}
	for k, v := range p.identities {
		out[k] = v
	}
	return out
}

// RoleAssignments returns the role assignments.
func (p *Platform) RoleAssignments() []RoleAssignment {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]RoleAssignment, 0, len(p.assignments))
	for _, a := range p.assignments {
		out = append(out, a)
	}
	return out
}

// HasRole reports whether principal holds role (a role definition GUID) at
// a scope that covers scope (the scope itself or a parent of it).
func (p *Platform) HasRole(principal, role, scope string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.assignments {
		if a.PrincipalID == principal && strings.EqualFold(a.Role, role) &&
			(strings.EqualFold(a.Scope, scope) || strings.HasPrefix(strings.ToLower(scope), strings.ToLower(a.Scope)+"/")) {
			return true
		}
	}
	return false
}

// identityByClientID finds an identity by its client id. Called with p.mu
// held.
func (p *Platform) identityByClientID(clientID string) (Identity, bool) {
	for _, id := range p.identities {
		if strings.EqualFold(id.ClientID, clientID) {
			return id, true
		}
	}
	return Identity{}, false
}

// guidOf derives a stable GUID-shaped id from s, so that an identity keeps
// its client and principal ids for the life of the double.
func guidOf(s string) string {
	b := sha256.Sum256([]byte(s))
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// msiServer is Resource Manager for user-assigned managed identities.
func (p *Platform) msiServer() *msifake.ServerFactory {
	idOf := func(rg, name string) string {
		return fmt.Sprintf("/subscriptions/sub/resourceGroups/%s/providers/Microsoft.ManagedIdentity/userAssignedIdentities/%s", rg, name)
	}
	toARM := func(id Identity, name, location string) armmsi.Identity {
		return armmsi.Identity{ID: to.Ptr(id.ResourceID), Name: to.Ptr(name), Location: to.Ptr(location),
			Properties: &armmsi.UserAssignedIdentityProperties{ClientID: to.Ptr(id.ClientID), PrincipalID: to.Ptr(id.PrincipalID), TenantID: to.Ptr(Tenant)}}
	}
	return &msifake.ServerFactory{UserAssignedIdentitiesServer: msifake.UserAssignedIdentitiesServer{
		Get: func(_ context.Context, rg, name string, _ *armmsi.UserAssignedIdentitiesClientGetOptions) (resp azfake.Responder[armmsi.UserAssignedIdentitiesClientGetResponse], errResp azfake.ErrorResponder) {
			p.mu.Lock()
			defer p.mu.Unlock()
			id, ok := p.identities[strings.ToLower(idOf(rg, name))]
			if !ok {
				errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
				return
			}
			resp.SetResponse(http.StatusOK, armmsi.UserAssignedIdentitiesClientGetResponse{Identity: toARM(id, name, "")}, nil)
			return
		},
		CreateOrUpdate: func(_ context.Context, rg, name string, in armmsi.Identity, _ *armmsi.UserAssignedIdentitiesClientCreateOrUpdateOptions) (resp azfake.Responder[armmsi.UserAssignedIdentitiesClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
			p.mu.Lock()
			defer p.mu.Unlock()
			rid := idOf(rg, name)
			id, ok := p.identities[strings.ToLower(rid)]
			if !ok {
				id = Identity{ResourceID: rid, ClientID: guidOf("client " + rid), PrincipalID: guidOf("principal " + rid)}
				p.identities[strings.ToLower(rid)] = id
			}
			resp.SetResponse(http.StatusCreated, armmsi.UserAssignedIdentitiesClientCreateOrUpdateResponse{Identity: toARM(id, name, deref(in.Location))}, nil)
			return
		},
	}}
}

// authServer is Resource Manager for role assignments: Get and Create
// (which refuses an unknown principal, as Azure does).
func (p *Platform) authServer() *authfake.ServerFactory {
	// The fake server hands the scope over without its leading slash.
	norm := func(scope string) string { return "/" + strings.Trim(scope, "/") }
	key := func(scope, name string) string { return strings.ToLower(norm(scope) + "|" + name) }
	toARM := func(a RoleAssignment) armauthorization.RoleAssignment {
		return armauthorization.RoleAssignment{
			ID:   to.Ptr(strings.TrimRight(a.Scope, "/") + "/providers/Microsoft.Authorization/roleAssignments/" + a.Name),
			Name: to.Ptr(a.Name),
			Properties: &armauthorization.RoleAssignmentProperties{PrincipalID: to.Ptr(a.PrincipalID), Scope: to.Ptr(a.Scope),
				RoleDefinitionID: to.Ptr("/subscriptions/sub/providers/Microsoft.Authorization/roleDefinitions/" + a.Role)},
		}
	}
	return &authfake.ServerFactory{RoleAssignmentsServer: authfake.RoleAssignmentsServer{
		Get: func(_ context.Context, scope, name string, _ *armauthorization.RoleAssignmentsClientGetOptions) (resp azfake.Responder[armauthorization.RoleAssignmentsClientGetResponse], errResp azfake.ErrorResponder) {
			p.mu.Lock()
			defer p.mu.Unlock()
			a, ok := p.assignments[key(scope, name)]
			if !ok {
				errResp.SetResponseError(http.StatusNotFound, "RoleAssignmentNotFound")
				return
			}
			resp.SetResponse(http.StatusOK, armauthorization.RoleAssignmentsClientGetResponse{RoleAssignment: toARM(a)}, nil)
			return
		},
		Create: func(_ context.Context, scope, name string, in armauthorization.RoleAssignmentCreateParameters, _ *armauthorization.RoleAssignmentsClientCreateOptions) (resp azfake.Responder[armauthorization.RoleAssignmentsClientCreateResponse], errResp azfake.ErrorResponder) {
			p.mu.Lock()
			defer p.mu.Unlock()
			if in.Properties == nil || in.Properties.PrincipalID == nil || in.Properties.RoleDefinitionID == nil {
				errResp.SetResponseError(http.StatusBadRequest, "InvalidRoleAssignmentRequest")
				return
			}
			known := false
			for _, id := range p.identities {
				known = known || id.PrincipalID == *in.Properties.PrincipalID
			}
			if !known {
				errResp.SetResponseError(http.StatusBadRequest, "PrincipalNotFound")
				return
			}
			a := RoleAssignment{Scope: norm(scope), Name: name, PrincipalID: *in.Properties.PrincipalID, Role: lastSegment(*in.Properties.RoleDefinitionID)}
			if old, ok := p.assignments[key(scope, name)]; ok && old != a {
				errResp.SetResponseError(http.StatusConflict, "RoleAssignmentUpdateNotPermitted")
				return
			}
			p.assignments[key(scope, name)] = a
			resp.SetResponse(http.StatusCreated, armauthorization.RoleAssignmentsClientCreateResponse{RoleAssignment: toARM(a)}, nil)
			return
		},
	}}
}

func lastSegment(s string) string {
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return s[i+1:]
	}
	return s
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
