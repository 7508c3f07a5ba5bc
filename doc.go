// Package lithops runs Go functions at massive parallelism, locally or on
// serverless platforms, with the programming model of Lithops: CallAsync,
// Map, MapReduce, futures, Wait and results.
//
// Functions are registered at package level under a stable name, and the
// program calls Main (or Init) first thing in main:
//
//	var addSeven = lithops.Func("add_seven", func(ctx context.Context, x int) (int, error) {
//		return x + 7, nil
//	})
//
//	func main() {
//		lithops.Main(func(ctx context.Context) error {
//			fexec, err := lithops.NewExecutor(ctx)
//			if err != nil {
//				return err
//			}
//			defer fexec.Close()
//			fut, err := lithops.CallAsync(ctx, fexec, addSeven, 3)
//			if err != nil {
//				return err
//			}
//			v, err := fut.Result(ctx) // 10
//			fmt.Println(v, err)
//			return nil
//		})
//	}
//
// Go cannot ship closures, so a worker is the user's own program started in
// worker mode: Main serves calls there instead of running the program. A
// function's input carries everything it needs; inputs and results travel
// through a Codec (gob by default, JSON selectable).
//
// Invariants:
//   - Storage is the source of truth: every call ends with a status record in
//     storage, written by the worker or, when the worker died, by the backend.
//   - Results come back in input order; a call that returned a zero or nil
//     value yields that value, it is never dropped.
//   - A failed call yields a *CallError that errors.Is matches against
//     ErrUser, ErrPanic, ErrTimeout, ErrOOM, ErrCrashed, ErrLost, ErrMismatch.
//   - With no configuration at all everything runs on this machine: the
//     localhost backend (resident worker processes) and localhost storage (a
//     directory under the OS temp dir).
//
// # Execution model
//
// A job is one manifest (job.json: function, program hash, codec, calls,
// timeout, retries) and one inputs object in storage; each call of it is
// addressed as <executor>/<job>/<call> (internal/protocol owns the key
// layout and parses it: ParseKey). The life of a call:
//
// Delivery. The executor writes the manifest and inputs, then hands the
// calls to the backend: localhost queues them to resident worker processes
// over pipes (JSON lines, or gob once a worker says it reads it); Azure
// Functions enqueues invocation messages (several calls each, chunksize)
// on the runtime's trigger queue, or posts them to its HTTPS trigger.
// Queues deliver at least once: a call may run twice.
//
// Exactly one result. Every status record is written create-if-absent
// (worker.Record): the first final status of a call is the only one anyone
// reads, whatever duplicate deliveries or retried attempts do; each
// execution writes its result object under a key of its own, named by the
// status that wins. A hand-back record (attempt/<call>-<n>.json) is not written once
// a final status exists, so a call's records agree.
//
// Batch records. On localhost the pool sends a worker several queued calls
// of a job in one request (at most the queue's share of one worker in two,
// so the last calls spread over the workers), and the worker records the
// successes of the calls that end within half a millisecond of each other
// in one batch record (status.<first call>-<attempt>.json) before it
// answers them: a map of quick calls costs a file per batch, not per call.
// A success is recorded once, in its own record or in one batch record;
// failures always get their own, which Rerun replaces. Every answer before
// a batch is in the pipe before the batch is written. A worker that dies
// takes its unwritten batch with it, and the pool reads the batch that
// holds the first call the worker did not answer before it runs the calls
// left again, alone: a timeout, a memory kill or a death in a request of
// several calls charges none of them, the one at fault is charged when it
// runs alone. Only localhost workers write batch records: a call has at
// most one live execution there. Readers (the poller, Attach, job stats,
// `lithops logs`) read a batch record's calls after the calls' own records.
//
// Block records. On Azure a message may be delivered twice, an instance
// thought lost may still write, and a Rerun regroups calls, so records
// there are grouped by a key every party derives from the call alone: a
// job's calls form fixed blocks (Job.Block, at most 16, and each message
// carries whole blocks), and the runtime host records the successes of a
// block's calls in its delivery in one block record,
// status.<block's first call>-0.json, once they have all ended or a
// second after the first (its workers answer unrecorded: PipeRequest.Defer).
// The block key is written once, create-if-absent: by the host with
// successes, or by anyone about to give a call of the block a final record
// of its own (a failure, the client's "lost", a poisoned message, a retry
// that ran elsewhere) with a fence that lists none (worker.RecordFinal). A
// call's final status is in the block record when that record lists it,
// otherwise in its own record. A map of quick calls then costs one status
// write per block instead of per call.
//
// Leases. On Azure the runtime host writes one lease for the calls of an
// invocation message when it arrives, naming them and their attempts, and
// renews it every lease_timeout/3 seconds while they wait for the program
// and a worker and while they run; it deletes the lease once they have all
// ended. The client maps each call to the lease naming its newest attempt
// and declares the calls of a lease that stopped changing for
// lease_timeout lost (ErrLost, recorded create-if-absent), running them
// again if retries remain. On localhost the backend sees a worker die.
//
// Retries and escalation. WithRetries(n) gives a call n+1 attempts; the
// backend or runtime host retries where the call runs. Whoever starts the
// next attempt waits protocol.RetryDelay first (100 ms doubling to 5 s,
// jittered): one retry policy for the process pool, inprocess and the
// executor's own retries. An attempt that ran
// out of memory with WithMemoryEscalation is handed back to the client,
// which runs the next attempt with more memory (twice the limit locally,
// the next Flex instance size on Azure); a hand-back delivered twice starts
// one attempt. A call's execution timeout is capped 5 s below the runtime's
// function timeout (and the HTTP limit over HTTPS), so it fails as
// ErrTimeout rather than with its handler.
//
// Poison. A queue message that fails five deliveries goes to the poison
// queue; the runtime host records its calls as failed on the last delivery,
// and the client's poison watcher does so when the host could not.
//
// Completion. The backend pushes final statuses (the worker pipe; a
// per-executor completion queue on Azure); the executor also lists the
// job's records, often while pushes stop and rarely while they flow, as the
// safety net. A record that cannot be read ends its call with ErrCorrupt.
//
// What the client keeps. While a job has calls running the executor holds
// its state; once the job has finished it holds only a summary (Jobs) and
// the state lives as long as the user's futures of it, so a client that
// runs many maps keeps the memory of the ones it still uses. JobFutures,
// Rerun and Awaitable read a released job back from storage. Inputs are
// encoded once; localhost queues a window of a few calls per worker, not
// the whole job. Wait follows the changes of its own calls, never a scan of
// all of them.
//
// Who deletes what. An executor deletes the records of the jobs it created,
// when it closes (lithops.data_cleaner, on by default) or on Clean: a new
// executor created all of its jobs, one made by Attach only those
// submitted through it. No error path deletes a record. Leases are not
// records: the runtime deletes a message's lease when its calls have ended,
// the executor a lease that went stale (its calls lost, recorded first) and,
// before a Rerun, the job's leases. Programs uploaded by
// hash stay until `lithops clean`. Executor ids carry 64 random bits and a
// new executor never takes an id that has records in storage. Localhost
// storage's own files (temporary files, and the empty directories it
// holds for a few minutes after an executor's directory goes: see
// storage/localfs) are its driver's alone to make and delete.
//
// # Pipelines and the shuffle
//
// Chained maps (MapFutures, Then). The calls of a chained job are written
// to storage with the job, each naming the final status record of its
// input call; the client invokes a call when that input call has finished
// (all the calls ready at once in one invocation), handing it the result
// that status names (inline, or its object's key) as it invokes it; a
// worker that reads the call's input from storage follows the status (in
// the input call's own record or a batch record) to the same result.
// Results of the earlier job in objects never travel through the client;
// every attempt of a chained call reads the same status's result. A chained call whose input call failed is not run: it fails with
// an *UpstreamError wrapping the earlier error. The earlier job's records
// stay (pinned) until the chained calls have finished.
//
// MapShuffle. Invariants of its data path:
//   - Partitioning is a pure function of the key: FNV-1a of a string key,
//     a mix of the bytes of any other cmp.Ordered key (hash partitioning,
//     the same in every mapper), or the position among R-1 bounds drawn
//     from a sample of the keys (SortedOutput: reducer i's keys all lie
//     below reducer i+1's). Keys are compared decoded, with cmp.Compare;
//     the encoding (the executor's codec, one stream per segment; raw
//     length-prefixed bytes when keys are strings and values strings or
//     byte slices) need not preserve order.
//   - A mapper writes exactly one object per execution, at
//     protocol.ShuffleKey (a token of its own), holding its R segments, each
//     sorted by key (equal keys keep their emit order), and an index; its
//     result is that key and the R+1 segment offsets. A mapper buffers at
//     most a quarter of its memory limit (runtime_memory, or ShuffleMemory)
//     before it spills a sorted run to local disk; the final object is the
//     merge of its runs.
//   - Reducers start when every mapper has finished, and read only the
//     objects that the mappers' final statuses name, each with a range read
//     of their partition's segment (in parallel, read ahead), merged k-way:
//     a retried or duplicated mapper never doubles its pairs. A reducer
//     never holds its partition: its memory is the read-ahead of at most 64
//     segments at once (past that it merges them 64 at a time into sorted
//     runs on local disk, then merges the runs), and the values of one key
//     stream through the reducer's iterator.
//   - A reducer writes one output object per execution, also at
//     ShuffleKey; the reduce call's final status names the one that counts,
//     and Shuffle.Outputs and Shuffle.All read only those. A lost or failed
//     reducer is retried like any call (WithRetries through
//     ShuffleCallOptions); a failed mapper or reducer fails the shuffle
//     with its *CallError.
//   - Segment and output objects are records of their jobs: the executor
//     deletes them with the jobs' other records (Close, Clean).
package lithops
