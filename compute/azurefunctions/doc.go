// Package azurefunctions is the Azure Functions compute backend: the client
// side of a runtime deployed as a Flex Consumption function app whose
// custom handler is the generic runtime host (internal/host), and Serve,
// the entry through which a user's program runs as that handler.
//
// Importing the package registers the azure_functions backend
// (compute.Register). Programs import github.com/lithops-go/lithops/azure,
// which links this backend, azure_storage and the runtime host; the
// lithops CLI builds, deploys and deletes runtimes. What the backend builds
// on lives behind it, in internal/azure: appsettings (the name of every app
// setting), naming (resource and queue names), queues (the queue service),
// httptrigger (the HTTPS trigger's client), build (app package and
// program cross-build) and deploy (with armdeploy: Resource Manager,
// OneDeploy, probes and runtime metadata).
//
// The execution model common to every backend (delivery, exactly one
// result, leases, retries and escalation, poison, completion, who deletes
// what) is described once, in the "Execution model" section of package
// [github.com/lithops-go/lithops]. On Azure it holds as follows.
//
// # Invariants
//
// At-least-once delivery. Invoke uploads the user program once by hash,
// then enqueues invocation messages (base64 JSON, at most 64 KiB: inline
// inputs are dropped and calls split to fit) on the trigger queue of the
// runtime deployment at the call's memory size. A message carries the
// job's chunksize calls (WithChunkSize), else lithops.chunksize, else
// AutoChunk's choice: at least the runtime's worker_processes (an
// instance takes one message at a time and runs its calls on its
// workers), more rounds of them only while the map has more than a few
// messages per instance (azure_functions.max_workers) and only as many as
// fit, each at the call timeout, below the function timeout. The
// Functions host delivers each message until the handler answers 2xx: a
// message may be delivered, and a call run, more than once. Over the HTTPS
// trigger, invocations are posted instead, retried on 429 and 5xx; a post
// that fails for good records its calls as failed.
//
// Exactly one result per call. Every status record, the runtime host's
// and the backend's alike, is written create-if-absent: the first final
// status of a call is the one everyone reads, whatever a duplicate delivery
// does later. So the runtime host reads no status before running a
// message's first delivery: a duplicate message runs its calls again and
// their writes keep the first outcome. On a redelivery (dequeue count
// above 1) it reports the calls already recorded instead of running them.
// The runtime host answers 2xx only when every call of the invocation has
// a status in storage, else 5xx so that the message comes back.
//
// Blocks. A job of several calls has blocks (Block: the largest divisor of
// its chunk size up to BlockCalls), each message carries whole blocks, and the
// runtime host records the successes of a block in one object
// (protocol.BlockKey): about one status write per block instead of per
// call. Whoever gives a call of a block a record of its own first fences
// the block (worker.RecordFinal), so a call's final status is in exactly
// one place.
//
// Leases. The runtime host writes one lease per invocation message it
// holds (its key names the first call and attempt, its body every call and
// attempt) when the message arrives, renews it while the calls wait and
// run, and deletes it when they have all ended (Leases reports true); the
// executor declares the calls of a lease that stopped changing for
// lithops.lease_timeout lost. So a vanished instance is found within the
// lease, not after the queue's redelivery, for one write per message and
// round rather than one per call.
//
// Hand-back. The runtime host does not retry a call on its instance: a
// failed attempt with retries left, and an out-of-memory attempt to run
// again on the next Flex instance size (NextMemory), is recorded as an
// attempt record (attempt-<n>.json) and reported; the next attempt has a
// lease of its own (the attempt is in the lease's key and body). The client starts the
// next attempt, on the deployment of the memory size it asks for; a
// hand-back delivered twice starts one attempt.
//
// Poison. After five failed deliveries (host.json maxDequeueCount) the
// platform moves a message to <queue>-poison. The runtime host records the
// unsettled calls as failed on the last delivery; when it could not (it
// crashed every time), the backend's poison watcher records them,
// create-if-absent, and notifies the executor. The watcher also warns when
// a trigger queue's oldest message has never been delivered (no app
// consumes it).
//
// Completion. The runtime host pushes final statuses to the executor's
// completion queue, a JSON array per message: the statuses of an
// invocation's calls that end within host.PushDelay of each other, the
// rest when its last call ends. The backend consumes the queue and
// notifies the executor. It does not delete what it reads (a request per
// message saved): it reads each message with the longest visibility
// timeout, 7 days, which outlasts the message's time to live, so the
// message never shows again while the queue exists, and Close deletes the
// queue with whatever is in it. That is safe under at-least-once
// semantics because a completion message is only a hint: a status
// notified twice (a message read again) changes nothing, the first final
// status of a call being the one that counts, and a status never notified
// (a push that failed, a message lost with a client that stopped) is
// found by the executor's storage poll, the safety net, which lists the
// job often while pushes stop and rarely while they flow.
//
// Who deletes what. The Functions host deletes a trigger message once the
// handler answered 2xx, and moves it to the poison queue after the last
// failed delivery. The backend creates the executor's completion queue in
// New and deletes it, with its messages, in Close;
// from a poison queue it deletes only its own executor's messages, after
// their calls are recorded, leaving other executors' to their watchers.
// The runtime host deletes a message's lease when its calls have ended;
// the executor deletes a lease that went stale, and Rerun the job's
// leases. Job
// records (statuses, attempts, leases, results) are the executor's to
// delete. Runtimes (app, plan, trigger and poison queues, package
// container, metadata) are deleted only by `lithops runtime delete` and
// `lithops clean -b azure_functions`, programs only by `lithops clean`.
package azurefunctions
