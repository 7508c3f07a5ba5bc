// Package compute defines what a compute backend does for an executor: run
// the calls of a job somewhere, and report their outcomes.
//
// A backend's only duty is delivery: every call it accepts ends with a status
// record in storage (written by the worker, or by the backend when the worker
// died or ran out of time). Storage polling by the client is the safety net;
// a backend that can push statuses sooner does so through Notify.
// Backends live in subpackages: localhost (resident worker processes),
// inprocess (goroutines) and azurefunctions. A backend is found by name in
// a registry (Register, Open) that backends join from their package's init,
// the way database/sql drivers do; package lithops registers localhost and
// inprocess, and importing github.com/lithops-go/lithops/azure links
// azure_functions in.
//
// Decision (issue 10): compute stays public, so that programs can see and
// select the registered backends, but its interface speaks the job and
// invocation records of internal/protocol, so backends are implemented in
// this module. Opening it to outside implementations means making those
// records public (a protocol package with a compatibility promise); until
// then a new backend is a subpackage here, added with Register and no
// change to the root package.
package compute

import (
	"context"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
)

// Backend runs calls.
type Backend interface {
	// Name is the backend's configuration name, e.g. "localhost".
	Name() string
	// Invoke starts the calls of inv, whose manifest is job. It returns once
	// the calls are accepted, not when they finish. Cancelling ctx stops the
	// calls that have not finished.
	Invoke(ctx context.Context, job *protocol.Job, inv protocol.Invocation) error
	// Close stops every call and releases the backend's resources.
	Close() error
}

// Notify receives statuses pushed by a backend: running markers and final
// statuses. It must not block for long.
type Notify func(*protocol.Status)

// Leaser is implemented by backends whose runtimes renew call leases
// (protocol.LeaseKey): the client then detects vanished workers by missed
// leases. Backends that see their workers die (localhost) need not.
type Leaser interface {
	Leases() bool
}

// ManifestCarrier is implemented by backends that hand the workers of
// some jobs their manifest with the calls instead of through storage
// (localhost, for small jobs): for a job it carries whose calls carry their
// inputs too, the client writes the manifest while the calls already run,
// one storage write fewer before the first result.
type ManifestCarrier interface {
	CarriesManifest(job *protocol.Job) bool
}

// BlockRecorder is implemented by backends whose runtimes record the
// successes of a block of a job's calls in one record
// (protocol.Job.Block, protocol.BlockKey) instead of one record a call:
// Block returns the block size for job, written in its manifest (0: none).
type BlockRecorder interface {
	Block(job *protocol.Job) int
}

// ProgramUploader is implemented by backends that run the user program
// fetched from storage: Program uploads it (once) and returns its SHA-256,
// which the job manifest records.
type ProgramUploader interface {
	Program(ctx context.Context) (string, error)
}

// CallTimeoutLimiter is implemented by backends whose runtimes end a whole
// worker after a time limit (a function timeout): MaxCallTimeout is the
// longest execution timeout a call may have there so that it fails as a
// timeout of its own instead, or 0 for no limit. The executor caps each
// job's timeout at it.
type CallTimeoutLimiter interface {
	MaxCallTimeout() time.Duration
}
