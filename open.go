package lithops

import (
	"context"
	"fmt"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/storage"
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

// openStorage opens a registered storage backend (see storage.Register);
// with create it also makes the default bucket exist (clients do; workers
// trust that it does, so that starting one needs no storage round trip).
func openStorage(ctx context.Context, cfg *config.Config, name string, create bool) (*storage.Storage, error) {
	st, err := storage.Open(ctx, cfg, name)
	if err != nil {
		return nil, fmt.Errorf("lithops: %w", err)
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
