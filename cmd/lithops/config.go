package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/lithops-go/lithops/config"
	"github.com/spf13/cobra"
)

func debugLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newConfigCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the resolved configuration, secrets masked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(g.config)
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			src := cfg.Source
			if src == "" {
				src = "(none: embedded localhost defaults)"
			}
			y, err := cfg.Masked().YAML()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "# config file: %s\n%s", src, y)
			return nil
		},
	}
	cmd.AddCommand(show)
	return cmd
}
