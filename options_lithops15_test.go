package lithops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
)

// envOf returns the values of the variables its input names, "<unset>" for
// those not set.
var envOf = lithops.Func("lithops15_env_of", func(ctx context.Context, names []string) ([]string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		v, ok := os.LookupEnv(n)
		if !ok {
			v = "<unset>"
		}
		out[i] = v
	}
	return out, nil
})

// records reads its chunk and returns its records, delimited by the
// chunk's delimiter (all bytes for exact chunks).
var records = lithops.Func("lithops15_records", func(ctx context.Context, c lithops.ObjectChunk) ([]string, error) {
	r, err := c.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if c.Exact {
		return []string{string(b)}, nil
	}
	d := c.Newline
	if d == "" {
		d = "\n"
	}
	var out []string
	for _, rec := range strings.SplitAfter(string(b), d) {
		if rec != "" {
			out = append(out, rec)
		}
	}
	return out, nil
})

type opaque struct{ N int }

// anyOut returns a value of a type never registered with gob in an any.
var anyOut = lithops.Func("lithops15_any_out", func(ctx context.Context, n int) (any, error) {
	return opaque{n}, nil
})

var anyIn = lithops.Func("lithops15_any_in", func(ctx context.Context, v any) (int, error) { return 1, nil })

type shapeSquare struct{ Side int }

func (s shapeSquare) String() string { return fmt.Sprint("square ", s.Side) }

type shapeCircle struct{ R int }

func (c shapeCircle) String() string { return fmt.Sprint("circle ", c.R) }

type shapeUndeclared struct{ X int }

// declaredOut returns the types it declares, except for 0.
var declaredOut = lithops.Func("lithops15_declared_out", func(ctx context.Context, n int) (any, error) {
	switch {
	case n > 0:
		return shapeSquare{n}, nil
	case n < 0:
		return shapeCircle{-n}, nil
	}
	return shapeUndeclared{}, nil
}, lithops.Returns(shapeSquare{}, shapeCircle{}))

var stringers = lithops.Func("lithops15_stringers", func(ctx context.Context, n int) ([]fmt.Stringer, error) {
	return []fmt.Stringer{shapeSquare{n}, shapeCircle{n}}, nil
}, lithops.Returns(shapeSquare{}, shapeCircle{}))

// wrongStringers declares a type that is not a fmt.Stringer.
var wrongStringers = lithops.Func("lithops15_wrong_stringers", func(ctx context.Context, n int) ([]fmt.Stringer, error) {
	return nil, nil
}, lithops.Returns(0))

var nestedAnyOut = lithops.Func("lithops15_nested_any_out", func(ctx context.Context, n int) (struct{ Vals map[string]any }, error) {
	return struct{ Vals map[string]any }{}, nil
})

var anySum = lithops.Func("lithops15_any_sum", func(ctx context.Context, xs []any) (any, error) { return len(xs), nil })

// storages are the two storages the options are tested on: localhost, and
// Azurite when it runs.
func storages(t *testing.T) map[string]func(t *testing.T) *config.Config {
	return map[string]func(t *testing.T) *config.Config{
		"localhost": func(t *testing.T) *config.Config {
			cfg := config.Default()
			cfg.Localhost.StorageRoot = t.TempDir()
			return cfg
		},
		"azurite": azuriteConfig,
	}
}

func execWith(t *testing.T, cfg *config.Config, opts ...lithops.Option) *lithops.Executor {
	t.Helper()
	e, err := lithops.NewExecutor(context.Background(), append([]lithops.Option{lithops.WithConfig(cfg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// TestWithExtraEnv: a job's extra_env reaches its functions in the worker
// processes, and only that job's.
func TestWithExtraEnv(t *testing.T) {
	for name, cfgOf := range storages(t) {
		t.Run(name, func(t *testing.T) {
			ctx := ctxT(t)
			e := execWith(t, cfgOf(t), lithops.WithMaxWorkers(1))
			names := []string{"LITHOPS15_A", "LITHOPS15_B", "HOME"}
			fs, err := lithops.Map(ctx, e, envOf, [][]string{names, names},
				lithops.WithExtraEnv(map[string]string{"LITHOPS15_A": "a=1", "LITHOPS15_B": ""}),
				lithops.WithExtraEnv(map[string]string{"HOME": "/nowhere"}))
			if err != nil {
				t.Fatal(err)
			}
			got, err := fs.Results(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range got {
				if fmt.Sprint(g) != "[a=1  /nowhere]" {
					t.Errorf("with extra_env: %q", g)
				}
			}
			// The next job (same worker process) runs without them.
			f, err := lithops.CallAsync(ctx, e, envOf, names)
			if err != nil {
				t.Fatal(err)
			}
			v, err := f.Result(ctx)
			if err != nil || v[0] != "<unset>" || v[1] != "<unset>" || v[2] == "/nowhere" {
				t.Errorf("without extra_env: %q, %v", v, err)
			}
		})
	}
}

func TestWithExtraEnvRefused(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	for _, env := range []map[string]string{{"": "x"}, {"A=B": "x"}, {"LITHOPS_WORKER": "x"}} {
		if _, err := lithops.CallAsync(ctx, e, envOf, nil, lithops.WithExtraEnv(env)); err == nil {
			t.Errorf("extra_env %v accepted", env)
		}
	}
	inproc, err := lithops.NewExecutor(ctx, lithops.InProcess())
	if err != nil {
		t.Fatal(err)
	}
	defer inproc.Close()
	if _, err := lithops.CallAsync(ctx, inproc, envOf, nil, lithops.WithExtraEnv(map[string]string{"A": "1"})); err == nil || !strings.Contains(err.Error(), "inprocess") {
		t.Errorf("inprocess with extra_env: %v", err)
	}
}

// TestWithChunkSize: a map's chunksize is recorded in its manifest (where
// the backend reads it) and refused when negative.
func TestWithChunkSize(t *testing.T) {
	for name, cfgOf := range storages(t) {
		t.Run(name, func(t *testing.T) {
			ctx := ctxT(t)
			e := execWith(t, cfgOf(t))
			fs, err := lithops.Map(ctx, e, sumPair, pairs, lithops.WithChunkSize(3))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := fs.Results(ctx); err != nil || fmt.Sprint(got) != "[2 4 6 8]" {
				t.Fatalf("map: %v, %v", got, err)
			}
			raw, err := e.Storage().GetBytes(ctx, e.Storage().Bucket(), protocol.JobKey(e.ID(), fs.At(0).JobID()))
			if err != nil {
				t.Fatal(err)
			}
			var job protocol.Job
			if err := json.Unmarshal(raw, &job); err != nil || job.Chunksize != 3 {
				t.Errorf("manifest chunksize %d, %v", job.Chunksize, err)
			}
			if _, err := lithops.Map(ctx, e, sumPair, pairs, lithops.WithChunkSize(-1)); err == nil {
				t.Error("chunksize -1 accepted")
			}
		})
	}
}

// TestObjNewline: Partition with another record delimiter splits no record
// and reads every record once; ObjNewline("") reads exact byte ranges.
func TestObjNewline(t *testing.T) {
	var data bytes.Buffer
	var want []string
	for i := range 200 {
		rec := fmt.Sprintf("record %d with some text\nand a newline inside;", i)
		want = append(want, rec)
		data.WriteString(rec)
	}
	for name, cfgOf := range storages(t) {
		t.Run(name, func(t *testing.T) {
			ctx := ctxT(t)
			e := execWith(t, cfgOf(t))
			st := e.Storage()
			if err := st.PutBytes(ctx, st.Bucket(), "lithops15/records.txt", data.Bytes()); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name string
				opt  lithops.PartitionOption
				want []string
			}{
				{"semicolon", lithops.ObjNewline(";"), want},
				{"exact", lithops.ObjNewline(""), []string{data.String()}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					chunks, err := e.Partition(ctx, []string{st.Bucket() + "/lithops15/records.txt"}, lithops.ChunkSize(1000), tc.opt)
					if err != nil {
						t.Fatal(err)
					}
					if len(chunks) < 5 {
						t.Fatalf("%d chunks", len(chunks))
					}
					fs, err := lithops.Map(ctx, e, records, chunks)
					if err != nil {
						t.Fatal(err)
					}
					parts, err := fs.Results(ctx)
					if err != nil {
						t.Fatal(err)
					}
					got := slices.Concat(parts...)
					if tc.name == "exact" {
						got = []string{strings.Join(got, "")}
					}
					if !slices.Equal(got, tc.want) {
						t.Errorf("got %d records, want %d; first %q", len(got), len(tc.want), got[:min(2, len(got))])
					}
				})
			}
			if _, err := e.Partition(ctx, []string{st.Bucket() + "/lithops15/records.txt"}, lithops.ObjNewline("\r\n")); err == nil {
				t.Error("a two-byte delimiter accepted")
			}
		})
	}
}

// TestMemoryEscalationAlone: WithMemoryEscalation without WithRetries
// escalates (it implies lithops.EscalationRetries); with WithRetries(0) it
// is an error.
func TestMemoryEscalationAlone(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector inflates the workers' memory past the 512 MiB step")
	}
	ctx := ctxT(t)
	e := newExecutor(t, lithops.WithMaxWorkers(1))
	f, err := lithops.CallAsync(ctx, e, misbehave, "hog", lithops.WithMemory(128), lithops.WithMemoryEscalation())
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(ctx); err != nil || v != fmt.Sprint(400<<20) {
		t.Fatalf("got %q, %v", v, err)
	}
	if s, _ := f.Stats(); s.Attempt != lithops.EscalationRetries {
		t.Fatalf("succeeded on attempt %d, want %d (128 → 256 → 512 MiB)", s.Attempt, lithops.EscalationRetries)
	}
	if _, err := lithops.CallAsync(ctx, e, misbehave, "hog", lithops.WithRetries(0), lithops.WithMemoryEscalation()); err == nil {
		t.Error("WithRetries(0) with WithMemoryEscalation accepted")
	}
}

// TestGobInterfaceHint: an any-typed input gob cannot carry fails on the
// client before submission, and so does a function whose result holds an
// interface and that declares no type for it (lithops.Returns); a declared
// type travels, an undeclared one fails on the worker with the fix.
func TestGobInterfaceHint(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	nothingSubmitted := func(t *testing.T) {
		t.Helper()
		if infos, _ := e.Storage().List(ctx, e.Storage().Bucket(), "lithops.jobs/"+e.ID()+"/"); len(infos) != 0 {
			t.Errorf("a job was submitted: %d objects", len(infos))
		}
	}
	_, err := lithops.CallAsync(ctx, e, anyIn, any(opaque{1}))
	if err == nil || !strings.Contains(err.Error(), "gob.Register") || !strings.Contains(err.Error(), "JSONCodec") {
		t.Errorf("input: %v", err)
	}
	nothingSubmitted(t)

	const fix = "lithops.Returns"
	refused := map[string]func() error{
		"CallAsync": func() error { _, err := lithops.CallAsync(ctx, e, anyOut, 1); return err },
		"Map":       func() error { _, err := lithops.Map(ctx, e, anyOut, []int{1, 2}); return err },
		"nested":    func() error { _, err := lithops.Map(ctx, e, nestedAnyOut, []int{1}); return err },
		"unimplemented interface": func() error {
			_, err := lithops.Map(ctx, e, wrongStringers, []int{1})
			return err
		},
		"MapReduce reducer": func() error {
			_, err := lithops.MapReduce(ctx, e, declaredOut, []int{1}, anySum)
			return err
		},
	}
	for name, submit := range refused {
		err := submit()
		if err == nil || !strings.Contains(err.Error(), fix) || !strings.Contains(err.Error(), "JSONCodec") {
			t.Errorf("%s: %v", name, err)
		}
	}
	nothingSubmitted(t)
	up, err := lithops.CallAsync(ctx, e, chainDouble, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lithops.Then(ctx, e, up, anyOut); err == nil || !strings.Contains(err.Error(), fix) {
		t.Errorf("Then: %v", err)
	}

	// Declared types travel, through an any and through a []fmt.Stringer.
	fs, err := lithops.Map(ctx, e, declaredOut, []int{1, -1})
	if err != nil {
		t.Fatal(err)
	}
	got, err := fs.Results(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != (shapeSquare{1}) || got[1] != (shapeCircle{1}) {
		t.Errorf("declared: %#v", got)
	}
	sf, err := lithops.CallAsync(ctx, e, stringers, 3)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := sf.Result(ctx); err != nil || fmt.Sprint(v) != "[square 3 circle 3]" {
		t.Errorf("stringers: %v, %v", v, err)
	}
	// A type the function did not declare fails on the worker, with the fix.
	f, err := lithops.CallAsync(ctx, e, declaredOut, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = f.Result(ctx); err == nil || !strings.Contains(err.Error(), fix) || errors.Is(err, lithops.ErrUser) {
		t.Errorf("undeclared type: %v", err)
	}

	// The JSON codec carries an any without a declaration.
	ej := newExecutor(t, lithops.WithCodec(lithops.JSONCodec))
	f, err = lithops.CallAsync(ctx, ej, anyOut, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(ctx); err != nil || fmt.Sprint(v) != "map[N:1]" {
		t.Errorf("json: %v, %v", v, err)
	}
}
