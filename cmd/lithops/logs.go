package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lithops-go/lithops"
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
	cmd := &cobra.Command{
		Use:   "logs <executor>/<job>[/<call>]",
		Short: "Print the captured stdout and stderr of a job's calls (--follow while it runs)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			parts := strings.Split(args[0], "/")
			if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
				return fmt.Errorf("logs: want <executor>/<job>[/<call>], got %q", args[0])
			}
			exec, job := parts[0], parts[1]
			call := ""
			if len(parts) == 3 {
				n, err := strconv.Atoi(parts[2])
				if err != nil || n < 0 {
					return fmt.Errorf("logs: call %q is not a call number", parts[2])
				}
				call = protocol.CallID(n)
			}
			ctx := cmd.Context()
			opts := g.options()
			if backend != "" {
				opts = append(opts, lithops.WithBackend(backend))
			}
			if storageName != "" {
				opts = append(opts, lithops.WithStorage(storageName))
			}
			st, err := lithops.OpenStorage(ctx, opts...)
			if err != nil {
				return err
			}
			defer st.Close()
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
		},
	}
	cmd.Flags().StringVarP(&backend, "backend", "b", "", "compute backend (selects its default storage)")
	cmd.Flags().StringVarP(&storageName, "storage", "s", "", "storage backend")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until the job has finished")
	return cmd
}

// printLogs prints the outputs not printed yet and reports whether every
// call of the job has finished.
func printLogs(ctx context.Context, w io.Writer, st *storage.Storage, exec, job, call string, printed map[string]bool) (int, bool, error) {
	infos, err := st.List(ctx, st.Bucket(), protocol.JobPrefix(exec, job))
	if err != nil {
		return 0, false, err
	}
	var refs []logRef
	finished := 0
	for _, o := range infos {
		k, ok := protocol.ParseKey(o.Key)
		if !ok || k.Executor != exec || k.Job != job || (call != "" && k.Call != call) {
			continue
		}
		switch k.Kind {
		case protocol.KindStatus:
			finished++
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
	want := 1
	if call == "" {
		raw, err := st.GetBytes(ctx, st.Bucket(), protocol.JobKey(exec, job))
		if err != nil {
			return len(refs), false, fmt.Errorf("logs: job %s/%s: %w", exec, job, err)
		}
		var j protocol.Job
		if err := json.Unmarshal(raw, &j); err != nil {
			return len(refs), false, fmt.Errorf("logs: job manifest: %w", err)
		}
		want = j.Calls
	}
	return len(refs), finished >= want, nil
}
