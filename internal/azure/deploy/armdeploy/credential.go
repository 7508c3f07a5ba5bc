package armdeploy

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azcloud "github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Credential returns the credential for ARM (and SCM) requests: a client
// secret credential of the service principal when tenantID, clientID and
// clientSecret are all set, else the default Azure credential chain
// (environment, workload identity, managed identity, az CLI, azd, Azure
// PowerShell), limited to tenantID when that is set; a clientID without a
// secret is not used there (set AZURE_CLIENT_ID for a user-assigned managed
// identity). A client secret without tenant or client ID is an error rather
// than a silent fallback.
func Credential(tenantID, clientID, clientSecret string) (azcore.TokenCredential, error) {
	if clientSecret != "" {
		if tenantID == "" || clientID == "" {
			return nil, fmt.Errorf("%w: a client secret needs a tenant ID and a client ID", ErrInvalidSpec)
		}
		c, err := azidentity.NewClientSecretCredential(tenantID, clientID, clientSecret, nil)
		if err != nil {
			return nil, fmt.Errorf("armdeploy: client secret credential for client %s in tenant %s: %w", clientID, tenantID, err)
		}
		return c, nil
	}
	c, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{TenantID: tenantID})
	if err != nil {
		return nil, fmt.Errorf("armdeploy: default Azure credential: %w", err)
	}
	return c, nil
}

// ResourceManagerScope returns the token scope of Resource Manager requests
// in cloud c: the audience of its ResourceManager service followed by
// /.default, as the SDK's ARM clients ask for (the public cloud's when c has
// none).
func ResourceManagerScope(c azcloud.Configuration) string {
	aud := azcloud.AzurePublic.Services[azcloud.ResourceManager].Audience
	if s, ok := c.Services[azcloud.ResourceManager]; ok && s.Audience != "" {
		aud = s.Audience
	}
	return aud + "/.default"
}

// CheckCredential acquires a token for Resource Manager (ResourceManagerScope
// of the cloud of the deployer's client options) with the deployer's
// credential, so that a caller learns of an authentication failure before
// it changes anything. The credential caches the token for the requests
// that follow. It sends no request to Resource Manager; the error is the
// credential's own.
func (d *Deployer) CheckCredential(ctx context.Context) error {
	var c azcloud.Configuration
	if d.armOptions != nil {
		c = d.armOptions.Cloud
	}
	if _, err := d.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{ResourceManagerScope(c)}}); err != nil {
		return fmt.Errorf("armdeploy: token for Resource Manager: %w", err)
	}
	return nil
}
