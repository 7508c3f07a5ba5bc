package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/spf13/cobra"
)

// hello is the function `lithops hello` runs remotely.
var hello = lithops.Func("lithops_hello", func(ctx context.Context, name string) (string, error) {
	return fmt.Sprintf("Hello %s!", name), nil
})

func userName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "lithops"
}

func newHelloCmd(g *globalFlags) *cobra.Command {
	var n int
	cmd := &cobra.Command{
		Use:   "hello",
		Short: "Run a hello-world function on the configured backend",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if n < 1 {
				return fmt.Errorf("--map must be ≥ 1, got %d", n)
			}
			ctx := cmd.Context()
			opts := g.options()
			start := time.Now()
			fexec, err := lithops.NewExecutor(ctx, opts...)
			if err != nil {
				return err
			}
			defer fexec.Close()
			name := userName()
			names := make([]string, n)
			for i := range names {
				names[i] = name
			}
			fs, err := lithops.Map(ctx, fexec, hello, names)
			if err != nil {
				return err
			}
			got, err := fs.Results(ctx)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "Something went wrong :(")
				return err
			}
			want := fmt.Sprintf("Hello %s!", name)
			for _, g := range got {
				if g != want {
					fmt.Fprintln(cmd.ErrOrStderr(), "Something went wrong :(")
					return fmt.Errorf("got %q, want %q", g, want)
				}
			}
			cfg := fexec.Config()
			fmt.Fprintf(cmd.OutOrStdout(), "%s Lithops is working as expected :) (backend: %s, storage: %s, %d call(s) in %v)\n",
				got[0], cfg.Lithops.Backend, cfg.Lithops.Storage, n, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVarP(&g.backend, "backend", "b", "", "compute backend")
	cmd.Flags().StringVarP(&g.storage, "storage", "s", "", "storage backend")
	cmd.Flags().IntVarP(&n, "map", "m", 1, "run the greeting as a map of N calls")
	return cmd
}
