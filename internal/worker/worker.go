// Package worker is what a user program does in worker mode: it receives
// invocations, runs the registered functions they name, and records each
// call's outcome in storage.
//
// Invariants:
//   - A call's status is written to storage before the worker reports it by
//     any other channel, so storage is always at least as new as a report.
//   - A call whose status could not be written is reported as an error to the
//     caller of Run (the host then lets the invocation be redelivered); a call
//     that failed in user code is a recorded, successful run of the framework.
//   - The worker refuses to run a job whose registry (function names and Go
//     types) differs from its own, and says which function differs.
package worker

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"golang.org/x/sync/errgroup"
)

// Func is a registered function as the worker sees it: bytes in, bytes out.
type Func struct {
	Name      string
	Signature string
	// Call decodes the input with the codec, runs the function and encodes
	// its result. A returned error is the user's error.
	Call func(ctx context.Context, c protocol.Codec, input []byte) ([]byte, error)
	// CallParts is Call for a function whose input is a slice, given the
	// encoded results that become its elements (a gathering job); nil for
	// other functions.
	CallParts func(ctx context.Context, c protocol.Codec, parts [][]byte) ([]byte, error)
}

// Worker runs calls. It is safe for concurrent use.
type Worker struct {
	ID       string
	Storage  *storage.Storage
	Funcs    map[string]*Func
	Registry protocol.Registry
	Logger   *slog.Logger

	// Capture, if set, collects each call's stdout and stderr, which Run
	// stores gzipped at protocol.LogKey.
	Capture *Capture

	mu   sync.Mutex
	jobs map[string]*protocol.Job
	warm bool
	// digest is Registry's digest, computed once (digestOnce).
	digest     string
	digestOnce sync.Once

	// ownProcess is set when the worker runs one call at a time in a
	// process of its own (ServePipe), so that a job's ExtraEnv can be set
	// in the process environment while its call runs.
	ownProcess bool
}

// New returns a worker over the registered functions.
func New(id string, st *storage.Storage, funcs map[string]*Func, logger *slog.Logger) *Worker {
	reg := protocol.Registry{}
	for n, f := range funcs {
		reg[n] = f.Signature
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Worker{ID: id, Storage: st, Funcs: funcs, Registry: reg, Logger: logger, jobs: map[string]*protocol.Job{}}
}

type ctxKey int

const (
	storageKey ctxKey = iota
	callIDKey
)

// WithCall returns ctx carrying the storage and call id that functions read
// with StorageFrom and CallIDFrom.
func WithCall(ctx context.Context, st *storage.Storage, callID string) context.Context {
	ctx = context.WithValue(ctx, storageKey, st)
	return context.WithValue(ctx, callIDKey, callID)
}

// StorageFrom returns the storage of the call running in ctx, or nil.
func StorageFrom(ctx context.Context) *storage.Storage {
	st, _ := ctx.Value(storageKey).(*storage.Storage)
	return st
}

// CallIDFrom returns the id of the call running in ctx, or "".
func CallIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(callIDKey).(string)
	return id
}

// manifest is the job of inv: the one it carries (Invocation.Job, from
// the process pool; validated with the invocation), else the one in
// storage.
func (w *Worker) manifest(ctx context.Context, inv *protocol.Invocation) (*protocol.Job, error) {
	if inv.Job != nil && inv.Job.ExecutorID == inv.ExecutorID && inv.Job.JobID == inv.JobID {
		return inv.Job, nil
	}
	return w.Job(ctx, inv.Bucket, inv.ExecutorID, inv.JobID)
}

// Job reads (and caches) a job manifest.
func (w *Worker) Job(ctx context.Context, bucket, executorID, jobID string) (*protocol.Job, error) {
	key := protocol.JobKey(executorID, jobID)
	w.mu.Lock()
	j := w.jobs[key]
	w.mu.Unlock()
	if j != nil {
		return j, nil
	}
	data, err := w.Storage.GetBytes(ctx, bucket, key)
	if err != nil {
		err = fmt.Errorf("read job manifest: %w", err)
		if !errors.Is(err, storage.ErrNotFound) {
			err = &transientError{err}
		}
		return nil, err
	}
	if j, err = protocol.ParseJob(data); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	w.mu.Lock()
	if len(w.jobs) >= 64 { // bound the cache; manifests are cheap to re-read
		clear(w.jobs)
	}
	w.jobs[key] = j
	w.mu.Unlock()
	return j, nil
}

// ErrorChain, when set, lists the registered members of a user error's
// chain for its status record (protocol.ErrorRecord.Chain). The lithops
// package sets it to its registries of error values and types; it must be
// safe for concurrent use.
var ErrorChain func(error) []protocol.ErrorLink

func chainOf(err error) []protocol.ErrorLink {
	if ErrorChain == nil || err == nil {
		return nil
	}
	return ErrorChain(err)
}

// Run executes one call of inv and records its status in storage. The
// returned error is non-nil only when the outcome could not be recorded.
func (w *Worker) Run(ctx context.Context, inv *protocol.Invocation, call protocol.Call) (*protocol.Status, error) {
	return w.record(ctx, inv, w.execute(ctx, inv, call))
}

// executed is a call that ran (or could not) and awaits its record.
type executed struct {
	st   *protocol.Status
	job  *protocol.Job // nil when jerr is set
	jerr error         // the manifest could not be read
}

// batchable reports whether x can go in a batch record: a success.
func (x executed) batchable() bool {
	return x.jerr == nil && x.st.State == protocol.StateSuccess
}

// execute runs one call of inv and fills its status.
func (w *Worker) execute(ctx context.Context, inv *protocol.Invocation, call protocol.Call) executed {
	st := &protocol.Status{
		Version:    protocol.Version,
		ExecutorID: inv.ExecutorID,
		JobID:      inv.JobID,
		CallID:     call.ID,
		Attempt:    call.Attempt,
		WorkerID:   w.ID,
		Start:      time.Now(),
	}
	w.mu.Lock()
	st.ColdStart = !w.warm
	w.warm = true
	w.mu.Unlock()

	fail := func(kind protocol.ErrorKind, err error) {
		st.State = protocol.StateError
		st.Error = &protocol.ErrorRecord{Kind: kind, Type: fmt.Sprintf("%T", err), Message: err.Error()}
	}
	job, jerr := w.manifest(ctx, inv)
	var te *transientError
	if errors.As(jerr, &te) {
		// Storage trouble, not the call's: whoever delivered the call
		// records it under its retry policy (or delivers it again).
		fail(protocol.KindHandler, jerr)
		st.End = time.Now()
		return executed{st: st, jerr: jerr}
	}
	if err := w.run(ctx, inv, call, st); err != nil {
		var me *mismatchError
		if errors.As(err, &me) {
			fail(protocol.KindMismatch, err)
		} else {
			fail(protocol.KindHandler, err)
		}
	}
	st.End = time.Now()
	st.PeakRSS = peakRSS()
	if jerr != nil {
		job = nil
	}
	return executed{st: st, job: job}
}

// record writes x's status in its own record.
func (w *Worker) record(ctx context.Context, inv *protocol.Invocation, x executed) (*protocol.Status, error) {
	var te *transientError
	if errors.As(x.jerr, &te) {
		return x.st, x.jerr
	}
	st, retries := x.st, 0
	if x.job != nil {
		retries = x.job.Retries
	}
	block := 0
	if x.job != nil {
		block = x.job.Block
	}
	rec, err := w.writeStatus(ctx, inv.Bucket, block, retries, st)
	if err == nil && rec == st && x.job != nil && x.job.EscalateMemory && protocol.Final(st, retries) {
		// A duplicate execution of this attempt may have handed it back
		// (out of memory) first: the final status settles the attempt, so
		// that record goes, and the call's records agree.
		if derr := w.Storage.Delete(ctx, inv.Bucket, protocol.AttemptKey(st.ExecutorID, st.JobID, st.CallID, st.Attempt)); derr != nil {
			w.Logger.Debug("delete a superseded hand-back record", "call", st.CallID, "err", derr)
		}
	}
	return rec, err
}

// recordBatch writes the successes xs of calls of inv (at least two) in one
// batch record (protocol.BatchKey) and returns each call's recorded status
// and error, as Run would. When another execution wrote that record first,
// its statuses stand and a call it lacks gets a record of its own.
func (w *Worker) recordBatch(ctx context.Context, inv *protocol.Invocation, xs []executed) ([]*protocol.Status, []error) {
	recs, errs := make([]*protocol.Status, len(xs)), make([]error, len(xs))
	b := protocol.StatusBatch{Version: protocol.Version, Statuses: make([]protocol.Status, len(xs))}
	for i, x := range xs {
		b.Statuses[i] = *x.st
		recs[i] = x.st
	}
	first := protocol.Call{ID: xs[0].st.CallID, Attempt: xs[0].st.Attempt}
	key := protocol.BatchKey(inv.ExecutorID, inv.JobID, first)
	data, err := b.Encode()
	if err == nil {
		err = w.Storage.PutIfAbsent(ctx, inv.Bucket, key, bytes.NewReader(data))
	}
	if errors.Is(err, storage.ErrExists) {
		var prev []protocol.Status
		raw, gerr := w.Storage.GetBytes(ctx, inv.Bucket, key)
		if gerr == nil {
			k, _ := protocol.ParseKey(key)
			prev, gerr = protocol.ParseStatusBatch(k, raw)
		}
		if gerr != nil {
			err = fmt.Errorf("read the batch record another execution wrote: %w", gerr)
		} else {
			w.Logger.Info("batch already recorded by another execution", "key", key)
			byCall := make(map[string]*protocol.Status, len(prev))
			for i := range prev {
				byCall[prev[i].CallID] = &prev[i]
			}
			for i, x := range xs {
				if p := byCall[x.st.CallID]; p != nil {
					recs[i] = p
				} else {
					recs[i], errs[i] = w.record(ctx, inv, x)
				}
			}
			return recs, errs
		}
	}
	if err != nil && holds(ctx, w.Storage, inv.Bucket, key, recs) {
		err = nil // the write failed on the way back, not on the way in
	}
	if err != nil {
		err = fmt.Errorf("write batch status: %w", err)
		for i := range errs {
			errs[i] = err
		}
	}
	return recs, errs
}

// transientError is a storage failure (past the retry budget) that a later
// attempt may not meet.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

type mismatchError struct{ msg string }

func (e *mismatchError) Error() string { return e.msg }

// sameRegistry reports whether job's registry (its client's) is the
// worker's: at once when the job's digest is the worker's (a registry of
// dozens of functions is hashed once per program, not compared for every
// call), else entry by entry.
func (w *Worker) sameRegistry(job *protocol.Job) bool {
	w.digestOnce.Do(func() { w.digest = w.Registry.Digest() })
	return job.RegistryDigest != "" && job.RegistryDigest == w.digest || maps.Equal(job.Registry, w.Registry)
}

// run fills st; an error return is a framework failure around the call.
func (w *Worker) run(ctx context.Context, inv *protocol.Invocation, call protocol.Call, st *protocol.Status) error {
	job, err := w.manifest(ctx, inv)
	if err != nil {
		return err
	}
	fn := w.Funcs[job.Function]
	if fn == nil || fn.Signature != job.Signature || !w.sameRegistry(job) {
		diff := job.Registry.Diff(w.Registry)
		if diff == "" {
			diff = fmt.Sprintf("function %q is %s in the client", job.Function, job.Signature)
		}
		return &mismatchError{msg: "the worker's program differs from the client's: " + diff + "; rebuild or redeploy the program the workers run"}
	}
	codec, err := protocol.CodecByName(job.Codec)
	if err != nil {
		return err
	}
	if call.Index >= len(job.Inputs) {
		return fmt.Errorf("call %s has index %d but job %s has %d calls", call.ID, call.Index, job.Key(), job.Calls)
	}
	input := call.Input
	if !call.HasInput && job.InputsInline {
		r := job.Inputs[call.Index] // within InlineInputs: Validate checked
		input = job.InlineInputs[r.Offset : r.Offset+r.Size : r.Offset+r.Size]
	} else if !call.HasInput {
		r := job.Inputs[call.Index]
		rc, err := w.Storage.GetRange(ctx, inv.Bucket, protocol.InputsKey(inv.ExecutorID, inv.JobID), r.Offset, r.Size)
		if err != nil {
			return fmt.Errorf("read input: %w", err)
		}
		var b bytes.Buffer
		_, err = b.ReadFrom(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("read input: %w", err)
		}
		if int64(b.Len()) != r.Size {
			return fmt.Errorf("read input: got %d bytes of call %s, want %d", b.Len(), call.ID, r.Size)
		}
		input = b.Bytes()
	}

	run := fn.Call
	if job.Chain {
		// A chained map: the input is an earlier call's result, read here.
		parts, err := w.gather(ctx, inv.Bucket, input)
		if err != nil {
			return fmt.Errorf("read the input of chained call %s: %w", call.ID, err)
		}
		if len(parts) != 1 {
			return fmt.Errorf("chained call %s names %d earlier results, want 1", call.ID, len(parts))
		}
		input = parts[0]
	}
	if job.Gather {
		if fn.CallParts == nil {
			return fmt.Errorf("job %s gathers earlier results but function %s does not take a slice", job.Key(), job.Function)
		}
		parts, err := w.gather(ctx, inv.Bucket, input)
		if err != nil {
			return fmt.Errorf("gather the input of call %s: %w", call.ID, err)
		}
		run = func(ctx context.Context, c protocol.Codec, _ []byte) ([]byte, error) {
			return fn.CallParts(ctx, c, parts)
		}
	}

	if len(job.ExtraEnv) > 0 {
		if !w.ownProcess {
			return fmt.Errorf("job %s sets extra_env, which needs a worker process of its own per call", job.Key())
		}
		restore := setEnv(job.ExtraEnv)
		defer restore()
	}
	fctx := WithCall(ctx, w.Storage, call.ID)
	if t := job.Timeout; t > 0 {
		var cancel context.CancelFunc
		fctx, cancel = withLazyDeadline(fctx, time.Now().Add(time.Duration(t*float64(time.Second))))
		defer cancel()
	}
	if w.Capture != nil {
		w.Capture.Begin()
	}
	st.FuncStart = time.Now()
	out, userErr, panicked, stack := invoke(fctx, run, codec, input)
	st.FuncEnd = time.Now()
	if w.Capture != nil {
		if logs, dropped := w.Capture.End(); len(logs) > 0 {
			if dropped > 0 {
				logs = append(logs, fmt.Sprintf("\n[lithops: %d more bytes of output dropped]\n", dropped)...)
			}
			w.writeLogs(ctx, inv, call, logs)
			st.LogSize = int64(len(logs))
		}
	}
	switch {
	case panicked:
		st.State = protocol.StateError
		st.Error = &protocol.ErrorRecord{Kind: protocol.KindPanic, Type: "panic", Message: userErr.Error(), Stack: stack, Chain: chainOf(userErr)}
		return nil
	case userErr != nil:
		var de *decodeError
		var he *handlerError
		kind := protocol.KindUser
		msg := userErr.Error()
		switch {
		case errors.As(userErr, &de), errors.As(userErr, &he):
			kind = protocol.KindHandler
		case errors.Is(userErr, context.DeadlineExceeded) && errors.Is(fctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
			// The function honoured its ctx, which ended at the call's
			// timeout: that is a timeout, not a user error.
			kind = protocol.KindTimeout
			msg = fmt.Sprintf("call exceeded its timeout of %v (the function returned: %v)", time.Duration(job.Timeout*float64(time.Second)), userErr)
		}
		st.State = protocol.StateError
		st.Error = &protocol.ErrorRecord{Kind: kind, Type: fmt.Sprintf("%T", userErr), Message: msg, Chain: chainOf(userErr)}
		return nil
	}
	st.State = protocol.StateSuccess
	st.ResultSize = int64(len(out))
	if len(out) <= protocol.InlineLimit {
		st.Result, st.HasResult = out, true
		return nil
	}
	token := make([]byte, 4)
	rand.Read(token)
	key := protocol.ResultKey(inv.ExecutorID, inv.JobID, call.ID, call.Attempt, hex.EncodeToString(token))
	if err := w.Storage.PutBytes(ctx, inv.Bucket, key, out); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	st.ResultKey = key
	return nil
}

// gatherReads is how many result objects a gathering call reads at once.
const gatherReads = 16

// gather reads the results a gathering call's input names, in order.
func (w *Worker) gather(ctx context.Context, bucket string, input []byte) ([][]byte, error) {
	g, err := protocol.ParseGather(input)
	if err != nil {
		return nil, err
	}
	parts := make([][]byte, len(g.Parts))
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(gatherReads)
	for i, p := range g.Parts {
		if p.HasInline {
			parts[i] = p.Inline
			continue
		}
		eg.Go(func() error {
			if p.Status != "" {
				ref, err := w.followStatus(ctx, bucket, p.Status)
				if err != nil {
					return fmt.Errorf("part %d: %w", i, err)
				}
				if ref.HasInline {
					parts[i] = ref.Inline
					return nil
				}
				p = ref
			}
			b, err := w.Storage.GetBytes(ctx, bucket, p.Key)
			switch {
			case err != nil:
				return fmt.Errorf("read result %d (%s): %w", i, p.Key, err)
			case p.Size > 0 && int64(len(b)) != p.Size:
				return fmt.Errorf("result %d (%s) has %d bytes, want %d", i, p.Key, len(b), p.Size)
			}
			parts[i] = b
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	return parts, nil
}

// followStatus reads an earlier call's final status at key and returns a
// reference to the result it names: the one result of that call that
// counts, whatever duplicate executions wrote.
func (w *Worker) followStatus(ctx context.Context, bucket, key string) (protocol.ResultRef, error) {
	k, ok := protocol.ParseKey(key)
	if !ok || k.Kind != protocol.KindStatus || k.Batch {
		return protocol.ResultRef{}, fmt.Errorf("%q is not a call's status record", key)
	}
	// The earlier call's success may be in a batch or block record; the
	// manifest (cached) says whether its job has blocks.
	block := 0
	if job, err := w.Job(ctx, bucket, k.Executor, k.Job); err == nil {
		block = job.Block
	}
	st, err := LookupIn(ctx, w.Storage, bucket, k.Executor, k.Job, k.Call, block)
	if err != nil {
		return protocol.ResultRef{}, fmt.Errorf("read the earlier call's status: %w", err)
	}
	switch {
	case st.State != protocol.StateSuccess:
		return protocol.ResultRef{}, fmt.Errorf("the earlier call %s/%s/%s did not succeed (%s)", st.ExecutorID, st.JobID, st.CallID, st.State)
	case st.HasResult:
		return protocol.ResultRef{Inline: st.Result, HasInline: true}, nil
	}
	return protocol.ResultRef{Key: st.ResultKey, Size: st.ResultSize}, nil
}

// decodeError marks an input that the codec could not decode: a framework
// failure, not the user's.
type decodeError struct{ err error }

func (e *decodeError) Error() string { return "decode input: " + e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// DecodeError wraps a codec failure on the input so it is classified as a
// handler error rather than a user error.
func DecodeError(err error) error { return &decodeError{err} }

// handlerError marks a failure of the framework's own code that runs
// inside a registered function (a shuffle's storage reads and writes).
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }
func (e *handlerError) Unwrap() error { return e.err }

// HandlerError wraps a failure of framework code inside a function, so
// that it is classified as a handler error rather than a user error.
func HandlerError(err error) error { return &handlerError{err} }

func invoke(ctx context.Context, call func(context.Context, protocol.Codec, []byte) ([]byte, error), codec protocol.Codec, input []byte) (out []byte, err error, panicked bool, stack string) {
	defer func() {
		if r := recover(); r != nil {
			panicked = true
			if e, ok := r.(error); ok {
				err = fmt.Errorf("%w", e) // a panic with an error keeps its chain
			} else {
				err = fmt.Errorf("%v", r)
			}
			stack = string(debug.Stack())
		}
	}()
	out, err = call(ctx, codec, input)
	return out, err, false, ""
}

// writeStatus records st where it belongs (RecordStatus): when a duplicate
// delivery (or, for the final record, another attempt) finished first, its
// status stays and is returned.
func (w *Worker) writeStatus(ctx context.Context, bucket string, block, retries int, st *protocol.Status) (*protocol.Status, error) {
	rec, err := RecordStatus(ctx, w.Storage, bucket, block, retries, st)
	if err == nil && rec != st {
		w.Logger.Info("call already recorded by another execution", "call", st.CallID, "attempt", st.Attempt, "worker", rec.WorkerID)
	}
	return rec, err
}

// Record writes st at key create-if-absent, the one way every status record
// is written, and returns the status recorded there: st, or the one another
// execution wrote first. On error it returns st.
//
// Records of one call never contradict each other: a hand-back record
// (protocol.AttemptKey) is not written once the call has its final status
// (another execution settled it); that status is returned instead, marked
// Settled, as is one found at the call's own final record. A status found
// at key that is not of st's call is an error, not the call's.
func Record(ctx context.Context, s *storage.Storage, bucket, key string, st *protocol.Status) (*protocol.Status, error) {
	if key == protocol.AttemptKey(st.ExecutorID, st.JobID, st.CallID, st.Attempt) {
		raw, err := s.GetBytes(ctx, bucket, protocol.StatusKey(st.ExecutorID, st.JobID, st.CallID))
		if err == nil {
			if final, err := protocol.ParseStatus(raw); err == nil && final.State != protocol.StateRunning && sameCall(final, st) {
				final.Settled = true
				return final, nil
			}
		} else if !errors.Is(err, storage.ErrNotFound) {
			return st, fmt.Errorf("read the call's final status: %w", err)
		}
	}
	final := key == protocol.StatusKey(st.ExecutorID, st.JobID, st.CallID)
	stored := *st
	stored.Settled = false // what the key says already
	data, err := stored.Encode()
	if err != nil {
		return st, fmt.Errorf("encode status: %w", err)
	}
	err = s.PutIfAbsent(ctx, bucket, key, bytes.NewReader(data))
	if errors.Is(err, storage.ErrExists) {
		raw, gerr := s.GetBytes(ctx, bucket, key)
		if gerr != nil {
			return st, fmt.Errorf("read the status another execution wrote: %w", gerr)
		}
		prev, perr := protocol.ParseStatus(raw)
		if perr == nil && !sameCall(prev, st) {
			perr = fmt.Errorf("it is the status of call %s/%s/%s", prev.ExecutorID, prev.JobID, prev.CallID)
		}
		if perr != nil {
			return st, fmt.Errorf("status %s written by another execution is unreadable: %w", key, perr)
		}
		prev.Settled = final
		return prev, nil
	}
	if err != nil {
		return st, fmt.Errorf("write status: %w", err)
	}
	st.Settled = final
	return st, nil
}

// sameCall reports whether a and b are statuses of one call.
func sameCall(a, b *protocol.Status) bool {
	return a.ExecutorID == b.ExecutorID && a.JobID == b.JobID && a.CallID == b.CallID
}

// writeLogs stores a call's output gzipped; logs are best effort and never
// fail a call.
func (w *Worker) writeLogs(ctx context.Context, inv *protocol.Invocation, call protocol.Call, logs []byte) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(logs)
	zw.Close()
	key := protocol.LogKey(inv.ExecutorID, inv.JobID, call.ID, call.Attempt)
	if err := w.Storage.PutBytes(ctx, inv.Bucket, key, b.Bytes()); err != nil {
		w.Logger.Warn("cannot store call output", "key", key, "err", err)
	}
}

// setEnv sets env in the process environment and returns the function that
// puts back what was there.
func setEnv(env map[string]string) (restore func()) {
	type prev struct {
		v  string
		ok bool
	}
	old := make(map[string]prev, len(env))
	for k, v := range env {
		pv, ok := os.LookupEnv(k)
		old[k] = prev{pv, ok}
		os.Setenv(k, v)
	}
	return func() {
		for k, p := range old {
			if p.ok {
				os.Setenv(k, p.v)
			} else {
				os.Unsetenv(k)
			}
		}
	}
}

// Lookup returns the final status recorded for call callID of a job: its
// own record, else the batch record that holds it (found by listing the
// job's records; a reader that lists anyway reads batch records as it
// meets them). It returns an error wrapping storage.ErrNotFound when the
// call has no final record.
func Lookup(ctx context.Context, s *storage.Storage, bucket, executorID, jobID, callID string) (*protocol.Status, error) {
	return LookupIn(ctx, s, bucket, executorID, jobID, callID, 0)
}

// LookupIn is Lookup for a job whose calls are in blocks of block calls
// (protocol.Job.Block; 0: none, or not known): the call's block record is
// read directly, without listing the job's records.
func LookupIn(ctx context.Context, s *storage.Storage, bucket, executorID, jobID, callID string, block int) (*protocol.Status, error) {
	key := protocol.StatusKey(executorID, jobID, callID)
	raw, err := s.GetBytes(ctx, bucket, key)
	if err == nil {
		st, err := protocol.ParseStatus(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return st, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	if bkey, ok := protocol.BlockKey(executorID, jobID, callID, block); ok {
		listed, rerr := ReadBlock(ctx, s, bucket, bkey)
		switch {
		case errors.Is(rerr, storage.ErrNotFound):
			return nil, err // not found
		case rerr != nil:
			return nil, rerr
		}
		if i := indexOf(listed, callID); i >= 0 {
			return &listed[i], nil
		}
		return nil, err // not found
	}
	infos, lerr := s.List(ctx, bucket, protocol.StatusPrefix(executorID, jobID))
	if lerr != nil {
		return nil, fmt.Errorf("list the job's batch records: %w", lerr)
	}
	// A batch or block record is named after a call at or before the ones
	// it holds: the nearest ones first (a block's record is the nearest).
	call, _ := strconv.Atoi(callID)
	type cand struct {
		first int
		key   string
		k     protocol.Key
	}
	var cands []cand
	for _, o := range infos {
		k, ok := protocol.ParseKey(o.Key)
		if !ok || !k.Batch || k.Executor != executorID || k.Job != jobID {
			continue
		}
		if first, cerr := strconv.Atoi(k.Call); cerr == nil && first <= call {
			cands = append(cands, cand{first, o.Key, k})
		}
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return b.first - a.first })
	for _, c := range cands {
		raw, err := s.GetBytes(ctx, bucket, c.key)
		if err != nil {
			return nil, fmt.Errorf("read batch record %s: %w", c.key, err)
		}
		sts, err := protocol.ParseStatusBatch(c.k, raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.key, err)
		}
		for i := range sts {
			if sts[i].CallID == callID {
				return &sts[i], nil
			}
		}
	}
	return nil, err // not found
}
