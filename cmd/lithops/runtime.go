package main

import (
	"context"
	"fmt"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/compute/azurefunctions"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/deploy"
	"github.com/lithops-go/lithops/internal/azure/naming"
	"github.com/lithops-go/lithops/internal/azure/queues"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/spf13/cobra"
)

func newRuntimeCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "runtime", Short: "Build, deploy and manage runtimes"}
	cmd.AddCommand(newServeCmd(), newRegisterCmd(g))
	addRuntimeManagement(cmd, g)
	return cmd
}

func newServeCmd() *cobra.Command {
	var port string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the runtime host (the Azure Functions custom handler)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return azurefunctions.Serve(cmd.Context(), azurefunctions.ServeOptions{Port: port, OpenStorage: openHostStorage})
		},
	}
	cmd.Flags().StringVar(&port, "port", "", "port to listen on (default $FUNCTIONS_CUSTOMHANDLER_PORT)")
	return cmd
}

// openHostStorage opens the runtime host's storage.
func openHostStorage(ctx context.Context, cfg *config.Config) (*storage.Storage, error) {
	return lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
}

// newRegisterCmd registers a function app that runs the lithops runtime
// host but was deployed by other means (Bicep, Terraform, the portal, an
// earlier CLI): no Resource Manager access is needed, only storage. The
// runtime is probed through its trigger queue; its answer becomes the
// runtime's metadata, which is what clients look up.
func newRegisterCmd(g *globalFlags) *cobra.Command {
	var queue string
	var memory int
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "register NAME [--queue QUEUE] [--memory MB]",
		Short: "Register a function app deployed by other means as runtime NAME (probes it through its queue; no ARM needed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rf := &runtimeFlags{memory: memory}
			rf.backend, _ = cmd.Flags().GetString("backend")
			rf.storage, _ = cmd.Flags().GetString("storage")
			cfg, err := g.loadConfig(rf)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			name := args[0]
			mem := cfg.AzureFunctions.RuntimeMemory
			names := naming.Runtime(naming.Account(cfg.AzureStorage), name, mem, protocol.LithopsVersion)
			if queue != "" {
				names.Queue = queue
			}
			st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
			if err != nil {
				return err
			}
			defer st.Close()
			svc, err := queues.NewService(cfg.AzureStorage)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "lithops: probing runtime %s through queue %s (up to %v)\n", name, names.Queue, wait)
			meta, err := deploy.Probe(ctx, st, svc, names, name, mem, wait)
			if err != nil {
				return fmt.Errorf("register %s: %w (the app's LITHOPS_QUEUE setting names its queue: pass it with --queue)", name, err)
			}
			if meta.Version != protocol.Version {
				return fmt.Errorf("register %s: the app runs lithops-go %s (protocol %d) but this CLI speaks protocol %d: redeploy it with `lithops runtime deploy`", name, meta.LithopsVersion, meta.Version, protocol.Version)
			}
			if meta.MemoryMB != 0 && meta.MemoryMB != mem {
				return fmt.Errorf("register %s: the app reports %d MB instances but was registered as %d MB: pass --memory %d", name, meta.MemoryMB, mem, meta.MemoryMB)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "runtime %s registered: lithops-go %s, protocol %d, %d MB, queue %s\n", name, meta.LithopsVersion, meta.Version, mem, meta.Queue)
			return nil
		},
	}
	cmd.Flags().StringVar(&queue, "queue", "", "the app's trigger queue (its LITHOPS_QUEUE setting; default: the name lithops would give it)")
	cmd.Flags().IntVarP(&memory, "memory", "m", 0, "instance memory in MB of the app (default: azure_functions.runtime_memory)")
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for the app to answer")
	return cmd
}
