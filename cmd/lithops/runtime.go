package main

import (
	"context"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/compute/azurefunctions"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/storage"
	"github.com/spf13/cobra"
)

func newRuntimeCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "runtime", Short: "Build, deploy and manage runtimes"}
	cmd.AddCommand(newServeCmd())
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
