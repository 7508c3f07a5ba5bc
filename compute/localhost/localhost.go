// Package localhost is the embedded default compute backend: it runs calls in
// resident worker processes on this machine.
//
// A worker is the user's own program started in worker mode (environment
// LITHOPS_WORKER=localhost); it reads requests of one or several calls from
// a pipe on file descriptor 3 and answers each call on descriptor 4, so the
// program's own stdout and stderr stay free for the user's prints. At most Workers processes run;
// they start on demand and stay for the next call. The processes are an
// internal/procpool pool, which the runtime host uses too; this package is
// the compute.Backend over it.
//
// Invariants (the pool's, see internal/procpool):
//   - Every accepted call whose ctx is not cancelled ends with a status in
//     storage and a Notify: the worker's own, or one the backend writes when
//     the call exceeded its timeout (the worker is killed) or the worker died
//     (exit status or signal recorded). Those are written create-if-absent,
//     so a status the worker managed to write first wins.
//   - A worker that died or was killed is replaced by a fresh one for the
//     next call; no other call is affected.
package localhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/lithops-go/lithops/compute"
	"github.com/lithops-go/lithops/internal/procpool"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
)

// WorkerEnv is the environment variable that puts a program in worker mode.
const WorkerEnv = procpool.WorkerEnv

// ConfigFD is the file descriptor on which a worker reads
// Options.WorkerConfig (after the request and response pipes, 3 and 4).
const ConfigFD = procpool.ConfigFD

// KillGrace is how long after a call's timeout its worker is killed: the
// function's ctx ends at the timeout, so a function that honours it has
// this long to return (and be recorded as timed out) before the kill.
const KillGrace = procpool.KillGrace

// Options configure a Backend.
type Options struct {
	// Program is the executable the workers run; "" means this process's own.
	Program string
	// Env is added to the workers' environment.
	Env []string
	// WorkerConfig is what a worker needs to open its storage (JSON). It
	// reaches the worker on file descriptor 5 (ConfigFD), never through
	// the environment, which subprocesses inherit and /proc shows.
	WorkerConfig []byte
	// CleanEnv starts workers from a minimal environment (PATH, HOME, temp
	// dir, locale, TZ) instead of this process's.
	//
	// Deprecated: only the runtime host wanted it, and it now uses
	// internal/procpool directly. Still honoured.
	CleanEnv bool
	// Workers is the number of worker processes (≥ 1).
	Workers int
	// MemoryMB limits each worker's memory (0: unlimited).
	MemoryMB int
	// IdleTimeout is how long a worker process waits for its next call
	// before it exits (0: it stays until Close, the default: the workers
	// are this program's own, and a warm worker answers faster).
	IdleTimeout time.Duration
	// Storage is where the backend records calls whose worker died.
	Storage *storage.Storage
	// Notify receives statuses as they happen (optional).
	Notify compute.Notify
	// EscalateOOM, when true, hands an out-of-memory attempt of a job that
	// escalates memory back through Notify instead of retrying it here.
	//
	// Deprecated: only the runtime host wanted it, and it now uses
	// internal/procpool directly. Still honoured.
	EscalateOOM bool
	// Output receives the workers' stdout and stderr (default os.Stderr).
	Output io.Writer
	// Logger logs retries and failures to record (default: discard).
	Logger *slog.Logger
}

// Backend is the localhost compute backend.
type Backend struct {
	pool *procpool.Pool
}

// New returns a localhost backend. Workers start on the first Invoke.
func New(opts Options) (*Backend, error) {
	if opts.Workers < 1 {
		return nil, fmt.Errorf("localhost: worker_processes must be ≥ 1, got %d", opts.Workers)
	}
	if opts.Storage == nil {
		return nil, errors.New("localhost: no storage")
	}
	if opts.Program == "" {
		if _, err := os.Executable(); err != nil {
			return nil, fmt.Errorf("localhost: find own executable: %w", err)
		}
	} else if _, err := exec.LookPath(opts.Program); err != nil {
		return nil, fmt.Errorf("localhost: runtime program %q: %w", opts.Program, err)
	}
	pool, err := procpool.New(procpool.Options{
		BatchRecords: true, // this pool's workers are the only executions of their calls
		Program:      opts.Program,
		Env:          opts.Env,
		Config:       opts.WorkerConfig,
		CleanEnv:     opts.CleanEnv,
		Size:         opts.Workers,
		MemoryMB:     opts.MemoryMB,
		IdleTimeout:  opts.IdleTimeout,
		Storage:      opts.Storage,
		Notify:       opts.Notify,
		EscalateOOM:  opts.EscalateOOM,
		Output:       opts.Output,
		Logger:       opts.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("localhost: %w", err)
	}
	return &Backend{pool: pool}, nil
}

// Name implements compute.Backend.
func (b *Backend) Name() string { return "localhost" }

// Invoke implements compute.Backend: it queues one task per call.
func (b *Backend) Invoke(ctx context.Context, job *protocol.Job, inv protocol.Invocation) error {
	if err := b.pool.Invoke(ctx, job, inv); err != nil {
		return fmt.Errorf("localhost: %w", err)
	}
	return nil
}

// CarriesManifest implements compute.ManifestCarrier: a small job's
// manifest travels with its calls over the pipe.
func (b *Backend) CarriesManifest(job *protocol.Job) bool { return b.pool.CarriesManifest(job) }

// Close implements compute.Backend: it kills every worker.
func (b *Backend) Close() error { return b.pool.Close() }
