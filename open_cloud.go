package lithops

import (
	"context"
	"fmt"
	"strings"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/azblob"
)

func openCloudStorage(ctx context.Context, cfg *config.Config, name string) (*storage.Storage, error) {
	switch name {
	case "azure_storage":
		a := cfg.AzureStorage
		d, err := azblob.New(ctx, azblob.Config{
			StorageAccountName: a.StorageAccountName,
			StorageAccountKey:  a.StorageAccountKey,
			ConnectionString:   a.ConnectionString,
			SASToken:           a.SASToken,
			Endpoint:           a.Endpoint,
		})
		if err != nil {
			return nil, fmt.Errorf("open azure_storage storage: %w", err)
		}
		return storage.New(d, "azure_storage", a.StorageBucket), nil
	}
	return nil, fmt.Errorf("unknown storage backend %q (known: %s)", name, strings.Join(config.StorageBackends, ", "))
}
