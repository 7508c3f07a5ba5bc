package armdeploy

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	authfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"
	msifake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi/fake"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
)

// iam is Microsoft.ManagedIdentity and Microsoft.Authorization of the test
// subscription, behind the SDK's fake servers.
type iam struct {
	mu                sync.Mutex
	identities        map[string]armmsi.Identity                 // rg/name
	assignments       map[string]armauthorization.RoleAssignment // scope/name
	creates           int                                        // identity creations
	principalNotFound int                                        // Create answers PrincipalNotFound this often first
}

func (c *iam) msi() *msifake.ServerFactory {
	return &msifake.ServerFactory{UserAssignedIdentitiesServer: msifake.UserAssignedIdentitiesServer{
		Get: func(_ context.Context, rg, name string, _ *armmsi.UserAssignedIdentitiesClientGetOptions) (resp azfake.Responder[armmsi.UserAssignedIdentitiesClientGetResponse], errResp azfake.ErrorResponder) {
			c.mu.Lock()
			defer c.mu.Unlock()
			id, ok := c.identities[rg+"/"+name]
			if !ok {
				errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
				return
			}
			resp.SetResponse(http.StatusOK, armmsi.UserAssignedIdentitiesClientGetResponse{Identity: id}, nil)
			return
		},
		CreateOrUpdate: func(_ context.Context, rg, name string, p armmsi.Identity, _ *armmsi.UserAssignedIdentitiesClientCreateOrUpdateOptions) (resp azfake.Responder[armmsi.UserAssignedIdentitiesClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.creates++
			p.ID = to.Ptr("/subscriptions/" + testSub + "/resourceGroups/" + rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + name)
			p.Name = to.Ptr(name)
			p.Properties = &armmsi.UserAssignedIdentityProperties{ClientID: to.Ptr("client-" + name), PrincipalID: to.Ptr("principal-" + name)}
			c.identities[rg+"/"+name] = p
			resp.SetResponse(http.StatusCreated, armmsi.UserAssignedIdentitiesClientCreateOrUpdateResponse{Identity: p}, nil)
			return
		},
	}}
}

func (c *iam) auth() *authfake.ServerFactory {
	return &authfake.ServerFactory{RoleAssignmentsServer: authfake.RoleAssignmentsServer{
		Get: func(_ context.Context, scope, name string, _ *armauthorization.RoleAssignmentsClientGetOptions) (resp azfake.Responder[armauthorization.RoleAssignmentsClientGetResponse], errResp azfake.ErrorResponder) {
			c.mu.Lock()
			defer c.mu.Unlock()
			a, ok := c.assignments[strings.TrimPrefix(scope, "/")+"/"+name]
			if !ok {
				errResp.SetResponseError(http.StatusNotFound, "RoleAssignmentNotFound")
				return
			}
			resp.SetResponse(http.StatusOK, armauthorization.RoleAssignmentsClientGetResponse{RoleAssignment: a}, nil)
			return
		},
		Create: func(_ context.Context, scope, name string, p armauthorization.RoleAssignmentCreateParameters, _ *armauthorization.RoleAssignmentsClientCreateOptions) (resp azfake.Responder[armauthorization.RoleAssignmentsClientCreateResponse], errResp azfake.ErrorResponder) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.principalNotFound > 0 {
				c.principalNotFound--
				errResp.SetResponseError(http.StatusBadRequest, "PrincipalNotFound")
				return
			}
			a := armauthorization.RoleAssignment{Name: to.Ptr(name), Properties: p.Properties}
			c.assignments[scope+"/"+name] = a
			resp.SetResponse(http.StatusCreated, armauthorization.RoleAssignmentsClientCreateResponse{RoleAssignment: a}, nil)
			return
		},
	}}
}

// router sends each ARM request to the fake server of its client.
type router struct{ app, msi, auth policy.Transporter }

func (r router) Do(req *http.Request) (*http.Response, error) {
	name, _ := req.Context().Value(runtime.CtxAPINameKey{}).(string)
	switch {
	case strings.HasPrefix(name, "UserAssignedIdentitiesClient."):
		return r.msi.Do(req)
	case strings.HasPrefix(name, "RoleAssignmentsClient."):
		return r.auth.Do(req)
	}
	return r.app.Do(req)
}

func newIAMHarness(t *testing.T) (*harness, *iam) {
	t.Helper()
	h := newHarness(t)
	c := &iam{identities: map[string]armmsi.Identity{}, assignments: map[string]armauthorization.RoleAssignment{}}
	h.rec.next = router{app: h.rec.next, msi: msifake.NewServerFactoryTransport(c.msi()), auth: authfake.NewServerFactoryTransport(c.auth())}
	h.d.sleep = func(context.Context, time.Duration) error { return nil }
	return h, c
}

// The identity is created once and reused; roles are assigned once under
// deterministic names, to the identity's principal, as a service principal.
func TestEnsureIdentityAndAssignRoles(t *testing.T) {
	h, c := newIAMHarness(t)
	ctx := t.Context()
	id, err := h.d.EnsureIdentity(ctx, testRG, "westeurope", "lithops-acct")
	if err != nil {
		t.Fatal(err)
	}
	if id.ClientID != "client-lithops-acct" || id.PrincipalID != "principal-lithops-acct" || !strings.HasSuffix(id.ResourceID, "/userAssignedIdentities/lithops-acct") {
		t.Fatalf("identity %+v", id)
	}
	again, err := h.d.EnsureIdentity(ctx, testRG, "westeurope", "lithops-acct")
	if err != nil || *again != *id || c.creates != 1 {
		t.Fatalf("reuse: %+v %v, %d creations", again, err, c.creates)
	}
	if _, err := h.d.EnsureIdentity(ctx, testRG, "westeurope", "-bad"); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("bad name: %v", err)
	}

	scope := h.d.StorageAccountID("data-rg", "acct")
	if want := "/subscriptions/" + testSub + "/resourceGroups/data-rg/providers/Microsoft.Storage/storageAccounts/acct"; scope != want {
		t.Fatalf("scope %s", scope)
	}
	c.principalNotFound = 2 // a fresh identity not yet replicated
	created, err := h.d.AssignRoles(ctx, scope, id.PrincipalID, StorageRoles...)
	if err != nil || !created {
		t.Fatalf("AssignRoles: %v (created %v)", err, created)
	}
	creates := h.rec.find("RoleAssignmentsClient.Create")
	if len(creates) != 2+len(StorageRoles) {
		t.Fatalf("%d creates: %q", len(creates), h.rec.apis())
	}
	for _, role := range StorageRoles {
		name := RoleAssignmentName(scope, id.PrincipalID, role)
		a, ok := c.assignments[strings.TrimPrefix(scope, "/")+"/"+name]
		if !ok {
			t.Fatalf("no assignment %s of %s in %v", name, RoleNames[role], slices.Collect(maps.Keys(c.assignments)))
		}
		p := a.Properties
		if *p.PrincipalID != id.PrincipalID || *p.PrincipalType != armauthorization.PrincipalTypeServicePrincipal ||
			*p.RoleDefinitionID != "/subscriptions/"+testSub+"/providers/Microsoft.Authorization/roleDefinitions/"+role {
			t.Errorf("assignment of %s: %+v", RoleNames[role], p)
		}
	}
	// Idempotent: nothing new, nothing to wait for.
	h.rec.reqs = nil
	created, err = h.d.AssignRoles(ctx, scope, id.PrincipalID, StorageRoles...)
	if err != nil || created || len(h.rec.find("RoleAssignmentsClient.Create")) != 0 {
		t.Fatalf("again: created %v, %v, calls %q", created, err, h.rec.apis())
	}
}

func TestRoleAssignmentName(t *testing.T) {
	a := RoleAssignmentName("/s/x", "p", RoleStorageBlobDataOwner)
	if a != RoleAssignmentName("/S/X", "P", RoleStorageBlobDataOwner) {
		t.Error("name depends on letter case")
	}
	if a == RoleAssignmentName("/s/x", "p", RoleStorageQueueDataContributor) || a == RoleAssignmentName("/s/x", "q", RoleStorageBlobDataOwner) {
		t.Error("names collide")
	}
	if len(a) != 36 || a[14] != '5' || !strings.ContainsRune("89ab", rune(a[19])) {
		t.Errorf("not a version 5 UUID: %s", a)
	}
}

// A keyless spec: the site gets the identity, deployment storage is read
// with it, and a redeploy of a keyed app drops its connection strings.
func TestDeployKeyless(t *testing.T) {
	h, _ := newIAMHarness(t)
	ctx := t.Context()
	spec := testSpec()
	if _, err := h.d.Deploy(ctx, spec, testZip); err != nil { // keyed first
		t.Fatal(err)
	}
	id, err := h.d.EnsureIdentity(ctx, testRG, "westeurope", "lithops-acct")
	if err != nil {
		t.Fatal(err)
	}
	spec.Identity = id
	delete(spec.AppSettings, appsettings.HostStorage)
	delete(spec.AppSettings, appsettings.DeploymentStorage)
	spec.AppSettings["AzureWebJobsStorage__accountName"] = "acct"
	spec.AppSettings["AzureWebJobsStorage__credential"] = "managedidentity"
	spec.AppSettings["AzureWebJobsStorage__clientId"] = id.ClientID
	h.rec.reqs = nil
	if _, err := h.d.Deploy(ctx, spec, testZip); err != nil {
		t.Fatal(err)
	}
	site := h.rec.find("WebAppsClient.BeginCreateOrUpdate")
	if len(site) == 0 {
		t.Fatalf("calls %q", h.rec.apis())
	}
	b := site[0].Body
	wantJSON(t, b, "UserAssigned", "identity", "type")
	if get(b, "identity", "userAssignedIdentities", id.ResourceID) == nil {
		t.Errorf("identity %v", get(b, "identity"))
	}
	wantJSON(t, b, "UserAssignedIdentity", "properties", "functionAppConfig", "deployment", "storage", "authentication", "type")
	wantJSON(t, b, id.ResourceID, "properties", "functionAppConfig", "deployment", "storage", "authentication", "userAssignedIdentityResourceId")
	wantJSON(t, b, nil, "properties", "functionAppConfig", "deployment", "storage", "authentication", "storageAccountConnectionStringName")
	if strings.Contains(site[0].Raw, testConn) {
		t.Error("the keyless site PUT carries the connection string")
	}
	h.cloud.mu.Lock()
	got := maps.Clone(h.cloud.settings[testRG+"/"+spec.Name])
	h.cloud.mu.Unlock()
	for k, v := range got {
		if keyedSetting(k) || strings.Contains(v, "AccountKey=") {
			t.Errorf("keyless app keeps setting %s", k)
		}
	}
	if got["AzureWebJobsStorage__clientId"] != id.ClientID {
		t.Errorf("settings %v", slices.Collect(maps.Keys(got)))
	}

	// A keyless spec that carries a connection string is refused.
	spec.AppSettings[appsettings.DeploymentStorage] = testConn
	if _, err := h.d.Deploy(ctx, spec, testZip); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("keyless spec with a connection string: %v", err)
	}
}
