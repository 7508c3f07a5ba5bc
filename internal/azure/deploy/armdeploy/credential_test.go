package armdeploy

import (
	"context"
	"errors"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azcloud "github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// scopeCredential records the scopes it is asked for and fails with err.
type scopeCredential struct {
	scopes []string
	err    error
}

func (c *scopeCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.scopes = append(c.scopes, o.Scopes...)
	return azcore.AccessToken{Token: "t"}, c.err
}

func TestCheckCredential(t *testing.T) {
	custom := azcloud.Configuration{Services: map[azcloud.ServiceName]azcloud.ServiceConfiguration{
		azcloud.ResourceManager: {Endpoint: "https://127.0.0.1:1", Audience: "https://management.example"},
	}}
	for _, tt := range []struct {
		name  string
		opts  []Option
		scope string
		err   error
	}{
		{"public cloud", nil, "https://management.core.windows.net//.default", nil},
		{"configured cloud", []Option{WithClientOptions(&arm.ClientOptions{ClientOptions: policy.ClientOptions{Cloud: custom}})}, "https://management.example/.default", nil},
		{"failing credential", nil, "https://management.core.windows.net//.default", errors.New("no credential in the chain")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cred := &scopeCredential{err: tt.err}
			d, err := New("sub", cred, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			err = d.CheckCredential(context.Background())
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("CheckCredential: %v, want %v", err, tt.err)
			}
			if len(cred.scopes) != 1 || cred.scopes[0] != tt.scope {
				t.Errorf("scopes %q, want %q", cred.scopes, tt.scope)
			}
		})
	}
}
