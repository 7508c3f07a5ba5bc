// Command lithops is the lithops-go command line: run a self-check (hello),
// show the configuration, move data in and out of storage, and (on cloud
// backends) build and deploy runtimes. Its verbs and flags follow Lithops'.
//
// The binary is also its own worker: on the localhost backend the calls of
// `lithops hello` run in worker processes of this same program.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/lithops-go/lithops"
	_ "github.com/lithops-go/lithops/azure" // the CLI links every backend
	"github.com/spf13/cobra"
)

func main() {
	lithops.Main(func(ctx context.Context) error {
		cmd := newRootCmd()
		cmd.SetContext(ctx)
		if err := cmd.ExecuteContext(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "lithops:", err)
			os.Exit(1)
		}
		return nil
	})
}

// globalFlags are the options every command shares.
type globalFlags struct {
	config  string
	backend string
	storage string
	region  string
	debug   bool
}

func (g *globalFlags) options() []lithops.Option {
	var opts []lithops.Option
	if g.config != "" {
		opts = append(opts, lithops.WithConfigFile(g.config))
	}
	if g.backend != "" {
		opts = append(opts, lithops.WithBackend(g.backend))
	}
	if g.storage != "" {
		opts = append(opts, lithops.WithStorage(g.storage))
	}
	if g.region != "" {
		opts = append(opts, lithops.WithRegion(g.region))
	}
	if g.debug {
		opts = append(opts, lithops.WithLogger(debugLogger()))
	}
	return opts
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "lithops",
		Short:         "Run Go functions at massive parallelism on serverless platforms",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       lithops.Version,
	}
	// --version prints what `lithops version` prints.
	root.SetVersionTemplate(versionLine() + "\n")
	root.PersistentFlags().StringVarP(&g.config, "config", "c", "", "path to the config file")
	root.PersistentFlags().BoolVarP(&g.debug, "debug", "d", false, "debug logging")
	root.PersistentFlags().StringVarP(&g.region, "region", "r", "", "compute backend region (azure_functions.region)")
	root.AddCommand(newHelloCmd(g), newVersionCmd(), newConfigCmd(g), newStorageCmd(g), newRuntimeCmd(g), newCleanCmd(g), newJobsCmd(g), newTestCmd(g), newDoctorCmd(g), newLogsCmd(g))
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every command group (a command that only
// holds subcommands) fail on an unknown subcommand, with suggestions, where
// cobra would print help and exit 0; a group named alone prints its help.
func refuseUnknownSubcommands(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		refuseUnknownSubcommands(c)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.SuggestionsMinimumDistance = 2
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return fmt.Errorf("%s (see %s --help)", msg, c.CommandPath())
	}
	cmd.RunE = func(c *cobra.Command, args []string) error { return c.Help() }
}

// versionLine is the one version line of the CLI.
func versionLine() string {
	return fmt.Sprintf("lithops-go %s (protocol %d)", lithops.Version, lithops.ProtocolVersion)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the lithops-go version and protocol version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(cmd.OutOrStdout(), versionLine())
		},
	}
}
