package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/lithops-go/lithops/config"
)

// Without a key, doctor's credentials check passes for an account name or
// for blob and queue endpoints (Azurite's path-style ones, other clouds),
// says that runtimes deploy keyless and which roles are involved, and
// fails only for a blob endpoint without a queue endpoint.
func TestDoctorKeylessCredentials(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(a *config.AzureStorage)
		want string
	}{
		{"account", func(a *config.AzureStorage) { a.StorageAccountName = "acct" },
			`^PASS  credentials +azure_storage account acct through Entra ID \(default credential chain\), no key: runtimes deploy keyless .*Storage Blob Data Owner and Storage Queue Data Contributor`},
		{"endpoints", func(a *config.AzureStorage) {
			a.Endpoint, a.QueueEndpoint = "https://127.0.0.1:10000/devstoreaccount1", "https://127.0.0.1:10001/devstoreaccount1"
		}, `^PASS  credentials +azure_storage account https://127\.0\.0\.1:10000/devstoreaccount1 through Entra ID .*runtimes deploy keyless`},
		{"managed identity", func(a *config.AzureStorage) {
			a.StorageAccountName, a.Credential, a.ClientID = "acct", "managedidentity", "cid"
		},
			`^PASS  credentials +azure_storage account acct through Entra ID \(managed identity cid\)`},
		{"blob endpoint only", func(a *config.AzureStorage) { a.Endpoint = "https://127.0.0.1:10000/devstoreaccount1" },
			`^FAIL  credentials +azure_storage.endpoint without a key needs azure_storage.queue_endpoint`},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Lithops.Backend, cfg.Lithops.Storage = "azure_functions", "azure_storage"
			c.set(&cfg.AzureStorage)
			var buf bytes.Buffer
			r := &reporter{w: &buf}
			env := doctorEnv{w: &buf, queue: func(context.Context, *config.Config, string) error { return nil }}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			doctorAzure(ctx, r, env, cfg, nil)
			matchLines(t, buf.String(), c.want)
		})
	}
}
