package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/internal/jobplot"
	"github.com/lithops-go/lithops/internal/jobstats"
	"github.com/lithops-go/lithops/storage"
	"github.com/spf13/cobra"
)

// newJobsCmd is `lithops jobs list|show|plot`: the jobs recorded in storage
// under lithops.jobs/, read from storage only (no executor, no backend), so
// it works for jobs of processes that are gone. Job data outlives its
// executor only with lithops.data_cleaner: false (or while it runs).
func newJobsCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "jobs",
		Aliases: []string{"job"}, // Lithops' `lithops job list`
		Short:   "List jobs recorded in storage, show their per-call stats, plot them",
	}
	cmd.PersistentFlags().StringVarP(&g.backend, "backend", "b", "", "compute backend (selects its default storage)")
	cmd.PersistentFlags().StringVarP(&g.storage, "storage", "s", "", "storage backend")
	open := func(ctx context.Context) (*storage.Storage, error) {
		return lithops.OpenStorage(ctx, g.options()...)
	}

	var executor string
	list := &cobra.Command{
		Use:   "list",
		Short: "List jobs: executor, job id, function, calls, done, failed, pending, created",
		Args:  cobra.NoArgs,
		RunE: withStorage(open, func(ctx context.Context, cmd *cobra.Command, st *storage.Storage, args []string) error {
			jobs, skipped, err := jobstats.ListAll(ctx, st, st.Bucket())
			if err != nil {
				return err
			}
			for _, s := range skipped {
				fmt.Fprintf(cmd.ErrOrStderr(), "lithops: skipped job %s: %v\n", s.Key, s.Err)
			}
			if executor != "" {
				kept := jobs[:0]
				for _, j := range jobs {
					if j.Executor == executor {
						kept = append(kept, j)
					}
				}
				jobs = kept
			}
			return jobstats.WriteList(cmd.OutOrStdout(), jobs)
		}),
	}
	list.Flags().StringVarP(&executor, "executor", "e", "", "only the jobs of this executor")

	var format string
	show := &cobra.Command{
		Use:   "show EXECUTOR/JOB",
		Short: "Show a job's summary and per-call stats (--format table, csv or json)",
		Long: "Show a job's summary (calls done, failed and pending, attempts, cold starts, workers,\n" +
			"duration min/median/p90/max, wall time) and one row per call: state, attempts, worker,\n" +
			"cold start, start (seconds after submission), duration, function time, peak memory, error.\n" +
			"A bare JOB id is enough when a single executor has a job of that id.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := jobstats.CheckFormat(format); err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			r, err := loadReport(ctx, st, args[0])
			if err != nil {
				return err
			}
			return jobstats.Write(cmd.OutOrStdout(), r, format)
		},
	}
	show.Flags().StringVarP(&format, "format", "f", "table", "output format: "+strings.Join(jobstats.Formats, ", "))

	var dir string
	plot := &cobra.Command{
		Use:   "plot EXECUTOR/JOB...",
		Short: "Draw each job's timeline and duration histogram as PNG and SVG into --out",
		Args:  cobra.MinimumNArgs(1),
		RunE: withStorage(open, func(ctx context.Context, cmd *cobra.Command, st *storage.Storage, args []string) error {
			for _, key := range args {
				r, err := loadReport(ctx, st, key)
				if err != nil {
					return err
				}
				paths, err := jobplot.Write(dir, r)
				for _, p := range paths {
					fmt.Fprintln(cmd.OutOrStdout(), p)
				}
				if err != nil {
					return err
				}
			}
			return nil
		}),
	}
	plot.Flags().StringVarP(&dir, "out", "o", ".", "directory for the plot files")
	rerun := &cobra.Command{
		Use:   "rerun <job-key>",
		Short: "Run again the calls of a job that failed or never finished, and wait for them",
		Long: "Attaches to the executor's records in storage and re-invokes the calls without a successful\n" +
			"final status. On azure_functions the runtime runs the job's own program (by hash); on\n" +
			"localhost use the Attach/Rerun API from the program itself.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := open(ctx)
			if err != nil {
				return err
			}
			exec, job, err := jobstats.Resolve(ctx, st, st.Bucket(), args[0])
			st.Close()
			if err != nil {
				return fmt.Errorf("jobs rerun: %w", err)
			}
			e, err := lithops.Attach(ctx, exec, g.options()...)
			if err != nil {
				return err
			}
			defer e.Close()
			n, err := e.Rerun(ctx, job)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "re-running %d call(s) of %s\n", n, args[0])
			for _, j := range e.Jobs() {
				if j.ID != job {
					continue
				}
				aw, err := e.Awaitable(job)
				if err != nil {
					return err
				}
				p, err := lithops.Wait(ctx, aw, lithops.WaitProgressBar(cmd.ErrOrStderr()))
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d calls, %d failed\n", args[0], p.Total, p.Failed)
				if p.Failed > 0 {
					return fmt.Errorf("%d call(s) of %s failed", p.Failed, args[0])
				}
			}
			return nil
		},
	}
	cmd.AddCommand(list, show, plot, rerun)
	return cmd
}

// loadReport reads the job that key names from st.
func loadReport(ctx context.Context, st *storage.Storage, key string) (*jobstats.Report, error) {
	e, j, err := jobstats.Resolve(ctx, st, st.Bucket(), key)
	if err != nil {
		return nil, err
	}
	return jobstats.Load(ctx, st, st.Bucket(), e, j)
}
