package compute

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/storage"
)

// Params is what an executor hands a backend it opens.
type Params struct {
	// Config is the executor's resolved configuration; the backend reads
	// its own section.
	Config *config.Config
	// Storage is the executor's storage, already open.
	Storage *storage.Storage
	// ExecutorID is the executor's id, the prefix of its jobs' keys.
	ExecutorID string
	// Notify receives the statuses the backend pushes.
	Notify Notify
	// Logger receives the backend's logs.
	Logger *slog.Logger
	// Output receives the workers' stdout and stderr where the backend
	// forwards them (localhost).
	Output io.Writer
}

// Opener makes a backend for one executor.
type Opener func(ctx context.Context, p Params) (Backend, error)

var (
	regMu   sync.RWMutex
	openers = map[string]Opener{}
)

// Register makes the compute backend called name available to executors
// (lithops.backend, lithops.WithBackend), in the style of database/sql's
// Register: a backend's package calls it from init, so that importing the
// package links the backend in. Package lithops registers localhost and
// inprocess; github.com/lithops-go/lithops/azure links azure_functions.
// Register panics if name is empty, open is nil or name is taken.
func Register(name string, open Opener) {
	if name == "" || open == nil {
		panic("compute: Register needs a name and an opener")
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := openers[name]; dup {
		panic(fmt.Sprintf("compute: backend %q registered twice", name))
	}
	openers[name] = open
	config.KnowBackend(config.ComputeKind, name)
}

// Backends returns the names of the registered backends, sorted.
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

// Lookup returns the opener of the backend called name. A backend that
// lithops knows but this program does not link in is an error that wraps
// config.ErrNotLinked and names the import to add.
func Lookup(name string) (Opener, error) {
	regMu.RLock()
	open := openers[name]
	regMu.RUnlock()
	if open == nil {
		return nil, config.NotLinked(config.ComputeKind, name, Backends())
	}
	return open, nil
}

// Open opens the backend called name (see Lookup).
func Open(ctx context.Context, name string, p Params) (Backend, error) {
	open, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	return open(ctx, p)
}
