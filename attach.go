package lithops

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
)

// Attach returns an executor for the jobs that executor executorID (of this
// or another, possibly dead, process) recorded in storage: its futures
// complete from the status records, JobFutures gives typed access to their
// results, and Rerun runs again the calls that failed or never finished.
// New jobs submitted through it get fresh job ids. Options are those of
// NewExecutor and must name the same storage.
func Attach(ctx context.Context, executorID string, opts ...Option) (*Executor, error) {
	if executorID == "" || strings.ContainsAny(executorID, "/\\") || strings.Contains(executorID, "..") {
		return nil, fmt.Errorf("lithops: attach: malformed executor id %q", executorID)
	}
	// An attached executor deletes only the jobs submitted through it, so
	// no error return below (each closes it) touches the records it reads.
	e, err := newExecutor(ctx, executorID, true, opts)
	if err != nil {
		return nil, err
	}
	infos, err := e.st.List(ctx, e.bucket, protocol.ExecutorPrefix(executorID))
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("lithops: attach %s: %w", executorID, err)
	}
	var jobs []*jobState
	for _, o := range infos {
		if k, ok := protocol.ParseKey(o.Key); !ok || k.Kind != protocol.KindManifest || k.Executor != executorID {
			continue
		}
		js, err := e.readJob(ctx, o.Key)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("lithops: attach %s: %w", executorID, err)
		}
		jobs = append(jobs, js)
	}
	if len(jobs) == 0 {
		e.Close()
		return nil, fmt.Errorf("lithops: attach: executor %s has no jobs in %s://%s", executorID, e.st.Backend(), e.bucket)
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].job.Created.Before(jobs[j].job.Created) })
	e.mu.Lock()
	for _, js := range jobs {
		e.addJob(js)
		if n, err := strconv.Atoi(js.job.JobID[1:]); err == nil && n >= e.nextJob {
			e.nextJob = n + 1
		}
	}
	e.mu.Unlock()
	for _, js := range jobs {
		e.pollJob(js)
	}
	return e, nil
}

// JobFutures returns typed futures of the calls of job jobID, in call order.
// T must be the job's result type.
func JobFutures[T any](e *Executor, jobID string) (*Futures[T], error) {
	js, err := e.job(context.Background(), jobID)
	if err != nil {
		return nil, err
	}
	want := "(" + typeName(reflect.TypeFor[T]()) + ", error)"
	if !strings.HasSuffix(js.job.Signature, want) {
		return nil, fmt.Errorf("lithops: job %s/%s runs %s %s; its results are not of type %s", e.id, jobID, js.job.Function, js.job.Signature, typeName(reflect.TypeFor[T]()))
	}
	fs := &Futures[T]{list: make([]*Future[T], len(js.calls))}
	for i, c := range js.calls {
		fs.list[i] = &Future[T]{c: c}
	}
	return fs, nil
}

// Rerun runs again the calls of job jobID that failed or have no final
// status, and returns how many. Use it on an attached executor once the
// process that submitted the job is gone (calls still in flight would run
// twice; the first final status wins). Futures obtained before Rerun keep
// their fetched results; take new ones with JobFutures.
func (e *Executor) Rerun(ctx context.Context, jobID string) (int, error) {
	js, err := e.job(ctx, jobID)
	if err != nil {
		return 0, err
	}
	if err := e.canRerun(js.job); err != nil {
		return 0, err
	}
	e.pollJob(js)
	inv := protocol.Invocation{Version: protocol.Version, Bucket: js.job.Bucket, ExecutorID: e.id, JobID: jobID}
	// Calls reset below wait for the new run; if it cannot start, they end
	// with the reason instead of waiting for ever.
	var reset []*callState
	strand := func(err error) (int, error) {
		err = fmt.Errorf("lithops: rerun %s/%s: %w", e.id, jobID, err)
		for _, c := range reset {
			c.finish(nil, err)
		}
		return 0, err
	}
	// Leases left by dead runtimes would count against the new run; a live
	// runtime writes its lease again within Lease/3.
	if err := e.dropLeases(ctx, js); err != nil {
		return strand(err)
	}
	for i, c := range js.calls {
		if c.isDone() && c.state() == StateSuccess {
			continue
		}
		if c.isDone() {
			// A failed final record makes way for the new run; nothing that
			// succeeded is touched.
			infos, err := e.st.List(ctx, js.job.Bucket, protocol.AttemptsPrefix(e.id, jobID, c.id))
			if err != nil {
				return strand(err)
			}
			records := []string{protocol.StatusKey(e.id, jobID, c.id)}
			for _, o := range infos {
				if k, ok := protocol.ParseKey(o.Key); ok && k.Kind == protocol.KindAttempt && k.Call == c.id {
					records = append(records, o.Key)
				}
			}
			if err := e.st.Delete(ctx, js.job.Bucket, records...); err != nil {
				return strand(err)
			}
			c.reset(time.Now())
			js.remaining.Add(1)
			reset = append(reset, c)
		}
		inv.Calls = append(inv.Calls, protocol.Call{ID: c.id, Index: i})
	}
	if len(inv.Calls) == 0 {
		return 0, nil
	}
	e.mu.Lock()
	e.hold(js) // running again
	e.mu.Unlock()
	js.renew()
	if err := e.backend.Invoke(ctx, js.job, inv); err != nil {
		// Calls that were pending (never finished) end too: nothing runs them.
		for _, call := range inv.Calls {
			if c := js.calls[call.Index]; !slices.Contains(reset, c) {
				reset = append(reset, c)
			}
		}
		return strand(err)
	}
	e.log.Info("job rerun", "executor", e.id, "job", jobID, "calls", len(inv.Calls))
	return len(inv.Calls), nil
}

// canRerun refuses a rerun that would run the job's calls in a program
// without its function: on localhost with no localhost.runtime the workers
// are this program, which must register the job's function with the same
// signature (a CLI does not). Otherwise every call would fail as a
// mismatch and replace the record of the original failure.
func (e *Executor) canRerun(job *protocol.Job) error {
	if e.cfg.Lithops.Backend != "localhost" || e.cfg.Localhost.Runtime != "" {
		return nil // the job's program (by hash on Azure) or the configured one
	}
	_, reg := registrySnapshot()
	if sig, ok := reg[job.Function]; !ok || sig != job.Signature {
		return fmt.Errorf("lithops: rerun %s/%s: this program does not register %s %s, so its workers cannot run the job's calls; "+
			"rerun from the program that submitted the job (Attach + Rerun), or set localhost.runtime to that program: %w",
			e.id, job.JobID, job.Function, job.Signature, ErrMismatch)
	}
	return nil
}

// Awaitable returns the calls of job jobID for Wait, whatever their result
// type.
func (e *Executor) Awaitable(jobID string) (Awaitable, error) {
	js, err := e.job(context.Background(), jobID)
	if err != nil {
		return nil, err
	}
	return group{callList(js.calls)}, nil
}

// callList makes a slice of calls Awaitable.
type callList []*callState

func (l callList) calls() []*callState { return l }
