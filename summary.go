package lithops

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lithops-go/lithops/internal/jobstats"
	"github.com/lithops-go/lithops/internal/protocol"
)

// States that JobCalls reports besides StateSuccess and StateError, for
// calls read from storage.
const (
	// StatePending: the call has no final status record yet (not started,
	// running, or between retries).
	StatePending State = "pending"
	// StateUnreadable: the call's status record cannot be decoded.
	StateUnreadable State = "unreadable"
)

// CallStats is the recorded life of one call of a job, read from storage.
type CallStats struct {
	CallID string
	// State is StateSuccess or StateError once the call's final status is
	// recorded, else StatePending (or StateUnreadable).
	State State
	// Attempts is how many attempts are recorded, retries included.
	Attempts int
	// Stats are the timings and placement of the final attempt; Submitted
	// is the job's submission. Zero but Submitted while pending.
	Stats
	// Err is the failure of a StateError or StateUnreadable call.
	Err *CallError
}

// Duration is the call's time on its worker, Finished − Started; 0 while
// pending.
func (c *CallStats) Duration() time.Duration {
	if c.Started.IsZero() || c.Finished.Before(c.Started) {
		return 0
	}
	return c.Finished.Sub(c.Started)
}

// JobSummary aggregates the calls of one job, as recorded in storage.
type JobSummary struct {
	Executor string
	Job      string
	Function string
	Created  time.Time // the job was submitted
	Calls    int
	Done     int // finished, successfully or not
	Failed   int
	Pending  int // no final record yet
	// Unreadable counts calls whose status record cannot be decoded.
	Unreadable int
	Attempts   int // attempts recorded, retries included
	Retried    int // calls that took more than one attempt
	ColdStarts int // calls that were the first of their worker process
	Workers    int // distinct worker ids
	// Call durations (Finished − Started) over the calls that recorded
	// both, nearest-rank percentiles.
	MinDuration    time.Duration
	MedianDuration time.Duration
	P90Duration    time.Duration
	MaxDuration    time.Duration
	// WallTime runs from submission to the last recorded call end.
	WallTime time.Duration
}

// loadJob reads job, "<job>" of this executor or "<executor>/<job>" of any
// executor (of this or another, possibly dead, process) in e's storage.
func (e *Executor) loadJob(ctx context.Context, job string) (*jobstats.Report, error) {
	exec, id := e.id, job
	if strings.Contains(job, "/") {
		var err error
		if exec, id, err = jobstats.SplitKey(job); err != nil {
			return nil, fmt.Errorf("lithops: %w", err)
		}
	}
	r, err := jobstats.Load(ctx, e.st, e.bucket, exec, id)
	if err != nil {
		return nil, fmt.Errorf("lithops: job stats of %s/%s: %w", exec, id, err)
	}
	return r, nil
}

// JobSummary reads the status records of job from storage and aggregates
// them: calls done, failed and pending, attempts, cold starts, workers,
// duration percentiles and wall time. job is a job id of this executor
// ("M001", from Future.JobID or Jobs) or "<executor>/<job>" for a job of any
// executor that shares this storage, e.g. one of a process that is gone.
// Job records are deleted when their executor closes unless
// lithops.data_cleaner is false.
func (e *Executor) JobSummary(ctx context.Context, job string) (JobSummary, error) {
	r, err := e.loadJob(ctx, job)
	if err != nil {
		return JobSummary{}, err
	}
	return summaryOf(&r.Summary), nil
}

func summaryOf(s *jobstats.Summary) JobSummary {
	return JobSummary{
		Executor: s.Executor, Job: s.Job, Function: s.Function, Created: s.Created,
		Calls: s.Calls, Done: s.Done, Failed: s.Failed, Pending: s.Pending, Unreadable: s.Unreadable,
		Attempts: s.Attempts, Retried: s.Retried, ColdStarts: s.ColdStarts, Workers: s.Workers,
		MinDuration: s.MinDuration, MedianDuration: s.MedianDuration, P90Duration: s.P90Duration, MaxDuration: s.MaxDuration,
		WallTime: s.WallTime,
	}
}

// JobCalls reads the per-call stats of job (as in JobSummary) from storage,
// in call order, without typed futures.
func (e *Executor) JobCalls(ctx context.Context, job string) ([]CallStats, error) {
	r, err := e.loadJob(ctx, job)
	if err != nil {
		return nil, err
	}
	out := make([]CallStats, len(r.Calls))
	for i := range r.Calls {
		c := &r.Calls[i]
		cs := CallStats{CallID: c.ID, State: State(c.State), Attempts: c.Attempts}
		cs.Submitted = r.Job.Created
		if c.State == jobstats.StateSuccess || c.State == jobstats.StateError {
			cs.Started, cs.FuncStart, cs.FuncEnd, cs.Finished = c.Start, c.FuncStart, c.FuncEnd, c.End
			cs.Worker, cs.Attempt, cs.ColdStart = c.Worker, c.Attempt, c.ColdStart
			cs.ResultSize, cs.PeakRSS, cs.ExecTime = c.ResultSize, c.PeakRSS, c.ExecTime()
		}
		if c.Error != nil {
			kind := c.Error.Kind
			if c.State == jobstats.StateUnreadable {
				kind = protocol.KindHandler
			}
			cs.Err = &CallError{
				Executor: r.Job.ExecutorID, Job: r.Job.JobID, Call: c.ID, Function: r.Job.Function,
				Attempt: c.Attempt, Worker: c.Worker, Kind: kind, Type: c.Error.Type,
				Message: c.Error.Message, Stack: c.Error.Stack, ExitCode: c.Error.ExitCode,
			}
		}
		out[i] = cs
	}
	return out, nil
}

// JobStatsFormats are the formats WriteJobStats knows.
var JobStatsFormats = append([]string(nil), jobstats.Formats...)

// WriteJobStats writes the summary and per-call stats of job (as in
// JobSummary) to w in format "table" (for people; the default for ""),
// "csv" (one row per call) or "json" ({"summary": …, "calls": […]}), the
// same output as `lithops jobs show`.
func (e *Executor) WriteJobStats(ctx context.Context, w io.Writer, job, format string) error {
	if err := jobstats.CheckFormat(format); err != nil {
		return fmt.Errorf("lithops: %w", err)
	}
	r, err := e.loadJob(ctx, job)
	if err != nil {
		return err
	}
	if err := jobstats.Write(w, r, format); err != nil {
		return fmt.Errorf("lithops: write stats of %s/%s: %w", r.Job.ExecutorID, r.Job.JobID, err)
	}
	return nil
}
