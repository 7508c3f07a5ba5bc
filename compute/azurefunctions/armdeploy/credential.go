package armdeploy

import (
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
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
