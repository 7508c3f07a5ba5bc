package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/compute/azurefunctions"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/build"
	"github.com/lithops-go/lithops/internal/azure/deploy"
	"github.com/lithops-go/lithops/internal/azure/deploy/armdeploy"
	"github.com/lithops-go/lithops/internal/azure/naming"
	"github.com/lithops-go/lithops/internal/azure/queues"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/spf13/cobra"
)

// runtimeCache is where built app packages wait for deploy.
func runtimeCache(backend, name string) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "lithops", "runtimes", backend, name+".zip"), nil
}

// newDeployer builds the ARM deployer of a configuration; tests replace it
// (a deployer with another credential or transport).
var newDeployer = deploy.NewARM

// armDeployer returns the configuration's ARM deployer once its credential
// has given a token for Resource Manager: commands call it before they
// create or delete anything, so a missing sign-in changes nothing.
func armDeployer(ctx context.Context, cfg *config.Config) (*armdeploy.Deployer, error) {
	dep, err := newDeployer(cfg, nil)
	if err != nil {
		return nil, err
	}
	if err := deploy.CheckARM(ctx, dep); err != nil {
		return nil, err
	}
	return dep, nil
}

// queueService opens the queue service of cfg's storage account, failing
// at once when its host does not exist (a wrong account name).
func queueService(ctx context.Context, cfg *config.Config) (*azqueue.ServiceClient, error) {
	svc, err := queues.NewService(cfg.AzureStorage)
	if err != nil {
		return nil, err
	}
	if err := queues.CheckHost(ctx, svc); err != nil {
		return nil, err
	}
	return svc, nil
}

type runtimeFlags struct {
	backend, storage string
	memory, timeout  int
}

func (g *globalFlags) loadConfig(rf *runtimeFlags) (*config.Config, error) {
	// A bad flag is the flag's fault, not the config file's.
	if rf.memory != 0 && !slices.Contains(naming.MemoryTiers, rf.memory) {
		return nil, fmt.Errorf("--memory %d: Flex Consumption offers 512, 2048 or 4096 MB", rf.memory)
	}
	cfg, err := config.Load(g.config)
	if err != nil {
		return nil, err
	}
	if rf.backend != "" {
		cfg.Lithops.Backend = rf.backend
	}
	if rf.storage != "" {
		cfg.Lithops.Storage = rf.storage
	} else if cfg.Lithops.Backend != "localhost" && cfg.Lithops.Storage == "localhost" {
		cfg.Lithops.Storage = "azure_storage"
	}
	if rf.memory != 0 {
		cfg.AzureFunctions.RuntimeMemory = rf.memory
	}
	if rf.timeout != 0 {
		cfg.AzureFunctions.RuntimeTimeout = rf.timeout
	}
	cfg.Override(config.Overrides{Region: g.region})
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Lithops.Backend != "azure_functions" {
		return nil, fmt.Errorf("runtimes are managed for serverless backends: use -b azure_functions (the localhost backend runs your own program)")
	}
	return cfg, nil
}

func addRuntimeManagement(cmd *cobra.Command, g *globalFlags) {
	rf := &runtimeFlags{}
	cmd.PersistentFlags().StringVarP(&rf.backend, "backend", "b", "", "compute backend (azure_functions)")
	cmd.PersistentFlags().StringVarP(&rf.storage, "storage", "s", "", "storage backend (azure_storage)")

	var file, out, trigger string
	buildCmd := &cobra.Command{
		Use:   "build [-f FILE] NAME",
		Short: "Build a runtime's app package (-f: a Go main package or a runtime spec file)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig(rf)
			if err != nil {
				return err
			}
			if trigger == "" {
				trigger = cfg.AzureFunctions.Trigger
			}
			pkg, man, err := build.App(cmd.Context(), build.Options{
				Runtime: args[0], Version: lithops.Version, File: file, Trigger: trigger, TimeoutSeconds: cfg.AzureFunctions.RuntimeTimeout,
			})
			if err != nil {
				return err
			}
			dst := out
			if dst == "" {
				if dst, err = runtimeCache("azure_functions", args[0]); err != nil {
					return err
				}
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(dst, pkg, 0o644); err != nil {
				return err
			}
			extra := ""
			if man.ProgramSHA != "" {
				extra = fmt.Sprintf(", program %s compiled in", man.ProgramSHA[:12])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "runtime %s built: %s (%.1f MiB, trigger %s%s)\n", args[0], dst, float64(len(pkg))/(1<<20), man.Trigger, extra)
			return nil
		},
	}
	buildCmd.Flags().StringVarP(&file, "file", "f", "", "Go main package directory or runtime spec file")
	buildCmd.Flags().StringVarP(&out, "out", "o", "", "write the package here instead of the cache")
	buildCmd.Flags().StringVar(&trigger, "trigger", "", "pub/sub (queue) or https")

	deployCmd := func(use, short string) *cobra.Command {
		c := &cobra.Command{
			Use:   use + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cfg, err := g.loadConfig(rf)
				if err != nil {
					return err
				}
				return deployRuntime(cmd, cfg, args[0])
			},
		}
		c.Flags().IntVarP(&rf.memory, "memory", "m", 0, "instance memory in MB (512, 2048, 4096)")
		c.Flags().IntVarP(&rf.timeout, "timeout", "t", 0, "function timeout in seconds")
		return c
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List deployed runtimes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig(rf)
			if err != nil {
				return err
			}
			dep, err := armDeployer(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			apps, err := dep.List(cmd.Context(), cfg.AzureFunctions.ResourceGroup)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "Runtime Name\tMemory Size\tLithops Version\tWorker Name")
			for _, a := range apps {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", a.RuntimeName, a.MemoryMB, a.Version, a.Name)
			}
			w.Flush()
			fmt.Fprintf(cmd.OutOrStdout(), "Total runtimes: %d\n", len(apps))
			return nil
		},
	}

	del := &cobra.Command{
		Use:   "delete NAME [--memory MB]",
		Short: "Delete a runtime's deployment (at --memory, default the configured size): function app, plan, queues and metadata",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig(rf)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			dep, err := armDeployer(ctx, cfg)
			if err != nil {
				return err
			}
			st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
			if err != nil {
				return err
			}
			defer st.Close()
			svc, err := queueService(ctx, cfg)
			if err != nil {
				return err
			}
			if err := deploy.Delete(ctx, cfg, st, svc, dep, args[0], cfg.AzureFunctions.RuntimeMemory); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "runtime %s deleted\n", args[0])
			return nil
		},
	}
	del.Flags().IntVarP(&rf.memory, "memory", "m", 0, "instance memory in MB of the deployment to delete")
	// Lithops' -v/--version selects the Lithops version of the runtime;
	// lithops-go keeps one runtime per name, so only its own version fits.
	var delVersion string
	del.Flags().StringVarP(&delVersion, "version", "v", "", "lithops version of the runtime to delete (only this lithops' own: "+lithops.Version+")")
	del.PreRunE = func(cmd *cobra.Command, args []string) error {
		if delVersion != "" && delVersion != lithops.Version {
			return fmt.Errorf("runtime delete: no runtime of lithops version %s: this lithops (%s) manages only its own runtimes", delVersion, lithops.Version)
		}
		return nil
	}
	cmd.AddCommand(buildCmd, deployCmd("deploy", "Deploy (or redeploy) a runtime"), deployCmd("update", "Redeploy a runtime in place"), list, del)
}

// deployRuntime deploys NAME from its built package (building the default
// runtime when there is none; any other runtime must have been built).
func deployRuntime(cmd *cobra.Command, cfg *config.Config, name string) error {
	ctx := cmd.Context()
	if err := checkBuilt(name); err != nil {
		return err
	}
	dep, err := armDeployer(ctx, cfg)
	if err != nil {
		return err
	}
	pkg, man, err := loadPackage(ctx, cfg, name)
	if err != nil {
		return err
	}
	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		return err
	}
	defer st.Close()
	svc, err := queueService(ctx, cfg)
	if err != nil {
		return err
	}
	progress := func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), "lithops:", s) }
	meta, err := deploy.Runtime(ctx, cfg, st, svc, dep, name, pkg, man, progress)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "runtime %s deployed: lithops-go %s, protocol %d, %d MB\n", name, meta.LithopsVersion, meta.Version, meta.MemoryMB)
	return nil
}

// checkBuilt fails unless runtime name has a built package in the runtime
// cache or is the default runtime (which deploy builds).
func checkBuilt(name string) error {
	path, err := runtimeCache("azure_functions", name)
	if err != nil {
		return err
	}
	_, err = os.Stat(path)
	if errors.Is(err, os.ErrNotExist) && name != azurefunctions.DefaultRuntime {
		return fmt.Errorf("runtime %s is not built (no package at %s): run `lithops runtime build -b azure_functions -f <Go main package or runtime spec file> %s` first, or deploy the default runtime %s",
			name, path, name, azurefunctions.DefaultRuntime)
	}
	return nil
}

func loadPackage(ctx context.Context, cfg *config.Config, name string) ([]byte, *build.Manifest, error) {
	path, err := runtimeCache("azure_functions", name)
	if err != nil {
		return nil, nil, err
	}
	pkg, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := checkBuilt(name); err != nil {
			return nil, nil, err
		}
		// The default runtime is built here when it was not built before.
		return build.App(ctx, build.Options{
			Runtime: name, Version: lithops.Version, Trigger: cfg.AzureFunctions.Trigger, TimeoutSeconds: cfg.AzureFunctions.RuntimeTimeout,
		})
	}
	if err != nil {
		return nil, nil, err
	}
	man, err := build.ReadManifest(pkg)
	if err != nil {
		return nil, nil, fmt.Errorf("runtime package %s: %w", path, err)
	}
	if man.Version != protocol.LithopsVersion {
		return nil, nil, fmt.Errorf("runtime package %s was built by lithops-go %s; rebuild it with `lithops runtime build`", path, man.Version)
	}
	return pkg, man, nil
}
