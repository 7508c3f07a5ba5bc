package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// BackendKind tells compute backends from storage backends.
type BackendKind string

// The kinds of backend.
const (
	ComputeKind BackendKind = "compute"
	StorageKind BackendKind = "storage"
)

// Backends this build knows, by configuration name: the ones lithops
// ships and any other that a program registers (compute.Register,
// storage.Register). A known backend need not be linked into the program:
// Packages says which import links it in.
var (
	ComputeBackends = []string{"localhost", "azure_functions", "inprocess"}
	StorageBackends = []string{"localhost", "azure_storage", "memory"}
)

// Packages names, for each backend lithops ships that is not built into
// package lithops, the package a program imports (a blank import) to link
// the backend in.
var Packages = map[string]string{
	"azure_functions": "github.com/lithops-go/lithops/azure",
	"azure_storage":   "github.com/lithops-go/lithops/azure",
}

// ErrNotLinked is wrapped by the error for a backend that lithops knows
// but that this program does not link in.
var ErrNotLinked = errors.New("not linked into this program")

// KnowBackend adds name to the known backends of kind, so that
// configurations may name it; compute.Register and storage.Register call
// it. Like them it is meant for init functions.
func KnowBackend(kind BackendKind, name string) {
	list := &ComputeBackends
	if kind == StorageKind {
		list = &StorageBackends
	}
	if !slices.Contains(*list, name) {
		*list = append(*list, name)
	}
}

// NotLinked returns the error for a backend of kind called name that is
// not registered in this program (registered lists the ones that are): a
// known backend gets ErrNotLinked with the import that links it in, any
// other name an unknown-backend error.
func NotLinked(kind BackendKind, name string, registered []string) error {
	if pkg := Packages[name]; pkg != "" {
		return fmt.Errorf("%s backend %s is %w: add import _ %q", kind, name, ErrNotLinked, pkg)
	}
	return fmt.Errorf("unknown %s backend %q (linked: %s)", kind, name, strings.Join(registered, ", "))
}
