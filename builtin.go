package lithops

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/lithops-go/lithops/compute"
	"github.com/lithops-go/lithops/compute/inprocess"
	"github.com/lithops-go/lithops/compute/localhost"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/worker"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/localfs"
	"github.com/lithops-go/lithops/storage/memory"
)

// The backends built into every lithops program: localhost and inprocess
// compute, localhost and memory storage. The others register themselves
// from their own packages (see package azure).
func init() {
	compute.Register("localhost", openLocalhost)
	compute.Register("inprocess", openInprocess)
	storage.Register("localhost", openLocalfs)
	storage.Register("memory", func(context.Context, *config.Config) (*storage.Storage, error) {
		return storage.New(memory.New(), "memory", "lithops"), nil
	})
}

// openLocalhost runs calls in worker processes of this program (or of
// localhost.runtime).
func openLocalhost(ctx context.Context, p compute.Params) (compute.Backend, error) {
	cfg := p.Config
	if cfg.Localhost.Runtime == "" && !started.Load() {
		return nil, errors.New("lithops: the localhost backend runs this program as its workers, so main must call lithops.Main or lithops.Init first (TestMain for tests)")
	}
	wcfg, err := workerConfig(cfg)
	if err != nil {
		return nil, err
	}
	b, err := localhost.New(localhost.Options{
		Program:      cfg.Localhost.Runtime,
		Env:          []string{workerConfigFDEnv + "=" + strconv.Itoa(localhost.ConfigFD)},
		WorkerConfig: wcfg,
		Workers:      cfg.Localhost.WorkerProcesses,
		MemoryMB:     cfg.Localhost.RuntimeMemory,
		Storage:      p.Storage,
		Notify:       p.Notify,
		Output:       p.Output,
		Logger:       p.Logger,
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// openInprocess runs calls as goroutines of this process.
func openInprocess(ctx context.Context, p compute.Params) (compute.Backend, error) {
	funcs, _ := registrySnapshot()
	return inprocess.New(worker.New("inprocess", p.Storage, funcs, p.Logger), p.Config.Localhost.WorkerProcesses, p.Notify), nil
}

// openLocalfs opens the localhost storage, a directory tree.
func openLocalfs(ctx context.Context, cfg *config.Config) (*storage.Storage, error) {
	d, err := localfs.New(cfg.Localhost.StorageRoot)
	if err != nil {
		return nil, fmt.Errorf("open localhost storage (localhost.storage_root %q): %w", cfg.Localhost.StorageRoot, err)
	}
	return storage.New(d, "localhost", cfg.Localhost.StorageBucket), nil
}
