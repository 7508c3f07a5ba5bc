package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/storage"
	"github.com/spf13/cobra"
)

// withStorage makes a command's RunE that opens storage with open, runs fn
// and closes the storage.
func withStorage(open func(context.Context) (*storage.Storage, error), fn func(ctx context.Context, cmd *cobra.Command, st *storage.Storage, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		st, err := open(ctx)
		if err != nil {
			return err
		}
		defer st.Close()
		return fn(ctx, cmd, st, args)
	}
}

func newStorageCmd(g *globalFlags) *cobra.Command {
	var backend string
	open := func(ctx context.Context) (*storage.Storage, error) {
		opts := g.options()
		if backend != "" {
			opts = append(opts, lithops.WithStorage(backend))
		}
		return lithops.OpenStorage(ctx, opts...)
	}
	cmd := &cobra.Command{Use: "storage", Short: "Put, get, list and delete objects in storage"}
	cmd.PersistentFlags().StringVarP(&backend, "backend", "b", "", "storage backend (default: the configured one)")

	var key string
	put := &cobra.Command{
		Use:   "put FILENAME BUCKET",
		Short: "Upload a file (key: --key or the file's name)",
		Args:  cobra.ExactArgs(2),
		RunE: withStorage(open, func(ctx context.Context, cmd *cobra.Command, st *storage.Storage, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			k := key
			if k == "" {
				k = filepath.Base(args[0])
			}
			if err := st.Put(ctx, args[1], k, f); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "uploaded %s to %s://%s/%s\n", args[0], st.Backend(), args[1], k)
			return nil
		}),
	}
	put.Flags().StringVarP(&key, "key", "k", "", "object key")

	var out string
	get := &cobra.Command{
		Use:   "get BUCKET KEY",
		Short: "Download an object (to --out, or stdout with -o -)",
		Args:  cobra.ExactArgs(2),
		RunE: withStorage(open, func(ctx context.Context, cmd *cobra.Command, st *storage.Storage, args []string) error {
			rc, err := st.Get(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			defer rc.Close()
			dst := out
			if dst == "" {
				dst = filepath.Base(args[1])
			}
			if dst == "-" {
				_, err = io.Copy(cmd.OutOrStdout(), rc)
				return err
			}
			f, err := os.Create(dst)
			if err != nil {
				return err
			}
			n, err := io.Copy(f, rc)
			if err != nil {
				f.Close()
				os.Remove(dst)
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "downloaded %s://%s/%s to %s (%s)\n", st.Backend(), args[0], args[1], dst, sizeFmt(n))
			return nil
		}),
	}
	get.Flags().StringVarP(&out, "out", "o", "", "output file ('-' for stdout)")

	var prefix string
	list := &cobra.Command{
		Use:   "list BUCKET",
		Short: "List objects (optionally under --prefix)",
		Args:  cobra.ExactArgs(1),
		RunE: withStorage(open, func(ctx context.Context, cmd *cobra.Command, st *storage.Storage, args []string) error {
			infos, err := st.List(ctx, args[0], prefix)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "Key\tLastModified\tSize")
			for _, o := range infos {
				fmt.Fprintf(w, "%s\t%s\t%s\n", o.Key, o.ModTime.UTC().Format("2006-01-02 15:04:05"), sizeFmt(o.Size))
			}
			w.Flush()
			fmt.Fprintf(cmd.OutOrStdout(), "Total objects: %d\n", len(infos))
			return nil
		}),
	}
	list.Flags().StringVarP(&prefix, "prefix", "p", "", "key prefix")

	var delPrefix string
	del := &cobra.Command{
		Use:   "delete BUCKET [KEY...]",
		Short: "Delete keys, or every key under --prefix",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(args) == 1 && !cmd.Flags().Changed("prefix") {
				return fmt.Errorf("name the keys to delete, or --prefix (use --prefix '' to empty the bucket)")
			}
			st, err := open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			// Count what exists: Delete does not fail on a missing key, and
			// the report must say what was removed, not what was asked for.
			var keys, missing []string
			for _, k := range args[1:] {
				if _, err := st.Head(ctx, args[0], k); errors.Is(err, storage.ErrNotFound) {
					missing = append(missing, k)
				} else if err != nil {
					return err
				} else {
					keys = append(keys, k)
				}
			}
			n := len(keys)
			if err := st.Delete(ctx, args[0], keys...); err != nil {
				return err
			}
			if len(missing) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "lithops: not found (nothing deleted): %s\n", strings.Join(missing, ", "))
			}
			if cmd.Flags().Changed("prefix") {
				m, err := st.DeletePrefix(ctx, args[0], delPrefix)
				if err != nil {
					return err
				}
				n += m
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %d object(s)\n", n)
			return nil
		},
	}
	del.Flags().StringVarP(&delPrefix, "prefix", "p", "", "delete every key with this prefix")

	mk := &cobra.Command{
		Use:   "mkbucket BUCKET",
		Short: "Create a bucket (an Azure container)",
		Args:  cobra.ExactArgs(1),
		RunE: withStorage(open, func(ctx context.Context, cmd *cobra.Command, st *storage.Storage, args []string) error {
			if err := st.CreateBucket(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bucket %s://%s ready\n", st.Backend(), args[0])
			return nil
		}),
	}
	cmd.AddCommand(put, get, list, del, mk)
	return cmd
}

func sizeFmt(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
