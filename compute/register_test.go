package compute_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/compute"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/storage"
)

// This test binary links package lithops but not package azure, like a
// user program that runs on localhost only.

func TestBuiltinsRegistered(t *testing.T) {
	if got, want := compute.Backends(), []string{"inprocess", "localhost"}; !slices.Equal(got, want) {
		t.Errorf("compute backends %v, want %v", got, want)
	}
	if got, want := storage.Backends(), []string{"localhost", "memory"}; !slices.Equal(got, want) {
		t.Errorf("storage backends %v, want %v", got, want)
	}
}

func TestAzureNotLinked(t *testing.T) {
	const want = `backend azure_functions is not linked into this program: add import _ "github.com/lithops-go/lithops/azure"`
	_, err := lithops.NewExecutor(context.Background(), lithops.WithBackend("azure_functions"))
	if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, config.ErrNotLinked) {
		t.Fatalf("NewExecutor on azure_functions without the import: %v", err)
	}
	_, err = lithops.OpenStorage(context.Background(), lithops.WithStorage("azure_storage"))
	if err == nil || !strings.Contains(err.Error(), `backend azure_storage is not linked into this program`) || !errors.Is(err, config.ErrNotLinked) {
		t.Fatalf("OpenStorage of azure_storage without the import: %v", err)
	}
}

type fake struct{ compute.Backend }

func (fake) Name() string { return "fake" }

func TestRegister(t *testing.T) {
	compute.Register("fake", func(ctx context.Context, p compute.Params) (compute.Backend, error) {
		return fake{}, nil
	})
	if !slices.Contains(config.ComputeBackends, "fake") {
		t.Errorf("a registered backend is not known to config: %v", config.ComputeBackends)
	}
	b, err := compute.Open(context.Background(), "fake", compute.Params{})
	if err != nil || b.Name() != "fake" {
		t.Fatalf("Open: %v, %v", b, err)
	}
	if _, err := compute.Open(context.Background(), "nonesuch", compute.Params{}); err == nil || errors.Is(err, config.ErrNotLinked) || !strings.Contains(err.Error(), "unknown compute backend") {
		t.Errorf("unknown backend: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("a second registration of the same name did not panic")
		}
	}()
	compute.Register("fake", func(context.Context, compute.Params) (compute.Backend, error) { return nil, nil })
}
