package storage

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/lithops-go/lithops/config"
)

// Opener opens a storage backend with its settings in cfg.
type Opener func(ctx context.Context, cfg *config.Config) (*Storage, error)

var (
	regMu   sync.RWMutex
	openers = map[string]Opener{}
)

// Register makes the storage backend called name available by
// configuration (lithops.storage, lithops.WithStorage, URIs
// "name://bucket/key"), in the style of database/sql's Register: a driver's
// package calls it from init, so that importing the package links the
// backend in. Package lithops registers localhost and memory; azblob
// registers azure_storage. Register panics if name is empty, open is nil
// or name is taken.
func Register(name string, open Opener) {
	if name == "" || open == nil {
		panic("storage: Register needs a name and an opener")
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := openers[name]; dup {
		panic(fmt.Sprintf("storage: backend %q registered twice", name))
	}
	openers[name] = open
	config.KnowBackend(config.StorageKind, name)
}

// Backends returns the names of the registered storage backends, sorted.
func Backends() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	names := make([]string, 0, len(openers))
	for n := range openers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Open opens the storage backend called name with its settings in cfg. A
// backend that lithops knows but this program does not link in is an
// error that wraps config.ErrNotLinked and names the import to add.
func Open(ctx context.Context, cfg *config.Config, name string) (*Storage, error) {
	regMu.RLock()
	open := openers[name]
	regMu.RUnlock()
	if open == nil {
		return nil, config.NotLinked(config.StorageKind, name, Backends())
	}
	return open(ctx, cfg)
}
