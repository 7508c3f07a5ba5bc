package lithops

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
)

// preparingExecutor returns a localhost executor of cfg over a storage root
// of its own, and a function that says whether the directory of one of its
// jobs ("": the executor's) exists.
func preparingExecutor(t *testing.T, cfg *config.Config) (*Executor, func(job string) bool) {
	t.Helper()
	cfg.Localhost.StorageRoot = t.TempDir()
	e, err := NewExecutor(context.Background(), WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	dir := filepath.Join(cfg.Localhost.StorageRoot, e.Storage().Bucket(), "lithops.jobs", e.ID())
	return e, func(job string) bool {
		_, err := os.Stat(filepath.Join(dir, job))
		return err == nil
	}
}

// TestNextJobPrefixPrepared: on localhost storage a small job's executor
// makes the next job's directory beside its calls, so that a warm call
// finds it made; storage shows no object for it; a prefix no job took goes
// when the next is prepared, and the last at Close, whether or not the data
// cleaner runs: no empty directory is left behind.
func TestNextJobPrefixPrepared(t *testing.T) {
	for _, cleaner := range []bool{true, false} {
		name := "cleaner"
		if !cleaner {
			name = "no cleaner"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cfg := config.Default()
			cfg.Lithops.DataCleaner = &cleaner
			e, exists := preparingExecutor(t, cfg)
			for i := range 2 {
				f, err := CallAsync(ctx, e, echoInt, i)
				if err != nil {
					t.Fatal(err)
				}
				if v, err := f.Result(ctx); err != nil || v != i {
					t.Fatalf("call %d: %v, %v", i, v, err)
				}
			}
			e.preparing.Wait() // it is made beside the call, after CallAsync returned
			if !exists("A002") {
				t.Fatal("the next job's directory A002 was not made")
			}
			infos, err := e.Storage().List(ctx, e.Storage().Bucket(), "lithops.jobs/"+e.ID()+"/")
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range infos {
				if strings.Contains(o.Key, "/A002") {
					t.Fatalf("the prepared prefix lists an object: %s", o.Key)
				}
			}
			// A job of another kind takes number 2: A002 goes, M003 is made.
			fs, err := Map(ctx, e, echoInt, []int{1, 2, 3})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fs.Results(ctx); err != nil {
				t.Fatal(err)
			}
			e.preparing.Wait()
			if exists("A002") || !exists("M002") || !exists("M003") {
				t.Fatalf("after a map: A002 %v, M002 %v, M003 %v; want false, true, true", exists("A002"), exists("M002"), exists("M003"))
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			var empty []string
			bdir := filepath.Join(cfg.Localhost.StorageRoot, e.Storage().Bucket())
			filepath.WalkDir(bdir, func(p string, de os.DirEntry, err error) error {
				if err == nil && de.IsDir() && p != bdir {
					if ents, _ := os.ReadDir(p); len(ents) == 0 {
						empty = append(empty, p)
					}
				}
				return nil
			})
			if len(empty) > 0 {
				t.Fatalf("empty directories left after Close: %v", empty)
			}
			if got := exists(""); got != !cleaner {
				t.Fatalf("executor directory exists after Close: %v, want %v", got, !cleaner)
			}
			if !cleaner && !slices.ContainsFunc([]string{"A000", "A001", "M002"}, exists) {
				t.Fatal("the jobs went without the data cleaner")
			}
		})
	}
}

var echoBytes = Func("internal_echo_bytes", func(ctx context.Context, b []byte) ([]byte, error) { return b, nil })

// TestPreparedPrefixErrorPaths: a job refused after it took the prepared
// prefix (its inputs over data_limit) removes it; a prefix that cannot be
// prepared (a key in its way) is only not prepared; neither leaves an
// empty directory behind.
func TestPreparedPrefixErrorPaths(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := config.Default()
	limit := 0.001 // MiB
	cfg.Lithops.DataLimit = &limit
	e, exists := preparingExecutor(t, cfg)
	call := func(n int) error {
		f, err := CallAsync(ctx, e, echoBytes, make([]byte, n))
		if err != nil {
			return err
		}
		_, err = f.Result(ctx)
		e.preparing.Wait()
		return err
	}
	if err := call(10); err != nil || !exists("A001") {
		t.Fatalf("first call: %v; A001 made: %v", err, exists("A001"))
	}
	if err := call(4096); err == nil || !strings.Contains(err.Error(), "data_limit") {
		t.Fatalf("a call over data_limit: %v", err)
	}
	if exists("A001") {
		t.Fatal("the refused job A001 left its prepared directory")
	}
	// A key where the next job's directory would go.
	st := e.Storage()
	if err := st.PutBytes(ctx, st.Bucket(), strings.TrimSuffix(protocol.JobPrefix(e.ID(), "A003"), "/"), []byte("in the way")); err != nil {
		t.Fatal(err)
	}
	if err := call(10); err != nil {
		t.Fatalf("the call before the key in the way: %v", err)
	}
	e.mu.Lock()
	prepared := e.prepared
	e.mu.Unlock()
	if prepared != "" {
		t.Fatalf("prepared %q, a prefix taken by a key", prepared)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if exists("") {
		t.Fatal("the executor's directory is left after Close")
	}
}
