package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/deploy"
	"github.com/lithops-go/lithops/internal/azure/deploy/armdeploy"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/spf13/cobra"
)

func newCleanCmd(g *globalFlags) *cobra.Command {
	rf := &runtimeFlags{}
	var all, programs bool
	var executor string
	var olderThan time.Duration
	cmd := &cobra.Command{
		Use:   "clean",
		Short: "Delete job data; with -b azure_functions also every lithops runtime and its queues",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := config.Load(g.config)
			if err != nil {
				return err
			}
			if rf.backend != "" {
				cfg.Lithops.Backend = rf.backend
				if rf.storage == "" && rf.backend != "localhost" && cfg.Lithops.Storage == "localhost" {
					cfg.Lithops.Storage = "azure_storage"
				}
			}
			if rf.storage != "" {
				cfg.Lithops.Storage = rf.storage
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			// A full clean on azure_functions deletes runtimes: check the
			// ARM sign-in before deleting anything at all.
			touchesRuntimes := cfg.Lithops.Backend == "azure_functions" && executor == "" && olderThan <= 0
			var dep *armdeploy.Deployer
			var derr error = deploy.ErrNoARM
			if touchesRuntimes {
				dep, derr = armDeployer(ctx, cfg)
				if derr != nil && !errors.Is(derr, deploy.ErrNoARM) {
					return derr
				}
			}
			st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
			if err != nil {
				return err
			}
			defer st.Close()
			n, jobs, err := cleanJobs(ctx, st, executor, olderThan)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %d job(s), %d object(s), from %s://%s\n", jobs, n, st.Backend(), st.Bucket())
			if programs || all {
				m, err := cleanPrograms(ctx, st)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %d uploaded program(s) no job uses\n", m)
			}
			if executor != "" || olderThan > 0 {
				return nil // a selective clean leaves runtimes alone
			}
			if cfg.Lithops.Backend != "azure_functions" {
				if all {
					m, err := cleanRuntimeRecords(ctx, st)
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "deleted %d runtime object(s)\n", m)
				}
				return nil
			}
			svc, err := queueService(ctx, cfg)
			if err != nil {
				return err
			}
			var errs []error
			if derr == nil {
				apps, err := dep.List(ctx, cfg.AzureFunctions.ResourceGroup)
				if err != nil {
					errs = append(errs, err)
				}
				for _, a := range apps {
					if err := deploy.Delete(ctx, cfg, st, svc, dep, a.RuntimeName, a.MemoryMB); err != nil {
						errs = append(errs, err)
						continue
					}
					fmt.Fprintf(cmd.OutOrStdout(), "deleted runtime %s (%s)\n", a.RuntimeName, a.Name)
				}
			} else {
				fmt.Fprintln(cmd.ErrOrStderr(), "lithops: no ARM settings: function apps are left alone; deleting queues and records only")
			}
			q, err := deleteLithopsQueues(cmd, svc)
			errs = append(errs, err)
			m, err := cleanRuntimeRecords(ctx, st)
			errs = append(errs, err)
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %d queue(s) and %d runtime object(s)\n", q, m)
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVarP(&rf.backend, "backend", "b", "", "compute backend")
	cmd.Flags().StringVarP(&rf.storage, "storage", "s", "", "storage backend")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "also delete uploaded programs and runtime metadata")
	cmd.Flags().StringVarP(&executor, "executor", "e", "", "only this executor's jobs")
	cmd.Flags().DurationVar(&olderThan, "older-than", 0, "only jobs created longer ago than this (e.g. 24h)")
	cmd.Flags().BoolVar(&programs, "programs", false, "also delete uploaded programs that no remaining job uses")
	return cmd
}

// deleteLithopsQueues deletes every queue whose name starts with "lithops-".
func deleteLithopsQueues(cmd *cobra.Command, svc *azqueue.ServiceClient) (int, error) {
	ctx := cmd.Context()
	pager := svc.NewListQueuesPager(&azqueue.ListQueuesOptions{Prefix: ptr("lithops-")})
	n := 0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return n, err
		}
		for _, q := range page.Queues {
			if q.Name == nil || !strings.HasPrefix(*q.Name, "lithops-") {
				continue
			}
			if _, err := svc.DeleteQueue(ctx, *q.Name, nil); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func ptr[T any](v T) *T { return &v }

// cleanJobs deletes the records of the jobs selected by executor (all if
// "") and age (all if 0); it returns objects and jobs deleted.
func cleanJobs(ctx context.Context, st *storage.Storage, executor string, olderThan time.Duration) (int, int, error) {
	prefix := protocol.JobsPrefix
	if executor != "" {
		prefix = protocol.ExecutorPrefix(executor)
	}
	infos, err := st.List(ctx, st.Bucket(), prefix)
	if err != nil {
		return 0, 0, err
	}
	// Only keys of lithops-go's layout (protocol.ParseKey) are ours: Python
	// Lithops keeps its records in the same bucket under the same
	// lithops.jobs/ prefix (<exec>-<job>/<call>/status.json, aggdata.pickle,
	// *.func.pickle, tmp/…), and they are left alone.
	type jobID struct{ e, j string }
	byJob := map[jobID][]string{}
	var manifests []jobID
	// Keys under a job's prefix that ParseKey does not read (records of an
	// older layout: protocol 2's status/<call>.json) go with their job,
	// once the job is known to be ours by a key it does read.
	unread := map[jobID][]string{}
	for _, o := range infos {
		k, ok := protocol.ParseKey(o.Key)
		if !ok {
			if e, j, ok := protocol.KeyJob(o.Key); ok && (executor == "" || e == executor) {
				unread[jobID{e, j}] = append(unread[jobID{e, j}], o.Key)
			}
			continue
		}
		if executor != "" && k.Executor != executor {
			continue
		}
		id := jobID{k.Executor, k.Job}
		byJob[id] = append(byJob[id], o.Key)
		if k.Kind == protocol.KindManifest {
			manifests = append(manifests, id)
		}
	}
	for id, keys := range unread {
		if byJob[id] != nil {
			byJob[id] = append(byJob[id], keys...)
		}
	}
	var cutoff time.Time
	if olderThan > 0 {
		cutoff = time.Now().Add(-olderThan)
	}
	n, jobs := 0, 0
	del := func(keys []string) error {
		for len(keys) > 0 {
			b := keys[:min(len(keys), 256)]
			keys = keys[len(b):]
			if err := st.Delete(ctx, st.Bucket(), b...); err != nil {
				return err
			}
			n += len(b)
		}
		return nil
	}
	for _, id := range manifests {
		if olderThan > 0 {
			raw, err := st.GetBytes(ctx, st.Bucket(), protocol.JobKey(id.e, id.j))
			if err != nil {
				continue
			}
			// Its age only: a manifest of another protocol version (an old
			// job, what --older-than is for after an upgrade) has one too.
			var j struct {
				Created time.Time `json:"created"`
			}
			if err := json.Unmarshal(raw, &j); err != nil || j.Created.IsZero() || j.Created.After(cutoff) {
				continue // its age unknown: kept
			}
		}
		if err := del(byJob[id]); err != nil {
			return n, jobs, err
		}
		delete(byJob, id)
		jobs++
	}
	if olderThan <= 0 {
		// Records of ours without a manifest (a job cut short) go too.
		for _, keys := range byJob {
			if err := del(keys); err != nil {
				return n, jobs, err
			}
		}
	}
	// And what holds no record: the next job's directory an executor
	// prepared (storage.Storage.Prepare) before it crashed.
	if err := st.Unprepare(ctx, st.Bucket(), prefix); err != nil {
		return n, jobs, err
	}
	return n, jobs, nil
}

// ownRuntimeKey reports whether key, under lithops.runtimes/, is one
// lithops-go writes: an uploaded program (bin/<sha256>) or a runtime's
// metadata (<backend>/<runtime>.meta.json). Python Lithops' metadata
// (<backend>/<version>/<runtime>.meta.json) is not.
func ownRuntimeKey(key string) bool {
	rest, ok := strings.CutPrefix(key, protocol.RuntimesPrefix)
	if !ok {
		return false
	}
	if sha, ok := strings.CutPrefix(rest, "bin/"); ok {
		return len(sha) == 64 && strings.Trim(sha, "0123456789abcdef") == "" && key == protocol.ProgramKey(sha)
	}
	backend, name, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(name, "/") || !strings.HasSuffix(name, ".meta.json") {
		return false
	}
	return key == protocol.RuntimeMetaKey(backend, strings.TrimSuffix(name, ".meta.json"))
}

// cleanRuntimeRecords deletes lithops-go's objects under lithops.runtimes/.
func cleanRuntimeRecords(ctx context.Context, st *storage.Storage) (int, error) {
	infos, err := st.List(ctx, st.Bucket(), protocol.RuntimesPrefix)
	if err != nil {
		return 0, err
	}
	var keys []string
	for _, o := range infos {
		if ownRuntimeKey(o.Key) {
			keys = append(keys, o.Key)
		}
	}
	if len(keys) == 0 {
		return 0, nil
	}
	return len(keys), st.Delete(ctx, st.Bucket(), keys...)
}

// cleanPrograms deletes uploaded programs that no job manifest names.
func cleanPrograms(ctx context.Context, st *storage.Storage) (int, error) {
	used := map[string]bool{}
	infos, err := st.List(ctx, st.Bucket(), protocol.JobsPrefix)
	if err != nil {
		return 0, err
	}
	for _, o := range infos {
		if k, ok := protocol.ParseKey(o.Key); !ok || k.Kind != protocol.KindManifest {
			continue
		}
		raw, err := st.GetBytes(ctx, st.Bucket(), o.Key)
		if err != nil {
			return 0, err
		}
		// A manifest that cannot be read may name a program in use: then
		// no program is deleted, rather than one a job still needs.
		var j protocol.Job
		if err := json.Unmarshal(raw, &j); err != nil {
			return 0, fmt.Errorf("manifest %s is unreadable (%v): not deleting any program, one may be in use", o.Key, err)
		}
		if j.Program != "" {
			used[j.Program] = true
		}
	}
	progs, err := st.List(ctx, st.Bucket(), protocol.ProgramKey(""))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range progs {
		if used[strings.TrimPrefix(o.Key, protocol.ProgramKey(""))] {
			continue
		}
		if err := st.Delete(ctx, st.Bucket(), o.Key); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
