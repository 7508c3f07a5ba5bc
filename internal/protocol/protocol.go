// Package protocol defines the records that clients, backends and workers
// exchange through storage, and where in storage they live.
//
// Storage is the source of truth. For a job <j> of executor <e>:
//
//	lithops.jobs/<e>/<j>/job.json                  Job manifest (JSON)
//	lithops.jobs/<e>/<j>/inputs                    all call inputs, concatenated; call i reads Job.Inputs[i]
//	lithops.jobs/<e>/<j>/status.<call>.json        Status of the finished call (JSON)
//	lithops.jobs/<e>/<j>/status.<call>-<a>.json    StatusBatch: successes of several calls, <call> first
//	lithops.jobs/<e>/<j>/result/<call>-<a>-<t>     the encoded result, when too big to inline in the status
//	lithops.jobs/<e>/<j>/shuffle/<call>-<t>        a shuffle call's sorted segments or output (MapShuffle)
//	lithops.runtimes/bin/<sha256>                  user program (gzip)
//	lithops.runtimes/<backend>/<runtime>.meta.json runtime metadata
//
// Every key of a job and the kinds of record are listed at KeyKind; records
// of one kind sit side by side under one prefix (status., attempt/, …), so a
// job of any size has a handful of "directories", not one per call: on the
// localhost storage a call costs one file, not a directory and a file. The
// statuses, the one record every call writes, sit beside the manifest, in
// the job's own "directory": a one-call job (CallAsync) makes one directory
// for its two records, not two.
//
// Invariants: framework records are JSON and carry Version; user values are
// opaque bytes produced by the job's Codec; no record ever holds a
// credential. An Invocation carries only keys, call ids and small inputs.
package protocol

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Version is the protocol version. Client and worker must agree on it.
const Version = 3 // 2: records of one kind under one prefix (status/<call>.json, …); 3: statuses beside the manifest (status.<call>.json)

// LithopsVersion is the lithops-go release; runtimes are named and deployed
// per release. A new protocol Version is a new release, so that clients of
// the old and the new one each find a runtime of their own (0.2.0:
// protocol 3) instead of redeploying the default runtime over each other.
const LithopsVersion = "0.2.0"

// InlineLimit is the largest input or result carried inside an invocation or
// a status record instead of its own object (Lithops uses the same 8 KiB).
const InlineLimit = 8 << 10

// Key prefixes.
const (
	JobsPrefix     = "lithops.jobs/"
	RuntimesPrefix = "lithops.runtimes/"
)

// ExecutorPrefix is the prefix of every key of an executor's jobs.
func ExecutorPrefix(executorID string) string { return JobsPrefix + executorID + "/" }

// JobPrefix is the prefix of every key of one job.
func JobPrefix(executorID, jobID string) string {
	return JobsPrefix + executorID + "/" + jobID + "/"
}

// JobKey is the key of the job manifest.
func JobKey(executorID, jobID string) string { return JobPrefix(executorID, jobID) + "job.json" }

// InputsKey is the key of the job's aggregated inputs.
func InputsKey(executorID, jobID string) string { return JobPrefix(executorID, jobID) + "inputs" }

// StatusKey is the key of a call's status record.
func StatusKey(executorID, jobID, callID string) string {
	return StatusPrefix(executorID, jobID) + callID + ".json"
}

// StatusPrefix is the prefix of a job's status records, its calls' own and
// its batch and block records.
func StatusPrefix(executorID, jobID string) string {
	return JobPrefix(executorID, jobID) + statusName
}

// statusName begins the name of every status record of a job.
const statusName = "status."

// BatchKey is the key of a batch record (StatusBatch) whose first call is
// first: the final successes of several calls that one worker ran one after
// the other, written at once, create-if-absent, instead of one record per
// call (localhost: a map of quick calls costs a file per batch, not per
// call).
//
// Invariant: a call's success is recorded once, in its own status record
// or in one batch record, never both. Only a localhost worker writes batch
// records, for calls of one request of its pool: one machine, where a call
// has at most one live execution (a worker that dies takes its unwritten
// batch with it, and the pool reads the batch that may start at the first
// call it did not answer before running that call again). Failures are
// always recorded per call, so that Rerun replaces them one by one.
func BatchKey(executorID, jobID string, first Call) string {
	return fmt.Sprintf("%s%s-%d.json", StatusPrefix(executorID, jobID), first.ID, first.Attempt)
}

// BlockKey is the key of the block record of the block (Job.Block calls)
// that holds call callID: BatchKey of the block's first call at attempt 0.
// ok is false for a job without blocks or a call id that is not a number.
//
// Invariant (a job with blocks): a block record is written once,
// create-if-absent, by whoever records first: a runtime, with the
// successes of the block's calls it ran (StatusBatch.Block), or anyone
// about to give one of its calls a final record of its own, with a fence
// (StatusBatch.Fence, no status). A call's final status is in the block
// record when that record lists it, otherwise in its own record: nobody
// writes a call's own final record before the block record exists, nor
// when it lists the call (worker.RecordFinal).
func BlockKey(executorID, jobID, callID string, block int) (key string, ok bool) {
	i, err := strconv.Atoi(callID)
	if block <= 0 || err != nil || i < 0 || !validCall(callID) {
		return "", false
	}
	return BatchKey(executorID, jobID, Call{ID: CallID(i - i%block)}), true
}

// StatusBatch is a batch record (BatchKey): final successes of calls of
// one job, the first one named in the key; or a block record (BlockKey),
// with Block set, or its fence.
type StatusBatch struct {
	Version int `json:"protocol"`
	// Block is the block size of a block record: its statuses are of
	// calls of the block that begins at the key's call, in any order and
	// at any attempt.
	Block int `json:"block,omitempty"`
	// Fence marks a block record that holds no status: it was written so
	// that every call of the block gets a record of its own.
	Fence    bool     `json:"fence,omitempty"`
	Statuses []Status `json:"statuses"`
}

// ParseStatusBatch decodes and checks the batch record at key k: every
// status valid, successful, of k's job, no call twice; in a batch record
// the first is of k's call and attempt, in a block record every one is of
// the block. A fence has no status: it returns none and no error.
func ParseStatusBatch(k Key, raw []byte) ([]Status, error) {
	var b StatusBatch
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("batch record: %w", err)
	}
	if b.Version != Version {
		return nil, fmt.Errorf("batch record has protocol version %d, want %d", b.Version, Version)
	}
	first, _ := strconv.Atoi(k.Call)
	switch {
	case b.Block < 0 || b.Block > MaxBlock:
		return nil, fmt.Errorf("block record has block size %d, want 1 to %d", b.Block, MaxBlock)
	case b.Block > 0 && (k.Attempt != 0 || first%b.Block != 0):
		return nil, fmt.Errorf("block record of size %d is at call %s attempt %d, not at a block's first call and attempt 0", b.Block, k.Call, k.Attempt)
	case b.Fence && len(b.Statuses) > 0:
		return nil, fmt.Errorf("block fence holds %d statuses", len(b.Statuses))
	case b.Fence:
		return nil, nil
	case len(b.Statuses) == 0:
		return nil, fmt.Errorf("batch record holds no status")
	}
	seen := make(map[string]bool, len(b.Statuses))
	for i := range b.Statuses {
		st := &b.Statuses[i]
		switch err := st.Validate(); {
		case err != nil:
			return nil, fmt.Errorf("batch record, status %d: %w", i, err)
		case st.State != StateSuccess:
			return nil, fmt.Errorf("batch record, status %d: call %s is %s; a batch holds successes only", i, st.CallID, st.State)
		case st.ExecutorID != k.Executor || st.JobID != k.Job || !validCall(st.CallID):
			return nil, fmt.Errorf("batch record, status %d: call %s/%s/%s is not of job %s/%s", i, st.ExecutorID, st.JobID, st.CallID, k.Executor, k.Job)
		case b.Block == 0 && i == 0 && (st.CallID != k.Call || st.Attempt != k.Attempt):
			return nil, fmt.Errorf("batch record begins with call %s attempt %d, its key names call %s attempt %d", st.CallID, st.Attempt, k.Call, k.Attempt)
		case seen[st.CallID]:
			return nil, fmt.Errorf("batch record holds call %s twice", st.CallID)
		}
		if b.Block > 0 {
			if c, err := strconv.Atoi(st.CallID); err != nil || c < first || c >= first+b.Block {
				return nil, fmt.Errorf("block record, status %d: call %s is not of the block of %d calls at call %s", i, st.CallID, b.Block, k.Call)
			}
		}
		seen[st.CallID] = true
	}
	return b.Statuses, nil
}

// AttemptKey is the key of the record of a failed attempt that is retried;
// the final attempt's record is at StatusKey.
func AttemptKey(executorID, jobID, callID string, attempt int) string {
	return fmt.Sprintf("%s%d.json", AttemptsPrefix(executorID, jobID, callID), attempt)
}

// LeaseKey is the key of one call's own lease, the layout of runtimes
// before message leases; ParseKey still reads it, and a client maps it to
// that call.
func LeaseKey(executorID, jobID, callID string) string {
	return LeasesPrefix(executorID, jobID) + callID
}

// LeasesPrefix is the prefix of a job's lease objects.
func LeasesPrefix(executorID, jobID string) string {
	return JobPrefix(executorID, jobID) + "lease/"
}

// MessageLeaseKey is the key of the lease of one delivery of an invocation
// message whose first call (still to run) is first: the runtime holding
// the message writes it on arrival and rewrites it every Lease/3 seconds
// for all the message's calls, waiting and running, until they have all
// ended, then deletes it. Its body (Lease) names the calls and attempts it
// vouches for. One object per message instead of per call: a message of C
// calls costs 1/C of a write per call and per renewal. The attempt in the
// name keeps a call's next attempt, sent alone, from rewriting the lease of
// the message that held the earlier one.
func MessageLeaseKey(executorID, jobID string, first Call) string {
	return fmt.Sprintf("%s%s-%d", LeasesPrefix(executorID, jobID), first.ID, first.Attempt)
}

// Lease is the body of a message lease (MessageLeaseKey).
type Lease struct {
	// At is when the runtime last wrote it (its clock; clients compare
	// ETags on their own clock, not this).
	At    time.Time   `json:"at"`
	Calls []LeaseCall `json:"calls"`
}

// LeaseCall is a call a message lease vouches for, at one attempt.
type LeaseCall struct {
	ID      string `json:"id"`
	Attempt int    `json:"attempt"`
}

// ParseLease decodes a message lease's body and checks its call ids.
func ParseLease(b []byte) (Lease, error) {
	var l Lease
	if err := json.Unmarshal(b, &l); err != nil {
		return Lease{}, fmt.Errorf("lease: %w", err)
	}
	for _, c := range l.Calls {
		if !validCall(c.ID) || c.Attempt < 0 {
			return Lease{}, fmt.Errorf("lease: bad call %q attempt %d", c.ID, c.Attempt)
		}
	}
	return l, nil
}

// LogKey is the key of a call attempt's captured stdout and stderr (gzip).
func LogKey(executorID, jobID, callID string, attempt int) string {
	return fmt.Sprintf("%slogs/%s-%d.gz", JobPrefix(executorID, jobID), callID, attempt)
}

// KeyKind names what a key under JobsPrefix holds.
type KeyKind int

// The kinds of job keys, in the layout:
//
//	lithops.jobs/<executor>/<job>/job.json                   KindManifest
//	lithops.jobs/<executor>/<job>/inputs                     KindInputs
//	lithops.jobs/<executor>/<job>/status.<call>.json         KindStatus   (final record)
//	lithops.jobs/<executor>/<job>/status.<call>-<n>.json     KindStatus   (a batch record, Batch: successes of several calls, the first at attempt n)
//	lithops.jobs/<executor>/<job>/attempt/<call>-<n>.json    KindAttempt  (an attempt handed back or retried)
//	lithops.jobs/<executor>/<job>/lease/<call>-<n>           KindLease    (a message's lease: its first call, at attempt n; renewed while its calls wait and run)
//	lithops.jobs/<executor>/<job>/lease/<call>               KindLease    (one call's lease, runtimes before message leases)
//	lithops.jobs/<executor>/<job>/logs/<call>-<n>.gz         KindLogs     (attempt n's output)
//	lithops.jobs/<executor>/<job>/result/<call>-<n>-<token>  KindResult   (one execution's result)
//	lithops.jobs/<executor>/<job>/shuffle/<call>-<token>     KindShuffle  (one execution's shuffle segments or output)
//
// Call ids are digits (CallID); Python Lithops' keys under the same
// prefix (lithops.jobs/<executor>-<job>/<call>/status.json, …) never parse.
const (
	KindUnknown KeyKind = iota
	KindManifest
	KindInputs
	KindStatus
	KindAttempt
	KindLease
	KindLogs
	KindResult
	KindShuffle
)

// Key is a parsed job key.
type Key struct {
	Kind     KeyKind
	Executor string
	Job      string
	Call     string // "" for KindManifest and KindInputs
	Attempt  int    // KindAttempt, KindLogs, KindResult, and a message's KindLease
	// Message: a message lease (MessageLeaseKey), named after its first call.
	Message bool
	// Batch: a batch record (BatchKey), named after its first call.
	Batch bool
}

// ParseKey parses a key of the layout above; ok is false for any other
// key. Every reader of job keys goes through it, so the layout has one
// owner.
func ParseKey(key string) (k Key, ok bool) {
	var rest string
	k.Executor, k.Job, rest, ok = splitJobKey(key)
	if !ok {
		return Key{}, false
	}
	parts := strings.Split(rest, "/")
	var kind, name string
	switch {
	case len(parts) == 1 && parts[0] == "job.json":
		k.Kind = KindManifest
		return k, true
	case len(parts) == 1 && parts[0] == "inputs":
		k.Kind = KindInputs
		return k, true
	case len(parts) == 1 && strings.HasPrefix(parts[0], statusName):
		kind, name = "status", strings.TrimPrefix(parts[0], statusName)
	case len(parts) == 2:
		kind, name = parts[0], parts[1]
		if kind == "status" {
			return Key{}, false // protocol 2's place
		}
	default:
		return Key{}, false
	}
	if name == "" {
		return Key{}, false
	}
	num := func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil && n >= 0 && strconv.Itoa(n) == s
	}
	// callAndAttempt splits "<call>-<n><suffix>".
	callAndAttempt := func(suffix string) bool {
		rest, ok := strings.CutSuffix(name, suffix)
		c, a, found := strings.Cut(rest, "-")
		if !ok || !found {
			return false
		}
		k.Call = c
		k.Attempt, ok = num(a)
		return ok
	}
	switch kind {
	case "status":
		k.Kind = KindStatus
		if strings.Contains(name, "-") {
			k.Batch = true
			ok = callAndAttempt(".json")
		} else {
			k.Call, ok = strings.CutSuffix(name, ".json")
		}
	case "lease":
		k.Kind = KindLease
		if strings.Contains(name, "-") {
			k.Message = true
			ok = callAndAttempt("")
		} else {
			k.Call = name
		}
	case "attempt":
		k.Kind = KindAttempt
		ok = callAndAttempt(".json")
	case "logs":
		k.Kind = KindLogs
		ok = callAndAttempt(".gz")
	case "result":
		k.Kind = KindResult
		call, rest, found := strings.Cut(name, "-")
		a, t, found2 := strings.Cut(rest, "-")
		k.Call = call
		k.Attempt, ok = num(a)
		ok = ok && found && found2 && t != ""
	case "shuffle":
		k.Kind = KindShuffle
		call, t, found := strings.Cut(name, "-")
		k.Call = call
		ok = found && t != ""
	default:
		return Key{}, false
	}
	if !ok || !validCall(k.Call) {
		return Key{}, false
	}
	return k, true
}

// KeyJob returns the executor and job of a key under JobsPrefix by its
// place alone (<executor>/<job>/…), whatever follows: ParseKey reads only
// the layout of this protocol version, and a key of an older one (protocol
// 2's status/<call>.json) still belongs to its job. ok is false for a key
// with no such place. Python Lithops' keys (<exec>-<job>/<call>/…) have one,
// but their "job" is a call id, all digits, never a job id of lithops-go,
// which begins with a letter.
func KeyJob(key string) (executor, job string, ok bool) {
	executor, job, _, ok = splitJobKey(key)
	return executor, job, ok
}

// splitJobKey splits lithops.jobs/<executor>/<job>/<rest>.
func splitJobKey(key string) (executor, job, rest string, ok bool) {
	after, ok := strings.CutPrefix(key, JobsPrefix)
	if !ok {
		return "", "", "", false
	}
	parts := strings.SplitN(after, "/", 3)
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// validCall: call ids are decimal digits (CallID).
func validCall(c string) bool {
	if c == "" {
		return false
	}
	for _, r := range c {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// AttemptsPrefix is the prefix of a call's attempt records.
func AttemptsPrefix(executorID, jobID, callID string) string {
	return JobPrefix(executorID, jobID) + "attempt/" + callID + "-"
}

// Final reports whether st ends its call: it succeeded, it failed with no
// retries left, or it was read from the call's final record (Settled).
func Final(st *Status, retries int) bool {
	return st.Settled || st.State == StateSuccess || st.Attempt >= retries
}

// RetryDelay is the one retry policy of lithops-go: whoever starts attempt
// a+1 of a failed call (a backend retrying on its own, or the client after a
// hand-back or a lost lease) waits RetryDelay(a) first. The delay doubles
// from 100 ms up to 5 s, with up to half of it again drawn at random so that
// the retries of many calls that failed together do not arrive together.
func RetryDelay(attempt int) time.Duration {
	d := 5 * time.Second
	if attempt >= 0 && attempt < 6 {
		d = min(100*time.Millisecond<<attempt, d)
	}
	return d + rand.N(d/2+1)
}

// ResultKey is the key of the result object of one execution of a call:
// "result/<call>-<attempt>-<token>". Each execution writes its own, and the
// call's final status names the one that counts, so duplicate deliveries
// and retried attempts can never overwrite the result a status points to.
func ResultKey(executorID, jobID, callID string, attempt int, token string) string {
	return fmt.Sprintf("%sresult/%s-%d-%s", JobPrefix(executorID, jobID), callID, attempt, token)
}

// ShuffleKey is the key of an object one execution of a shuffle call
// writes (lithops.MapShuffle): a mapper's sorted segments, or a reducer's
// output: "shuffle/<call>-<token>". Each execution writes its own, and the
// call's final status names the one that counts, as with ResultKey.
func ShuffleKey(executorID, jobID, callID, token string) string {
	return fmt.Sprintf("%sshuffle/%s-%s", JobPrefix(executorID, jobID), callID, token)
}

// ProgramKey is the key of an uploaded user program.
func ProgramKey(sha string) string { return RuntimesPrefix + "bin/" + sha }

// RuntimeMetaKey is the key of a runtime's metadata record.
func RuntimeMetaKey(backend, runtime string) string {
	return RuntimesPrefix + backend + "/" + runtime + ".meta.json"
}

// CallID formats call index i as Lithops does: five digits.
func CallID(i int) string { return fmt.Sprintf("%05d", i) }

// Range is a byte range of the inputs object.
type Range struct {
	Offset int64 `json:"o"`
	Size   int64 `json:"n"`
}

// Job is the job manifest.
type Job struct {
	Version    int      `json:"protocol"`
	ExecutorID string   `json:"executor_id"`
	JobID      string   `json:"job_id"`
	Function   string   `json:"function"`
	Signature  string   `json:"signature"`
	Registry   Registry `json:"registry"`
	// RegistryDigest is Registry's digest (Registry.Digest), set by
	// clients that know it; "" from a client that did not set it.
	RegistryDigest string  `json:"registry_digest,omitempty"`
	Program        string  `json:"program,omitempty"` // sha256 of the user program; "" on localhost
	Codec          string  `json:"codec"`
	Calls          int     `json:"calls"`
	Timeout        float64 `json:"timeout_s"`           // per call, seconds
	Memory         int     `json:"memory_mb,omitempty"` // per worker, MiB; 0: backend default
	// Retries is how many times a failed call is run again (Retries + 1
	// attempts in all); EscalateMemory doubles the memory limit for an
	// attempt after one that ran out of memory.
	Retries        int  `json:"retries,omitempty"`
	EscalateMemory bool `json:"escalate_memory,omitempty"`
	// Lease is how long (seconds) a running call may go without renewing
	// its lease (LeaseKey) before the client declares it lost; 0: no leases.
	Lease float64 `json:"lease_s,omitempty"`
	// Gather marks a reduce job: each call's input is a Gather, the map
	// results the worker reads itself and hands to the function as one
	// slice, so map outputs never travel through the client.
	Gather bool `json:"gather,omitempty"`
	// Chain marks a chained map job (lithops.MapFutures): each call's input
	// is a Gather of one part, naming an earlier call's final status
	// (ResultRef.Status); the worker follows it and hands the result it
	// names to the function as its input, so the earlier results never
	// travel through the client.
	Chain   bool      `json:"chain,omitempty"`
	Bucket  string    `json:"bucket"`
	Inputs  []Range   `json:"inputs"`
	Created time.Time `json:"created"`

	// ExtraEnv is set in the environment of the worker process while each
	// call of the job runs (Lithops' extra_env).
	ExtraEnv map[string]string `json:"extra_env,omitempty"`
	// Chunksize is how many calls one invocation carries on backends that
	// group calls (Lithops' chunksize); 0: the config's lithops.chunksize.
	Chunksize int `json:"chunksize,omitempty"`
	// InputsInline: the inputs are InlineInputs, in the manifest, and there
	// is no inputs object (a job whose inputs total at most InlineLimit, such
	// as a CallAsync: one object fewer to write per job). Inputs ranges
	// index InlineInputs then.
	InputsInline bool   `json:"inputs_inline,omitempty"`
	InlineInputs []byte `json:"inline_inputs,omitempty"`
	// Block, when set, groups the job's calls in blocks of Block calls
	// (call i is in the block of call i - i%Block) whose successes a
	// runtime records together, in one block record (BlockKey); 0: every
	// call has its own record (or, on localhost, batch records).
	Block int `json:"block,omitempty"`

	// frozen, set by SetRegistry, holds Registry's JSON encoded once.
	frozen *FrozenRegistry
}

// MaxBlock is the largest Job.Block: a block record holds at most that
// many statuses.
const MaxBlock = 256

// Gather is the input of a call of a gathering job (Job.Gather): results of
// earlier calls, in the order the function receives them.
type Gather struct {
	Parts []ResultRef `json:"parts"`
}

// ResultRef is one result of an earlier call: its encoded bytes inline, or
// the key (in the job's bucket) of the object holding them.
type ResultRef struct {
	Inline    []byte `json:"inline,omitempty"`
	HasInline bool   `json:"has_inline,omitempty"` // Inline is the result (it may be empty)
	Key       string `json:"key,omitempty"`
	Size      int64  `json:"size,omitempty"` // bytes at Key
	// Status is the key (in the job's bucket) of an earlier call's final
	// status record: the worker reads it and takes the result it names,
	// inline or by key. Used when the reference is made before the earlier
	// call has finished (chained maps).
	Status string `json:"status,omitempty"`
}

// ParseJob decodes and checks a job manifest (JobKey), the one way every
// reader takes: raw as read from storage.
func ParseJob(raw []byte) (*Job, error) {
	j := new(Job)
	if err := json.Unmarshal(raw, j); err != nil {
		return nil, fmt.Errorf("job manifest is not valid JSON: %w", err)
	}
	if err := j.Validate(); err != nil {
		return nil, err
	}
	return j, nil
}

// ParseStatus decodes and checks the status record of one call (StatusKey
// or AttemptKey; a batch or block record is ParseStatusBatch's), the one way
// every reader takes: raw as read from storage.
func ParseStatus(raw []byte) (*Status, error) {
	st := new(Status)
	if err := json.Unmarshal(raw, st); err != nil {
		return nil, fmt.Errorf("status record is not valid JSON: %w", err)
	}
	if err := st.Validate(); err != nil {
		return nil, err
	}
	return st, nil
}

// ParseGather decodes and checks a gathering call's input.
func ParseGather(raw []byte) (*Gather, error) {
	var g Gather
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, fmt.Errorf("gather input is not valid JSON: %w", err)
	}
	for i, p := range g.Parts {
		switch {
		case p.Status != "" && (p.HasInline || p.Key != ""):
			return nil, fmt.Errorf("gather input part %d names a status and a result", i)
		case p.Status != "":
			if k, ok := ParseKey(p.Status); !ok || k.Kind != KindStatus {
				return nil, fmt.Errorf("gather input part %d names %q, not a status record", i, p.Status)
			}
		case p.HasInline && p.Key != "":
			return nil, fmt.Errorf("gather input part %d has both an inline result and a key", i)
		case !p.HasInline && p.Key == "":
			return nil, fmt.Errorf("gather input part %d has neither an inline result nor a key", i)
		case p.Size < 0:
			return nil, fmt.Errorf("gather input part %d has size %d", i, p.Size)
		}
	}
	return &g, nil
}

// Key returns the display key "<executor>/<job>".
func (j *Job) Key() string { return j.ExecutorID + "/" + j.JobID }

// Validate checks a manifest read from storage.
func (j *Job) Validate() error {
	switch {
	case j.Version != Version:
		return fmt.Errorf("job manifest has protocol version %d, this program speaks %d", j.Version, Version)
	case j.ExecutorID == "" || j.JobID == "":
		return fmt.Errorf("job manifest lacks executor_id or job_id")
	case j.Function == "":
		return fmt.Errorf("job manifest lacks function")
	case j.Calls < 0 || len(j.Inputs) != j.Calls:
		return fmt.Errorf("job manifest has %d calls but %d input ranges", j.Calls, len(j.Inputs))
	case j.Block < 0 || j.Block > MaxBlock:
		return fmt.Errorf("job manifest has block %d, want 0 to %d", j.Block, MaxBlock)
	}
	var end int64
	for i, r := range j.Inputs {
		if r.Offset < end || r.Size < 0 {
			return fmt.Errorf("job manifest input range %d (offset %d, size %d) is out of order or negative", i, r.Offset, r.Size)
		}
		end = r.Offset + r.Size
	}
	if j.InputsInline && end > int64(len(j.InlineInputs)) {
		return fmt.Errorf("job manifest input ranges end at byte %d of %d inline input bytes", end, len(j.InlineInputs))
	}
	return nil
}

// Call is one call of an invocation.
type Call struct {
	ID      string `json:"id"`
	Index   int    `json:"i"`
	Attempt int    `json:"attempt,omitempty"`
	// Input is the encoded input when it is small enough to travel inline.
	Input []byte `json:"input,omitempty"`
	// HasInput tells an empty inline input from an absent one.
	HasInput bool `json:"has_input,omitempty"`
}

// Invocation operations.
const (
	OpRun      = ""         // run the calls
	OpMetadata = "metadata" // write the runtime's metadata to MetaKey
)

// Invocation is the message a backend delivers to a worker.
type Invocation struct {
	Version int    `json:"protocol"`
	Op      string `json:"op,omitempty"`
	MetaKey string `json:"meta_key,omitempty"`
	// ResultQueue is where the runtime pushes final statuses (a queue name,
	// never a credential); "" means storage polling only.
	ResultQueue string    `json:"result_queue,omitempty"`
	Bucket      string    `json:"bucket"`
	ExecutorID  string    `json:"executor_id"`
	JobID       string    `json:"job_id"`
	Program     string    `json:"program,omitempty"`
	Deadline    time.Time `json:"deadline,omitzero"`
	Calls       []Call    `json:"calls"`
	// Job is the job's manifest itself, which the process pool hands its
	// workers with the calls of a small job so that they need not read it
	// from storage (where it is all the same). Only the pool sets it.
	Job *Job `json:"job,omitempty"`
}

// Validate checks an invocation received from the outside.
func (inv *Invocation) Validate() error {
	switch {
	case inv.Version != Version:
		return fmt.Errorf("invocation has protocol version %d, this runtime speaks %d: redeploy the runtime or upgrade the client", inv.Version, Version)
	case inv.Op == OpMetadata:
		if inv.Bucket == "" || !strings.HasPrefix(inv.MetaKey, RuntimesPrefix) {
			return fmt.Errorf("metadata invocation lacks bucket or a meta_key under %s", RuntimesPrefix)
		}
		return nil
	case inv.Op != OpRun:
		return fmt.Errorf("invocation has unknown op %q", inv.Op)
	case inv.Bucket == "" || inv.ExecutorID == "" || inv.JobID == "":
		return fmt.Errorf("invocation lacks bucket, executor_id or job_id")
	case len(inv.Calls) == 0:
		return fmt.Errorf("invocation has no calls")
	case strings.ContainsAny(inv.ExecutorID+inv.JobID, "/\\") || strings.Contains(inv.ExecutorID+inv.JobID, ".."):
		return fmt.Errorf("invocation executor_id %q or job_id %q contains a path separator", inv.ExecutorID, inv.JobID)
	}
	seen := make(map[string]bool, len(inv.Calls))
	for _, c := range inv.Calls {
		if c.ID == "" || strings.ContainsAny(c.ID, "/\\") || c.Index < 0 {
			return fmt.Errorf("invocation call id %q (index %d) is malformed", c.ID, c.Index)
		}
		if seen[c.ID] {
			return fmt.Errorf("invocation names call %s twice", c.ID)
		}
		seen[c.ID] = true
	}
	if inv.Job != nil {
		if err := inv.Job.Validate(); err != nil {
			return fmt.Errorf("invocation's manifest: %w", err)
		}
		if inv.Job.ExecutorID != inv.ExecutorID || inv.Job.JobID != inv.JobID {
			return fmt.Errorf("invocation of %s/%s carries the manifest of %s/%s", inv.ExecutorID, inv.JobID, inv.Job.ExecutorID, inv.Job.JobID)
		}
	}
	return nil
}

// State of a call.
type State string

// Call states recorded in Status.
const (
	StateRunning State = "running"
	StateSuccess State = "success"
	StateError   State = "error"
)

// ErrorKind classifies a failed call.
type ErrorKind string

// Error kinds.
const (
	KindUser     ErrorKind = "user"     // the function returned an error
	KindPanic    ErrorKind = "panic"    // the function panicked
	KindTimeout  ErrorKind = "timeout"  // the call exceeded its timeout and was killed
	KindOOM      ErrorKind = "oom"      // the call exceeded its memory and was killed
	KindCrash    ErrorKind = "crash"    // the worker process exited or was killed while running the call
	KindLost     ErrorKind = "lost"     // the worker vanished without a trace
	KindMismatch ErrorKind = "mismatch" // the worker's program differs from the client's
	KindHandler  ErrorKind = "handler"  // the framework failed around the call (storage, decoding, …)
)

// ErrorRecord describes a failure.
type ErrorRecord struct {
	Kind     ErrorKind `json:"kind"`
	Type     string    `json:"type,omitempty"`
	Message  string    `json:"message"`
	Stack    string    `json:"stack,omitempty"`
	ExitCode int       `json:"exit_code,omitempty"`
	// Chain lists the members of a user error's chain (errors.Unwrap,
	// Unwrap() []error; depth first, outermost first) that the program
	// registered, so that the client can rebuild them: errors.Is and
	// errors.As then hold on the caller as in the function.
	Chain []ErrorLink `json:"chain,omitempty"`
}

// ErrorLink is one registered member of a user error's chain.
type ErrorLink struct {
	// Name is the member's registered name: for a sentinel error the name
	// it was registered under, for an error type the type's name.
	Name string `json:"name"`
	// Sentinel is true for a registered error value (matched by identity),
	// false for a registered error type (rebuilt from Value).
	Sentinel bool `json:"sentinel,omitempty"`
	// Message is the member's own Error().
	Message string `json:"message,omitempty"`
	// Value is the member encoded with Codec ("gob" or "json"); empty when
	// it could be encoded with neither.
	Value []byte `json:"value,omitempty"`
	Codec string `json:"codec,omitempty"`
}

// Status is the record of one finished (or running) call attempt.
type Status struct {
	Version    int          `json:"protocol"`
	ExecutorID string       `json:"executor_id"`
	JobID      string       `json:"job_id"`
	CallID     string       `json:"call_id"`
	Attempt    int          `json:"attempt"`
	State      State        `json:"state"`
	WorkerID   string       `json:"worker_id,omitempty"`
	ColdStart  bool         `json:"cold_start,omitempty"`
	Start      time.Time    `json:"start,omitzero"`
	FuncStart  time.Time    `json:"func_start,omitzero"`
	FuncEnd    time.Time    `json:"func_end,omitzero"`
	End        time.Time    `json:"end,omitzero"`
	Result     []byte       `json:"result,omitempty"`
	HasResult  bool         `json:"has_result,omitempty"` // Result is inline (it may be empty)
	ResultKey  string       `json:"result_key,omitempty"`
	ResultSize int64        `json:"result_size,omitempty"`
	PeakRSS    int64        `json:"peak_rss,omitempty"`
	LogSize    int64        `json:"log_size,omitempty"` // bytes of output at LogKey
	Error      *ErrorRecord `json:"error,omitempty"`

	// Unrecorded marks, in memory only, a status that could not be written
	// to storage.
	Unrecorded bool `json:"-"`
	// Deferred marks, in memory only, a final status its worker did not
	// write because whoever ran the call records it (a runtime host, for
	// the calls of a block: Job.Block).
	Deferred bool `json:"-"`
	// Settled says the status is the call's final record (its own record
	// at StatusKey, or in its block's record), written or read there: it
	// ends the call whatever its attempt, as a handler error a runtime host
	// recorded at attempt 0 of a call with retries does (Final). Pushes and
	// pipe answers carry it; a stored record does not need it (its key
	// says it) and is written without it.
	Settled bool `json:"settled,omitempty"`
}

// Failed is the record of a failed attempt that the framework, not the
// worker, writes: a call lost, given up on, or without its program.
func Failed(executorID, jobID string, c Call, kind ErrorKind, typ, msg string) *Status {
	return &Status{Version: Version, ExecutorID: executorID, JobID: jobID, CallID: c.ID, Attempt: c.Attempt,
		State: StateError, End: time.Now(), Error: &ErrorRecord{Kind: kind, Type: typ, Message: msg}}
}

// Validate checks a status read from storage or a pipe.
func (s *Status) Validate() error {
	switch {
	case s.Version != Version:
		return fmt.Errorf("status has protocol version %d, want %d", s.Version, Version)
	case s.CallID == "" || s.JobID == "":
		return fmt.Errorf("status lacks call_id or job_id")
	}
	switch s.State {
	case StateRunning:
	case StateSuccess:
		if !s.HasResult && s.ResultKey == "" {
			return fmt.Errorf("successful status of call %s has neither an inline result nor a result key", s.CallID)
		}
	case StateError:
		if s.Error == nil {
			return fmt.Errorf("failed status of call %s has no error record", s.CallID)
		}
	default:
		return fmt.Errorf("status of call %s has unknown state %q", s.CallID, s.State)
	}
	return nil
}

// RuntimeMeta describes a deployed runtime; it is stored at RuntimeMetaKey.
type RuntimeMeta struct {
	Version        int       `json:"protocol"`
	Runtime        string    `json:"runtime_name"`
	Backend        string    `json:"backend"`
	LithopsVersion string    `json:"lithops_version"`
	GoVersion      string    `json:"go_version"`
	MemoryMB       int       `json:"runtime_memory"`
	TimeoutS       int       `json:"runtime_timeout"`
	Workers        int       `json:"worker_processes"`
	Program        string    `json:"program,omitempty"` // sha256 of a compiled-in user program
	Trigger        string    `json:"trigger,omitempty"`
	Endpoint       string    `json:"endpoint,omitempty"` // HTTPS URL of the function (https trigger)
	Queue          string    `json:"queue,omitempty"`    // trigger queue the runtime listens on
	Created        time.Time `json:"created,omitzero"`
}
