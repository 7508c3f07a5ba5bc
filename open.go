package lithops

import (
	"context"
	"fmt"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/localfs"
	"github.com/lithops-go/lithops/storage/memory"
)

// OpenStorage opens a storage backend by configuration, the counterpart of
// Lithops' Storage(): options select the config file and the backend
// (WithStorage); the default is the configured storage.
func OpenStorage(ctx context.Context, opts ...Option) (*storage.Storage, error) {
	o, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	return openStorage(ctx, o.cfg, o.cfg.Lithops.Storage, true)
}

// openStorage opens a storage backend; with create it also makes the
// default bucket exist (clients do; workers trust that it does, so that
// starting one needs no storage round trip).
func openStorage(ctx context.Context, cfg *config.Config, name string, create bool) (*storage.Storage, error) {
	var st *storage.Storage
	switch name {
	case "localhost":
		d, err := localfs.New(cfg.Localhost.StorageRoot)
		if err != nil {
			return nil, fmt.Errorf("open localhost storage (localhost.storage_root %q): %w", cfg.Localhost.StorageRoot, err)
		}
		st = storage.New(d, "localhost", cfg.Localhost.StorageBucket)
	case "memory":
		st = storage.New(memory.New(), "memory", "lithops")
	default:
		var err error
		st, err = openCloudStorage(ctx, cfg, name)
		if err != nil {
			return nil, err
		}
	}
	if !create {
		return st, nil
	}
	if err := st.CreateBucket(ctx, st.Bucket()); err != nil {
		st.Close()
		return nil, fmt.Errorf("open %s storage: %w", name, err)
	}
	return st, nil
}
