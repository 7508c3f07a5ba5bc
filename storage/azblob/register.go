package azblob

import (
	"context"
	"fmt"
	"time"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/storage"
)

// Importing the package links the azure_storage backend in.
func init() { storage.Register("azure_storage", open) }

// open opens the azure_storage backend from its configuration section.
func open(ctx context.Context, cfg *config.Config) (*storage.Storage, error) {
	a := cfg.AzureStorage
	retry := DefaultRetry
	if a.MaxRetries > 0 {
		retry.MaxRetries = int32(a.MaxRetries)
	}
	if a.TryTimeout > 0 {
		retry.TryTimeout = time.Duration(a.TryTimeout * float64(time.Second))
		retry.MaxRetryDelay = min(retry.MaxRetryDelay, retry.TryTimeout)
	}
	d, err := New(ctx, Config{
		StorageAccountName: a.StorageAccountName,
		StorageAccountKey:  a.StorageAccountKey,
		ConnectionString:   a.ConnectionString,
		SASToken:           a.SASToken,
		Endpoint:           a.Endpoint,
		Credential:         a.Credential,
		ClientID:           a.ClientID,
	}, WithRetry(retry))
	if err != nil {
		return nil, fmt.Errorf("open azure_storage storage: %w", err)
	}
	return storage.New(d, "azure_storage", a.StorageBucket), nil
}
