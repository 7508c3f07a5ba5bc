package lithops

import (
	"context"
	"fmt"
	"strings"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/storage"
)

func openCloudStorage(ctx context.Context, cfg *config.Config, name string) (*storage.Storage, error) {
	return nil, fmt.Errorf("unknown storage backend %q (known: %s)", name, strings.Join(config.StorageBackends, ", "))
}
