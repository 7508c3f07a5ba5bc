package main

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/internal/jobstats"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/spf13/cobra"
)

// logRef is one stored call output.
type logRef struct {
	key     string
	call    string
	attempt int
}

func newLogsCmd(g *globalFlags) *cobra.Command {
	var backend, storageName string
	var follow bool
	openStorage := func(ctx context.Context) (*storage.Storage, error) {
		opts := g.options()
		if backend != "" {
			opts = append(opts, lithops.WithBackend(backend))
		}
		if storageName != "" {
			opts = append(opts, lithops.WithStorage(storageName))
		}
		return lithops.OpenStorage(ctx, opts...)
	}
	get := func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		st, err := openStorage(ctx)
		if err != nil {
			return err
		}
		defer st.Close()
		exec, job, call, err := parseLogsKey(ctx, st, args[0])
		if err != nil {
			return err
		}
		printed := map[string]bool{}
		for {
			n, done, err := printLogs(ctx, cmd.OutOrStdout(), st, exec, job, call, printed)
			if err != nil {
				return err
			}
			if !follow || done {
				if !follow && n == 0 && len(printed) == 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "no output recorded for %s\n", args[0])
				}
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
	cmd := &cobra.Command{
		Use:   "logs <job-key>[/<call>]",
		Short: "Print the captured stdout and stderr of a job's calls (--follow while it runs)",
		Long: "A job key is <executor>/<job>, Lithops' <executor>-<job> (e.g. 7c0b10-0-M001), or a bare\n" +
			"<job> when a single executor has a job of that id. `lithops logs get <job-key>` and\n" +
			"`lithops logs poll` are Lithops' spellings.",
		Args: cobra.ExactArgs(1),
		RunE: get,
	}
	cmd.PersistentFlags().StringVarP(&backend, "backend", "b", "", "compute backend (selects its default storage)")
	cmd.PersistentFlags().StringVarP(&storageName, "storage", "s", "", "storage backend")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until the job has finished")
	getCmd := &cobra.Command{
		Use:   "get <job-key>[/<call>]",
		Short: "Print the captured output of a job's calls (Lithops' logs get)",
		Args:  cobra.ExactArgs(1),
		RunE:  get,
	}
	getCmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until the job has finished")
	poll := &cobra.Command{
		Use:   "poll",
		Short: "Print the output of every job's calls as it is recorded, until interrupted (Lithops' logs poll)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := openStorage(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			printed := map[string]bool{}
			first := true
			for {
				if err := pollLogs(ctx, cmd.OutOrStdout(), st, printed, first); err != nil {
					return err
				}
				first = false
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(time.Second):
				}
			}
		},
	}
	cmd.AddCommand(getCmd, poll)
	return cmd
}

// parseLogsKey reads <job-key>[/<call>]: the job key in any form
// jobstats.Resolve takes, the call as a number.
func parseLogsKey(ctx context.Context, st *storage.Storage, arg string) (exec, job, call string, err error) {
	key := arg
	if i := strings.LastIndexByte(arg, '/'); i >= 0 {
		if n, aerr := strconv.Atoi(arg[i+1:]); aerr == nil {
			if n < 0 {
				return "", "", "", fmt.Errorf("logs: call %q is not a call number", arg[i+1:])
			}
			key, call = arg[:i], protocol.CallID(n)
		}
	}
	if strings.Count(key, "/") > 1 {
		return "", "", "", fmt.Errorf("logs: want <executor>/<job>[/<call>], got %q", arg)
	}
	exec, job, err = jobstats.Resolve(ctx, st, st.Bucket(), key)
	if err != nil {
		return "", "", "", fmt.Errorf("logs: %w", err)
	}
	return exec, job, call, nil
}

// pollLogs prints the call outputs of every job not printed yet; the
// first pass only marks what is there already, as Lithops' logs poll
// prints what is produced from now on.
func pollLogs(ctx context.Context, w io.Writer, st *storage.Storage, printed map[string]bool, first bool) error {
	infos, err := st.List(ctx, st.Bucket(), protocol.JobsPrefix)
	if err != nil {
		return err
	}
	for _, o := range infos {
		k, ok := protocol.ParseKey(o.Key)
		if !ok || k.Kind != protocol.KindLogs || printed[o.Key] {
			continue
		}
		printed[o.Key] = true
		if first {
			continue
		}
		rc, err := st.Get(ctx, st.Bucket(), o.Key)
		if err != nil {
			continue // cleaned meanwhile
		}
		zr, err := gzip.NewReader(rc)
		if err == nil {
			fmt.Fprintf(w, "=== %s/%s call %s attempt %d ===\n", k.Executor, k.Job, k.Call, k.Attempt)
			io.Copy(w, zr)
		}
		rc.Close()
	}
	return nil
}

// printLogs prints the outputs not printed yet and reports whether every
// call of the job has finished.
func printLogs(ctx context.Context, w io.Writer, st *storage.Storage, exec, job, call string, printed map[string]bool) (int, bool, error) {
	infos, err := st.List(ctx, st.Bucket(), protocol.JobPrefix(exec, job))
	if err != nil {
		return 0, false, err
	}
	var refs []logRef
	finished := map[string]bool{} // calls with a final record
	for _, o := range infos {
		k, ok := protocol.ParseKey(o.Key)
		if !ok || k.Executor != exec || k.Job != job {
			continue
		}
		if k.Kind == protocol.KindStatus && k.Batch {
			// A batch record: the calls it holds have finished.
			for _, id := range batchCalls(ctx, st, o.Key, k) {
				if call == "" || id == call {
					finished[id] = true
				}
			}
			continue
		}
		if call != "" && k.Call != call {
			continue
		}
		switch k.Kind {
		case protocol.KindStatus:
			finished[k.Call] = true
		case protocol.KindLogs:
			if !printed[o.Key] {
				refs = append(refs, logRef{key: o.Key, call: k.Call, attempt: k.Attempt})
			}
		}
	}
	sort.Slice(refs, func(i, j int) bool {
		if refs[i].call != refs[j].call {
			return refs[i].call < refs[j].call
		}
		return refs[i].attempt < refs[j].attempt
	})
	for _, r := range refs {
		rc, err := st.Get(ctx, st.Bucket(), r.key)
		if err != nil {
			return 0, false, err
		}
		zr, err := gzip.NewReader(rc)
		if err != nil {
			rc.Close()
			return 0, false, fmt.Errorf("logs %s: %w", r.key, err)
		}
		fmt.Fprintf(w, "=== %s/%s call %s attempt %d ===\n", exec, job, r.call, r.attempt)
		_, err = io.Copy(w, zr)
		rc.Close()
		if err != nil {
			return 0, false, fmt.Errorf("logs %s: %w", r.key, err)
		}
		printed[r.key] = true
	}
	// The manifest says how many calls there are, and whether this program
	// reads the job's records at all: a job of another protocol version
	// keeps its statuses where ParseKey does not look, and following one
	// of its calls would never end.
	want := 1
	raw, err := st.GetBytes(ctx, st.Bucket(), protocol.JobKey(exec, job))
	switch {
	case err == nil:
		j, err := protocol.ParseJob(raw)
		if err != nil {
			return len(refs), false, fmt.Errorf("logs: %s: %w", protocol.JobKey(exec, job), err)
		}
		if call == "" {
			want = j.Calls
		}
	case call != "" && errors.Is(err, storage.ErrNotFound):
		// One call followed: its job's manifest may still be on its way.
	default:
		return len(refs), false, fmt.Errorf("logs: job %s/%s: %w", exec, job, err)
	}
	return len(refs), len(finished) >= want, nil
}

// batchCalls returns the calls the batch record at key holds. A record
// that cannot be read or decoded counts for its first call, as the
// executor ends that call with ErrCorrupt; one deleted meanwhile, for none.
func batchCalls(ctx context.Context, st *storage.Storage, key string, k protocol.Key) []string {
	raw, err := st.GetBytes(ctx, st.Bucket(), key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	var sts []protocol.Status
	if err == nil {
		sts, err = protocol.ParseStatusBatch(k, raw)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "lithops logs: %s: %v\n", key, err)
		return []string{k.Call}
	}
	ids := make([]string, len(sts))
	for i, s := range sts {
		ids[i] = s.CallID
	}
	return ids
}
