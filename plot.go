package lithops

import (
	"context"
	"errors"
	"fmt"

	"github.com/lithops-go/lithops/internal/jobplot"
)

// Plot draws, like Lithops' plot(), two plots per job into dir (created if
// missing) and returns the paths of the files written:
//
//   - <executor>_<job>_timeline.png and .svg: one row per finished call,
//     sorted by start, grey from submission to start and then green
//     (success) or red (error) until the call's end;
//   - <executor>_<job>_histogram.png and .svg: call durations on the
//     worker, the failed calls' share in red.
//
// jobs are as in JobSummary ("M001" of this executor, or
// "<executor>/<job>"); none means every job of this executor. The plots are
// read from storage, so plot before Close unless lithops.data_cleaner is
// false. `lithops jobs plot` draws the same files.
func (e *Executor) Plot(ctx context.Context, dir string, jobs ...string) ([]string, error) {
	if dir == "" {
		return nil, errors.New("lithops: Plot needs a directory")
	}
	if len(jobs) == 0 {
		for _, j := range e.Jobs() {
			jobs = append(jobs, j.ID)
		}
		if len(jobs) == 0 {
			return nil, fmt.Errorf("lithops: executor %s has no jobs to plot", e.id)
		}
	}
	var paths []string
	for _, job := range jobs {
		if err := ctx.Err(); err != nil {
			return paths, err
		}
		r, err := e.loadJob(ctx, job)
		if err != nil {
			return paths, err
		}
		ps, err := jobplot.Write(dir, r)
		paths = append(paths, ps...)
		if err != nil {
			return paths, fmt.Errorf("lithops: %w", err)
		}
	}
	return paths, nil
}
