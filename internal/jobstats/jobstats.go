// Package jobstats reads what a job left in storage (its manifest and its
// calls' status records) and turns it into per-call stats, a per-job summary,
// and tables, CSV and JSON for people and programs. The lithops API
// (Executor.JobSummary, JobCalls, WriteJobStats, Plot) and the CLI
// (`lithops jobs list|show|plot`) both use it.
//
// Invariants:
//   - Storage is the only input: a job of a dead process reads the same as
//     one of a live executor. Nothing here writes to storage.
//   - A call is "success" or "error" when its final status record exists,
//     "pending" when it does not (not started, running, or between retries),
//     and "unreadable" when its record cannot be decoded; one bad record
//     never hides the others.
//   - Calls are listed in call-id order, one per call of the manifest.
//   - Durations are worker time, End − Start, of calls that have both;
//     percentiles use the nearest-rank method.
package jobstats

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"golang.org/x/sync/errgroup"
)

// States of a call as read from storage.
const (
	StateSuccess    = "success"
	StateError      = "error"
	StatePending    = "pending"
	StateUnreadable = "unreadable"
)

// Call is the recorded life of one call.
type Call struct {
	ID    string
	Index int
	State string
	// Attempts is how many attempts are recorded: the final attempt's
	// number + 1, or for a pending call the failed attempts retried so far.
	Attempts   int
	Attempt    int // number of the final attempt, from 0
	Worker     string
	ColdStart  bool
	Start      time.Time // the worker picked the call up
	FuncStart  time.Time
	FuncEnd    time.Time
	End        time.Time // the worker recorded the status
	ResultSize int64
	PeakRSS    int64
	Error      *protocol.ErrorRecord // the failure of an "error" call; the decode error of an "unreadable" one
}

// Duration is the call's worker time, End − Start; 0 when either is unknown.
func (c *Call) Duration() time.Duration {
	if c.Start.IsZero() || c.End.IsZero() || c.End.Before(c.Start) {
		return 0
	}
	return c.End.Sub(c.Start)
}

// ExecTime is the function's own time, FuncEnd − FuncStart; 0 when unknown.
func (c *Call) ExecTime() time.Duration {
	if c.FuncStart.IsZero() || c.FuncEnd.IsZero() || c.FuncEnd.Before(c.FuncStart) {
		return 0
	}
	return c.FuncEnd.Sub(c.FuncStart)
}

// Summary aggregates the calls of one job.
type Summary struct {
	Executor   string
	Job        string
	Function   string
	Created    time.Time // the client submitted the job
	Calls      int
	Done       int // finished, successfully or not
	Failed     int
	Pending    int
	Unreadable int
	Attempts   int // attempts recorded, retries included
	Retried    int // calls that took more than one attempt
	ColdStarts int
	Workers    int // distinct worker ids
	// Durations of the calls that recorded a start and an end.
	MinDuration    time.Duration
	MedianDuration time.Duration
	P90Duration    time.Duration
	MaxDuration    time.Duration
	FirstStart     time.Time
	LastEnd        time.Time
	// WallTime is from submission to the last recorded end.
	WallTime time.Duration
}

// Key returns "<executor>/<job>".
func (s *Summary) Key() string { return s.Executor + "/" + s.Job }

// Report is a job's summary and calls.
type Report struct {
	Job     *protocol.Job
	Summary Summary
	Calls   []Call
}

// ErrNoJob reports that storage holds no manifest for the job.
var ErrNoJob = errors.New("no such job")

// SplitKey splits "<executor>/<job>" and checks both parts.
func SplitKey(key string) (executor, job string, err error) {
	executor, job, ok := strings.Cut(key, "/")
	if !ok || !validID(executor) || !validID(job) {
		return "", "", fmt.Errorf("job key %q is not <executor>/<job> (e.g. 1a2b3c-0/M001)", key)
	}
	return executor, job, nil
}

func validID(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\")
}

// Resolve turns a job key into executor and job ids: "<executor>/<job>"
// or Lithops' "<executor>-<job>" as is, or a bare "<job>" when exactly one
// executor in bucket has a job of that id.
func Resolve(ctx context.Context, st *storage.Storage, bucket, key string) (executor, job string, err error) {
	if strings.Contains(key, "/") {
		return SplitKey(key)
	}
	if i := strings.LastIndexByte(key, '-'); i > 0 && i < len(key)-1 {
		// Lithops' job key <executor>-<job> (e.g. 7c0b10-0-M001): job ids
		// never hold a '-', executor ids always do.
		return SplitKey(key[:i] + "/" + key[i+1:])
	}
	if !validID(key) {
		return "", "", fmt.Errorf("job key %q is not <executor>/<job> (e.g. 1a2b3c-0/M001)", key)
	}
	infos, err := st.List(ctx, bucket, protocol.JobsPrefix)
	if err != nil {
		return "", "", fmt.Errorf("jobstats: list %s://%s/%s: %w", st.Backend(), bucket, protocol.JobsPrefix, err)
	}
	var found []string
	for _, o := range infos {
		if k, ok := protocol.ParseKey(o.Key); ok && k.Kind == protocol.KindManifest && k.Job == key && validID(k.Executor) {
			found = append(found, k.Executor)
		}
	}
	switch len(found) {
	case 0:
		return "", "", fmt.Errorf("jobstats: %w %s in %s://%s", ErrNoJob, key, st.Backend(), bucket)
	case 1:
		return found[0], key, nil
	}
	for i := range found {
		found[i] += "/" + key
	}
	return "", "", fmt.Errorf("jobstats: job %s is ambiguous: %s; name one as <executor>/<job>", key, strings.Join(found, ", "))
}

// Load reads job executorID/jobID from bucket of st.
func Load(ctx context.Context, st *storage.Storage, bucket, executorID, jobID string) (*Report, error) {
	if !validID(executorID) || !validID(jobID) {
		return nil, fmt.Errorf("jobstats: malformed job key %q/%q", executorID, jobID)
	}
	prefix := protocol.JobPrefix(executorID, jobID)
	infos, err := st.List(ctx, bucket, prefix)
	if err != nil {
		return nil, fmt.Errorf("jobstats: list %s://%s/%s: %w", st.Backend(), bucket, prefix, err)
	}
	return load(ctx, st, bucket, executorID, jobID, keysOf(infos))
}

func keysOf(infos []storage.ObjectInfo) []string {
	keys := make([]string, len(infos))
	for i, o := range infos {
		keys[i] = o.Key
	}
	return keys
}

// readers bounds concurrent record reads.
const readers = 16

// load builds the report of one job from the keys listed under its prefix.
func load(ctx context.Context, st *storage.Storage, bucket, executorID, jobID string, keys []string) (*Report, error) {
	jobKey := protocol.JobKey(executorID, jobID)
	if !slices.Contains(keys, jobKey) {
		return nil, fmt.Errorf("jobstats: %w %s/%s in %s://%s (no %s)", ErrNoJob, executorID, jobID, st.Backend(), bucket, jobKey)
	}
	raw, err := st.GetBytes(ctx, bucket, jobKey)
	if err != nil {
		return nil, fmt.Errorf("jobstats: read manifest %s://%s/%s: %w", st.Backend(), bucket, jobKey, err)
	}
	job, err := protocol.ParseJob(raw)
	if err != nil {
		return nil, fmt.Errorf("jobstats: %s://%s/%s: %w", st.Backend(), bucket, jobKey, err)
	}
	if job.ExecutorID != executorID || job.JobID != jobID {
		return nil, fmt.Errorf("jobstats: manifest %s://%s/%s names job %s/%s", st.Backend(), bucket, jobKey, job.ExecutorID, job.JobID)
	}
	calls := make([]Call, job.Calls)
	for i := range calls {
		calls[i] = Call{ID: protocol.CallID(i), Index: i, State: StatePending}
	}
	var statusIdx []int
	var batchKeys []string
	for _, key := range keys {
		k, ok := protocol.ParseKey(key)
		if !ok || k.Executor != executorID || k.Job != jobID {
			continue
		}
		i, err := strconv.Atoi(k.Call)
		if err != nil || i < 0 || i >= len(calls) || calls[i].ID != k.Call {
			continue
		}
		switch {
		case k.Kind == protocol.KindStatus && k.Batch:
			batchKeys = append(batchKeys, key)
		case k.Kind == protocol.KindStatus:
			statusIdx = append(statusIdx, i)
		case k.Kind == protocol.KindAttempt:
			if k.Attempt+1 > calls[i].Attempts {
				calls[i].Attempts = k.Attempt + 1
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readers)
	for _, i := range statusIdx {
		c := &calls[i]
		key := protocol.StatusKey(executorID, jobID, c.ID)
		g.Go(func() error {
			raw, err := st.GetBytes(gctx, bucket, key)
			if err != nil {
				if errors.Is(err, storage.ErrNotFound) {
					return nil // deleted since the listing (a Rerun): pending
				}
				return fmt.Errorf("jobstats: read status %s://%s/%s: %w", st.Backend(), bucket, key, err)
			}
			fill(c, raw)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// Batch records, after the calls' own records (a call's own record
	// stands: it was re-run after its batch record proved unreadable).
	batches := make([][]protocol.Status, len(batchKeys))
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(readers)
	for i, key := range batchKeys {
		g.Go(func() error {
			raw, err := st.GetBytes(gctx, bucket, key)
			if err != nil {
				return fmt.Errorf("jobstats: read batch record %s://%s/%s: %w", st.Backend(), bucket, key, err)
			}
			k, _ := protocol.ParseKey(key)
			sts, err := protocol.ParseStatusBatch(k, raw)
			if err != nil {
				first, _ := strconv.Atoi(k.Call) // a call of the job: checked above
				if calls[first].State == StatePending {
					calls[first].State = StateUnreadable
					calls[first].Error = &protocol.ErrorRecord{Kind: "record", Message: "unreadable batch record " + key + ": " + err.Error()}
				}
				return nil
			}
			batches[i] = sts
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, sts := range batches {
		for _, s := range sts {
			i, err := strconv.Atoi(s.CallID)
			if err == nil && i >= 0 && i < len(calls) && calls[i].ID == s.CallID && calls[i].State == StatePending {
				setFrom(&calls[i], &s)
			}
		}
	}
	return &Report{Job: job, Summary: Summarize(job, calls), Calls: calls}, nil
}

// fill sets c from a status record, or marks it unreadable.
func fill(c *Call, raw []byte) {
	s, err := protocol.ParseStatus(raw)
	if err == nil && s.CallID != c.ID {
		err = fmt.Errorf("status of call %s recorded under call %s", s.CallID, c.ID)
	}
	if err == nil && s.State == protocol.StateRunning {
		return // not final: pending
	}
	if err != nil {
		c.State = StateUnreadable
		c.Error = &protocol.ErrorRecord{Kind: "record", Message: "unreadable: " + err.Error()}
		return
	}
	setFrom(c, s)
}

// setFrom sets c from its final status s.
func setFrom(c *Call, s *protocol.Status) {
	c.State = string(s.State)
	c.Attempt, c.Attempts = s.Attempt, max(s.Attempt+1, 1)
	c.Worker, c.ColdStart = s.WorkerID, s.ColdStart
	c.Start, c.FuncStart, c.FuncEnd, c.End = s.Start, s.FuncStart, s.FuncEnd, s.End
	c.ResultSize, c.PeakRSS = s.ResultSize, s.PeakRSS
	if s.State == protocol.StateError {
		c.Error = s.Error
	}
}

// Summarize aggregates calls of job.
func Summarize(job *protocol.Job, calls []Call) Summary {
	s := Summary{Calls: len(calls)}
	if job != nil {
		s.Executor, s.Job, s.Function, s.Created = job.ExecutorID, job.JobID, job.Function, job.Created
	}
	workers := map[string]bool{}
	var durs []time.Duration
	for i := range calls {
		c := &calls[i]
		switch c.State {
		case StateSuccess:
			s.Done++
		case StateError:
			s.Done++
			s.Failed++
		case StateUnreadable:
			s.Unreadable++
		default:
			s.Pending++
		}
		s.Attempts += c.Attempts
		if c.Attempts > 1 {
			s.Retried++
		}
		if c.ColdStart {
			s.ColdStarts++
		}
		if c.Worker != "" {
			workers[c.Worker] = true
		}
		if !c.Start.IsZero() && (s.FirstStart.IsZero() || c.Start.Before(s.FirstStart)) {
			s.FirstStart = c.Start
		}
		if c.End.After(s.LastEnd) {
			s.LastEnd = c.End
		}
		if d := c.Duration(); d > 0 || (!c.Start.IsZero() && !c.End.IsZero()) {
			durs = append(durs, d)
		}
	}
	s.Workers = len(workers)
	if len(durs) > 0 {
		slices.Sort(durs)
		s.MinDuration, s.MaxDuration = durs[0], durs[len(durs)-1]
		s.MedianDuration, s.P90Duration = Percentile(durs, 50), Percentile(durs, 90)
	}
	if !s.LastEnd.IsZero() && !s.Created.IsZero() && s.LastEnd.After(s.Created) {
		s.WallTime = s.LastEnd.Sub(s.Created)
	}
	return s
}

// Percentile returns the p-th percentile (nearest rank) of sorted; 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	p = min(max(p, 0), 100)
	rank := int(float64(len(sorted))*p/100+0.999999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// List reads every job in bucket (under lithops.jobs/) and returns their
// summaries, oldest first. Keys that belong to no manifest are ignored.
func List(ctx context.Context, st *storage.Storage, bucket string) ([]Summary, error) {
	jobs, _, err := ListAll(ctx, st, bucket)
	return jobs, err
}

// Skipped is a job that List could not read (a malformed manifest, a
// manifest of another protocol): named, and left out of the list.
type Skipped struct {
	Key string // "<executor>/<job>"
	Err error
}

// ListAll is List that also returns the jobs it skipped: one unreadable
// job does not hide the others. Only a failure to list storage is an error.
func ListAll(ctx context.Context, st *storage.Storage, bucket string) ([]Summary, []Skipped, error) {
	infos, err := st.List(ctx, bucket, protocol.JobsPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("jobstats: list %s://%s/%s: %w", st.Backend(), bucket, protocol.JobsPrefix, err)
	}
	type jobKey struct{ e, j string }
	byJob := map[jobKey][]string{}
	var order []jobKey
	for _, o := range infos {
		// Only lithops-go's keys: Python Lithops' records share the
		// prefix (<exec>-<job>/<call>/status.json, tmp/…) and never parse.
		pk, ok := protocol.ParseKey(o.Key)
		if !ok || !validID(pk.Executor) || !validID(pk.Job) {
			continue
		}
		k := jobKey{pk.Executor, pk.Job}
		if _, ok := byJob[k]; !ok {
			order = append(order, k)
		}
		byJob[k] = append(byJob[k], o.Key)
	}
	var (
		mu      sync.Mutex
		out     []Summary
		skipped []Skipped
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, k := range order {
		keys := byJob[k]
		if !slices.Contains(keys, protocol.JobKey(k.e, k.j)) {
			continue // inputs or statuses without a manifest: not a job (yet)
		}
		g.Go(func() error {
			r, err := load(gctx, st, bucket, k.e, k.j, keys)
			if err != nil {
				if errors.Is(err, ErrNoJob) {
					return nil
				}
				if ctx.Err() != nil {
					return err
				}
				mu.Lock()
				skipped = append(skipped, Skipped{Key: k.e + "/" + k.j, Err: err})
				mu.Unlock()
				return nil
			}
			mu.Lock()
			out = append(out, r.Summary)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	sort.Slice(skipped, func(i, j int) bool { return skipped[i].Key < skipped[j].Key })
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		if a.Executor != b.Executor {
			return a.Executor < b.Executor
		}
		return a.Job < b.Job
	})
	return out, skipped, nil
}
