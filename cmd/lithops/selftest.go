package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/storage"
	"github.com/spf13/cobra"
)

// Functions of `lithops test`. They run in the workers of the configured
// backend, so they are registered at package level like any user function.
var (
	selftestAdd = lithops.Func("lithops_selftest_add", func(ctx context.Context, p [2]int) (int, error) {
		return p[0] + p[1], nil
	})
	selftestSum = lithops.Func("lithops_selftest_sum", func(ctx context.Context, xs []int) (int, error) {
		n := 0
		for _, x := range xs {
			n += x
		}
		return n, nil
	})
	selftestFail = lithops.Func("lithops_selftest_fail", func(ctx context.Context, msg string) (string, error) {
		return "", errors.New(msg)
	})
	// selftestEcho reads the object at key from the executor's storage and
	// writes it back, reversed, at key + ".reply".
	selftestEcho = lithops.Func("lithops_selftest_echo", func(ctx context.Context, key string) (int, error) {
		st := lithops.StorageFrom(ctx)
		if st == nil {
			return 0, errors.New("no storage in the function's context")
		}
		b, err := st.GetBytes(ctx, st.Bucket(), key)
		if err != nil {
			return 0, err
		}
		slices.Reverse(b)
		return len(b), st.PutBytes(ctx, st.Bucket(), key+".reply", b)
	})
)

// selfCheck is one check of `lithops test`: it returns a detail for the
// PASS line, or an error for the FAIL line.
type selfCheck struct {
	name  string
	group string // Lithops' test module it stands for (-g)
	doc   string
	run   func(ctx context.Context, e *lithops.Executor) (string, error)
}

func selfChecks() []selfCheck {
	return []selfCheck{
		{"call", "call_async", "CallAsync of one function, its result", checkCall},
		{"map", "map", "Map over 20 inputs, results in input order", checkMap},
		{"map_reduce", "map_reduce", "MapReduce: 20 map calls and one reducer", checkMapReduce},
		{"storage", "storage", "storage round trip: client put, function get and put, client get and delete", checkStorage},
		{"error", "call_async", "a function's error comes back as a *CallError matching ErrUser", checkError},
	}
}

func checkCall(ctx context.Context, e *lithops.Executor) (string, error) {
	f, err := lithops.CallAsync(ctx, e, selftestAdd, [2]int{3, 4})
	if err != nil {
		return "", err
	}
	v, err := f.Result(ctx)
	if err != nil {
		return "", err
	}
	if v != 7 {
		return "", fmt.Errorf("3 + 4 came back as %d", v)
	}
	return "3 + 4 = 7", nil
}

func pairs(n int) [][2]int {
	in := make([][2]int, n)
	for i := range in {
		in[i] = [2]int{i, i * 10}
	}
	return in
}

func checkMap(ctx context.Context, e *lithops.Executor) (string, error) {
	in := pairs(20)
	fs, err := lithops.Map(ctx, e, selftestAdd, in)
	if err != nil {
		return "", err
	}
	got, err := fs.Results(ctx)
	if err != nil {
		return "", err
	}
	for i, v := range got {
		if v != in[i][0]+in[i][1] {
			return "", fmt.Errorf("result %d is %d, want %d", i, v, in[i][0]+in[i][1])
		}
	}
	return fmt.Sprintf("%d calls, results in input order", len(got)), nil
}

func checkMapReduce(ctx context.Context, e *lithops.Executor) (string, error) {
	in := pairs(20)
	want := 0
	for _, p := range in {
		want += p[0] + p[1]
	}
	f, err := lithops.MapReduce(ctx, e, selftestAdd, in, selftestSum)
	if err != nil {
		return "", err
	}
	v, err := f.Result(ctx)
	if err != nil {
		return "", err
	}
	if v != want {
		return "", fmt.Errorf("reduced to %d, want %d", v, want)
	}
	return fmt.Sprintf("%d map calls reduced to %d", len(in), v), nil
}

func checkStorage(ctx context.Context, e *lithops.Executor) (string, error) {
	st := e.Storage()
	nonce := make([]byte, 6)
	rand.Read(nonce)
	key := "lithops.selftest/" + hex.EncodeToString(nonce)
	payload := []byte("lithops self-test " + key)
	if err := st.PutBytes(ctx, st.Bucket(), key, payload); err != nil {
		return "", fmt.Errorf("client put: %w", err)
	}
	defer st.Delete(context.WithoutCancel(ctx), st.Bucket(), key, key+".reply")
	f, err := lithops.CallAsync(ctx, e, selftestEcho, key)
	if err != nil {
		return "", err
	}
	if _, err := f.Result(ctx); err != nil {
		return "", fmt.Errorf("function get and put: %w", err)
	}
	got, err := st.GetBytes(ctx, st.Bucket(), key+".reply")
	if err != nil {
		return "", fmt.Errorf("client get: %w", err)
	}
	slices.Reverse(got)
	if !bytes.Equal(got, payload) {
		return "", fmt.Errorf("the function's object differs from what it read")
	}
	if err := st.Delete(ctx, st.Bucket(), key, key+".reply"); err != nil {
		return "", fmt.Errorf("client delete: %w", err)
	}
	if _, err := st.Head(ctx, st.Bucket(), key); !errors.Is(err, storage.ErrNotFound) {
		return "", fmt.Errorf("object still there after delete (head: %v)", err)
	}
	return fmt.Sprintf("%s://%s/%s", st.Backend(), st.Bucket(), key), nil
}

func checkError(ctx context.Context, e *lithops.Executor) (string, error) {
	const msg = "lithops self-test error"
	f, err := lithops.CallAsync(ctx, e, selftestFail, msg)
	if err != nil {
		return "", err
	}
	_, err = f.Result(ctx)
	var ce *lithops.CallError
	switch {
	case err == nil:
		return "", errors.New("a failing function succeeded")
	case !errors.As(err, &ce):
		return "", fmt.Errorf("error is %T, not a *lithops.CallError: %w", err, err)
	case !errors.Is(err, lithops.ErrUser) || ce.Message != msg || ce.Job == "" || ce.Call == "":
		return "", fmt.Errorf("error does not carry the function's error: kind %s, job %q, call %q, message %q", ce.Kind, ce.Job, ce.Call, ce.Message)
	}
	return fmt.Sprintf("%q from %s/%s call %s", ce.Message, ce.Executor, ce.Job, ce.Call), nil
}

// reporter prints one aligned line per check and counts the outcomes.
type reporter struct {
	w                io.Writer
	pass, fail, skip int
}

func (r *reporter) line(status, name string, d time.Duration, detail string) {
	switch status {
	case "PASS":
		r.pass++
	case "FAIL":
		r.fail++
	default:
		r.skip++
	}
	took := ""
	switch {
	case d >= time.Millisecond:
		took = d.Round(time.Millisecond).String()
	case d > 0:
		took = d.Round(time.Microsecond).String()
	}
	fmt.Fprintf(r.w, "%-4s  %-12s %8s  %s\n", status, name, took, detail)
}

// total prints the closing line: "N passed, N failed[, N skipped]".
func (r *reporter) total() {
	fmt.Fprintf(r.w, "%d passed, %d failed", r.pass, r.fail)
	if r.skip > 0 {
		fmt.Fprintf(r.w, ", %d skipped", r.skip)
	}
	fmt.Fprintln(r.w)
}

// runSelfTest runs checks on e and returns an error when one failed.
func runSelfTest(ctx context.Context, w io.Writer, e *lithops.Executor, checks []selfCheck, exitFirst bool) error {
	r := &reporter{w: w}
	for _, c := range checks {
		start := time.Now()
		detail, err := c.run(ctx, e)
		if err != nil {
			r.line("FAIL", c.name, time.Since(start), oneLine(err.Error()))
			if exitFirst || ctx.Err() != nil {
				break
			}
			continue
		}
		r.line("PASS", c.name, time.Since(start), detail)
	}
	r.total()
	if r.fail > 0 {
		return fmt.Errorf("self-test: %d of %d checks failed", r.fail, r.fail+r.pass)
	}
	return nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func newTestCmd(g *globalFlags) *cobra.Command {
	var (
		names     []string
		groups    []string
		exitFirst bool
		failFast  bool
		keep      bool
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Run a self-check suite on the configured backend and storage",
		Long: "Run the self-check suite on the configured compute backend and storage: one call, a map,\n" +
			"a map-reduce, a storage round trip through a function, and error propagation. One PASS or\n" +
			"FAIL line per check, with its time; the exit status is non-zero when a check fails.\n" +
			"-t help lists the checks.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			checks := selfChecks()
			if slices.Contains(names, "help") || slices.Contains(groups, "help") {
				for _, c := range checks {
					fmt.Fprintf(cmd.OutOrStdout(), "%-12s %-12s %s\n", c.name, c.group, c.doc)
				}
				return nil
			}
			if len(groups) > 0 {
				var picked []selfCheck
				for _, gr := range groups {
					n := len(picked)
					for _, c := range checks {
						if c.group == gr && !slices.ContainsFunc(picked, func(p selfCheck) bool { return p.name == c.name }) {
							picked = append(picked, c)
						}
					}
					if len(picked) == n {
						return fmt.Errorf("unknown test group %q (lithops test -g help lists them)", gr)
					}
				}
				checks = picked
			}
			if len(names) > 0 {
				var picked []selfCheck
				for _, n := range names {
					i := slices.IndexFunc(checks, func(c selfCheck) bool { return c.name == n })
					if i < 0 {
						return fmt.Errorf("unknown test %q (lithops test -t help lists them)", n)
					}
					picked = append(picked, checks[i])
				}
				checks = picked
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			opts := g.options()
			if keep {
				cfg, err := config.Load(g.config)
				if err != nil {
					return err
				}
				off := false
				cfg.Lithops.DataCleaner = &off
				opts = append(opts, lithops.WithConfig(cfg))
			}
			if g.debug {
				opts = append(opts, lithops.WithLogger(debugLogger()))
			}
			start := time.Now()
			e, err := lithops.NewExecutor(ctx, opts...)
			if err != nil {
				r := &reporter{w: cmd.OutOrStdout()}
				r.line("FAIL", "executor", time.Since(start), oneLine(err.Error()))
				r.total()
				return fmt.Errorf("self-test: cannot create an executor: %w", err)
			}
			defer e.Close()
			cfg := e.Config()
			fmt.Fprintf(cmd.OutOrStdout(), "lithops-go %s self-test: backend %s, storage %s://%s, executor %s\n",
				lithops.Version, cfg.Lithops.Backend, e.Storage().Backend(), e.Storage().Bucket(), e.ID())
			if keep {
				fmt.Fprintf(cmd.OutOrStdout(), "keeping the test's job records under %s://%s/lithops.jobs/%s/\n", e.Storage().Backend(), e.Storage().Bucket(), e.ID())
			}
			return runSelfTest(ctx, cmd.OutOrStdout(), e, checks, exitFirst || failFast)
		},
	}
	cmd.Flags().StringVarP(&g.backend, "backend", "b", "", "compute backend")
	cmd.Flags().StringVarP(&g.storage, "storage", "s", "", "storage backend")
	cmd.Flags().StringSliceVarP(&names, "test", "t", nil, "run only these checks (comma-separated; help lists them)")
	cmd.Flags().BoolVarP(&exitFirst, "exitfirst", "x", false, "stop at the first failed check")
	cmd.Flags().BoolVarP(&failFast, "fail_fast", "f", false, "stop at the first failed check (Lithops' spelling of -x)")
	cmd.Flags().StringSliceVarP(&groups, "groups", "g", nil, "run the checks of these groups (comma-separated; help lists them)")
	cmd.Flags().BoolVarP(&keep, "keep_datasets", "k", false, "keep the test's job records in storage after the run")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "time limit for the whole suite")
	return cmd
}
