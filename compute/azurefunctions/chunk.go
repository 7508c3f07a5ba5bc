package azurefunctions

import (
	"time"

	"github.com/lithops-go/lithops/internal/host"
	"github.com/lithops-go/lithops/internal/protocol"
)

// Bounds of the automatic chunk size (AutoChunk).
const (
	// chunkSpread is how many messages per instance the automatic chunk
	// size aims at: more than one, so that instances that start late or
	// run slower still find work, few enough that the messages' own
	// requests stay a small share of a call's.
	chunkSpread = 4
	// maxAutoChunk bounds the calls of one message: enough to make a
	// message's requests negligible, few enough for one instance.
	maxAutoChunk = 256
)

// chunkSize is how many calls one invocation message of job carries: the
// job's own chunksize (WithChunkSize), else lithops.chunksize, else
// AutoChunk for the map of n calls on the runtime meta describes.
func (b *Backend) chunkSize(job *protocol.Job, meta protocol.RuntimeMeta, n int) int {
	if job.Chunksize > 0 {
		return job.Chunksize
	}
	if c := b.cfg.Lithops.Chunksize; c > 0 {
		return c
	}
	return AutoChunk(n, meta.Workers, b.cfg.AzureFunctions.MaxWorkers, time.Duration(job.Timeout*float64(time.Second)), meta.TimeoutS)
}

// AutoChunk chooses the calls per invocation message for a map of n calls
// on a runtime of instances instances (azure_functions.max_workers) with
// workers worker processes each (worker_processes), whose calls may each
// run for callTimeout, on a function timeout of runtimeTimeoutS seconds.
//
// An instance takes one message at a time (host.json batchSize 1) and runs
// its calls on its workers, so a message carries at least workers calls:
// one round that keeps every worker of the instance busy. Beyond that a
// message carries more rounds only while the map has more than
// chunkSpread messages for every instance, and only as many rounds as fit,
// each at its longest (callTimeout), in the call timeout cap below the
// function timeout: at the function timeout the platform kills the
// instance's handler with every call on it, so a message must never need
// longer than one call may take. Without a call timeout or a runtime
// timeout a message carries one round.
func AutoChunk(n, workers, instances int, callTimeout time.Duration, runtimeTimeoutS int) int {
	workers, instances = max(workers, 1), max(instances, 1)
	rounds := (n + workers*instances*chunkSpread - 1) / (workers * instances * chunkSpread)
	fit := 1
	if capped := host.CallTimeoutCap(runtimeTimeoutS); capped > 0 && callTimeout > 0 {
		fit = max(int(capped/callTimeout), 1)
	}
	rounds = max(min(rounds, fit, max(maxAutoChunk/workers, 1)), 1)
	return workers * rounds
}

// BlockCalls is the largest block (protocol.Job.Block) of a job on Azure:
// the calls whose successes a runtime records in one object. A block's
// results reach storage once all its calls in a message have ended (or
// host.BlockDelay after the first), so larger blocks save little (one
// write per block against one per call) and hold results longer.
const BlockCalls = 16

// Block implements compute.BlockRecorder: a job's blocks are the largest
// divisor of its chunk size (calls per message) up to BlockCalls, so that
// each message of its first invocation carries whole blocks. A job of one
// call, or whose chunk has no divisor above 1 in that range, gets none: a
// block of one call costs as much as a record of its own.
func (b *Backend) Block(job *protocol.Job) int {
	t := b.defaultTier()
	if t == nil || job.Calls < 2 {
		return 0
	}
	return BlockSize(b.chunkSize(job, t.meta, job.Calls))
}

// BlockSize is the block size for messages of chunk calls: the largest
// divisor of chunk up to BlockCalls, or 0 when that is 1.
func BlockSize(chunk int) int {
	for k := min(chunk, BlockCalls); k > 1; k-- {
		if chunk%k == 0 {
			return k
		}
	}
	return 0
}
