// Package plot draws, like Lithops' plot(), an executor's jobs as PNG and
// SVG files: a timeline of the calls and a histogram of their durations.
// It is a package of its own so that programs that never plot do not link
// gonum/plot and its fonts; `lithops jobs plot` draws the same files.
package plot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/internal/jobplot"
	"github.com/lithops-go/lithops/internal/jobstats"
)

// Jobs draws two plots per job into dir (created if missing) and returns
// the paths of the files written (it was Executor.Plot):
//
//   - <executor>_<job>_timeline.png and .svg: one row per finished call,
//     sorted by start, grey from submission to start and then green
//     (success) or red (error) until the call's end;
//   - <executor>_<job>_histogram.png and .svg: call durations on the
//     worker, the failed calls' share in red.
//
// jobs are as in Executor.JobSummary ("M001" of e, or "<executor>/<job>");
// none means every job of e. The plots are read from e's storage, so plot
// before Close unless lithops.data_cleaner is false.
func Jobs(ctx context.Context, e *lithops.Executor, dir string, jobs ...string) ([]string, error) {
	if dir == "" {
		return nil, errors.New("plot: no directory")
	}
	if len(jobs) == 0 {
		for _, j := range e.Jobs() {
			jobs = append(jobs, j.ID)
		}
		if len(jobs) == 0 {
			return nil, fmt.Errorf("plot: executor %s has no jobs to plot", e.ID())
		}
	}
	var paths []string
	for _, job := range jobs {
		if err := ctx.Err(); err != nil {
			return paths, err
		}
		r, err := load(ctx, e, job)
		if err != nil {
			return paths, err
		}
		ps, err := jobplot.Write(dir, r)
		paths = append(paths, ps...)
		if err != nil {
			return paths, fmt.Errorf("plot: %w", err)
		}
	}
	return paths, nil
}

// load reads the stats of job, a job id of e or "<executor>/<job>".
func load(ctx context.Context, e *lithops.Executor, job string) (*jobstats.Report, error) {
	exec, id := e.ID(), job
	if strings.Contains(job, "/") {
		var err error
		if exec, id, err = jobstats.SplitKey(job); err != nil {
			return nil, fmt.Errorf("plot: %w", err)
		}
	}
	st := e.Storage()
	r, err := jobstats.Load(ctx, st, st.Bucket(), exec, id)
	if err != nil {
		return nil, fmt.Errorf("plot: job stats of %s/%s: %w", exec, id, err)
	}
	return r, nil
}
