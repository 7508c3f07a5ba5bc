package lithops

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/azblob"
)

func openCloudStorage(ctx context.Context, cfg *config.Config, name string) (*storage.Storage, error) {
	switch name {
	case "azure_storage":
		a := cfg.AzureStorage
		retry := azblob.DefaultRetry
		if a.MaxRetries > 0 {
			retry.MaxRetries = int32(a.MaxRetries)
		}
		if a.TryTimeout > 0 {
			retry.TryTimeout = time.Duration(a.TryTimeout * float64(time.Second))
			retry.MaxRetryDelay = min(retry.MaxRetryDelay, retry.TryTimeout)
		}
		d, err := azblob.New(ctx, azblob.Config{
			StorageAccountName: a.StorageAccountName,
			StorageAccountKey:  a.StorageAccountKey,
			ConnectionString:   a.ConnectionString,
			SASToken:           a.SASToken,
			Endpoint:           a.Endpoint,
		}, azblob.WithRetry(retry))
		if err != nil {
			return nil, fmt.Errorf("open azure_storage storage: %w", err)
		}
		return storage.New(d, "azure_storage", a.StorageBucket), nil
	}
	return nil, fmt.Errorf("unknown storage backend %q (known: %s)", name, strings.Join(config.StorageBackends, ", "))
}
