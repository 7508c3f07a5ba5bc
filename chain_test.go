package lithops_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/driver"
)

// countingDriver counts the bytes this process reads from result objects,
// so a test can tell whether the client downloaded a job's results.
type countingDriver struct {
	driver.Driver
	mu    sync.Mutex
	reads map[string]int64 // result key → bytes read
}

type countingReader struct {
	io.ReadCloser
	d   *countingDriver
	key string
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.d.mu.Lock()
	r.d.reads[r.key] += int64(n)
	r.d.mu.Unlock()
	return n, err
}

func (d *countingDriver) GetRange(ctx context.Context, bucket, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := d.Driver.GetRange(ctx, bucket, key, off, n)
	if err != nil {
		return nil, err
	}
	if k, ok := protocol.ParseKey(key); ok && k.Kind == protocol.KindResult {
		d.mu.Lock()
		d.reads[key] += 0 // a GET of a result object counts even when nothing is read
		d.mu.Unlock()
		return &countingReader{rc, d, key}, nil
	}
	return rc, nil
}

// resultReads returns the result objects of job read in this process and
// their bytes.
func (d *countingDriver) resultReads(job string) map[string]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]int64{}
	for k, n := range d.reads {
		if pk, _ := protocol.ParseKey(k); pk.Job == job {
			out[k] = n
		}
	}
	return out
}

var (
	countingMu  sync.Mutex
	countingDrv *countingDriver // the client's: the last opened in this process
)

func init() {
	storage.Register("counting_localhost", func(ctx context.Context, cfg *config.Config) (*storage.Storage, error) {
		if cfg.Localhost.StorageRoot == "" {
			// A worker: the executor passes workers the settings of its
			// storage backend, and this one is a test's; its root comes by
			// the environment the workers inherit.
			c := *cfg
			c.Localhost.StorageRoot = os.Getenv("LITHOPS_TEST_COUNTING_ROOT")
			cfg = &c
		}
		st, err := storage.Open(ctx, cfg, "localhost")
		if err != nil {
			return nil, err
		}
		d := &countingDriver{Driver: st.Driver(), reads: map[string]int64{}}
		countingMu.Lock()
		countingDrv = d
		countingMu.Unlock()
		return storage.New(d, "counting_localhost", st.Bucket()), nil
	})
}

var errBadBlock = errors.New("bad block")

// chainBlock returns a block of 20 KiB (stored as its own object, over
// the inline limit) filled with byte n; it fails on n == 13. With Gate set
// it first waits until the object at Gate exists.
type chainIn struct {
	N    int
	Size int
	Gate string
}

var chainBlock = lithops.Func("chain_block", func(ctx context.Context, in chainIn) ([]byte, error) {
	if in.N == 13 {
		return nil, fmt.Errorf("block %d: %w", in.N, errBadBlock)
	}
	st := lithops.StorageFrom(ctx)
	for in.Gate != "" {
		if _, err := st.Head(ctx, st.Bucket(), in.Gate); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond): // a poll of storage, not a synchronization of the test
		}
	}
	return bytes.Repeat([]byte{byte(in.N)}, in.Size), nil
})

// chainSum sums a block's bytes.
var chainSum = lithops.Func("chain_sum", func(ctx context.Context, b []byte) (int, error) {
	s := 0
	for _, c := range b {
		s += int(c)
	}
	return s, nil
})

// chainDouble doubles.
var chainDouble = lithops.Func("chain_double", func(ctx context.Context, x int) (int, error) { return 2 * x, nil })

func init() { lithops.RegisterError(errBadBlock) }

func TestMapFutures(t *testing.T) {
	ctx := ctxT(t)
	cfg := config.Default()
	cfg.Localhost.StorageRoot = t.TempDir()
	t.Setenv("LITHOPS_TEST_COUNTING_ROOT", cfg.Localhost.StorageRoot)
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg), lithops.WithStorage("counting_localhost"))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	countingMu.Lock()
	cd := countingDrv
	countingMu.Unlock()
	tests := []struct {
		name   string
		ns     []int
		size   int
		stored bool // the first stage's results are objects of their own
	}{
		{"stored", []int{1, 2, 3, 4, 5}, 20 << 10, true},
		{"inline", []int{1, 2, 3}, 100, false},
		{"empty", nil, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := make([]chainIn, len(tt.ns))
			for i, n := range tt.ns {
				in[i] = chainIn{N: n, Size: tt.size}
			}
			f1, err := lithops.Map(ctx, e, chainBlock, in)
			if err != nil {
				t.Fatal(err)
			}
			f2, err := lithops.MapFutures(ctx, e, chainSum, f1)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f2.Results(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i, n := range tt.ns {
				if want := n * tt.size; got[i] != want {
					t.Errorf("call %d: got %d, want %d", i, got[i], want)
				}
			}
			if tt.stored {
				for i, f := range f1.All() {
					if s, ok := f.Stats(); !ok || s.ResultSize <= protocol.InlineLimit {
						t.Errorf("first stage call %d: result size %d, want a stored result", i, s.ResultSize)
					}
				}
			}
			if len(tt.ns) > 0 {
				if r := cd.resultReads(f1.At(0).JobID()); len(r) != 0 {
					t.Errorf("the client read results of the first stage: %v", r)
				}
			}
		})
	}
}

func TestMapFuturesUpstreamError(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	f1, err := lithops.Map(ctx, e, chainBlock, []chainIn{{N: 1, Size: 10}, {N: 13, Size: 10}, {N: 2, Size: 10}})
	if err != nil {
		t.Fatal(err)
	}
	f2, err := lithops.MapFutures(ctx, e, chainSum, f1)
	if err != nil {
		t.Fatal(err)
	}
	f3, err := lithops.MapFutures(ctx, e, chainDouble, f2) // a chain of a chain
	if err != nil {
		t.Fatal(err)
	}
	got, err := f3.Results(ctx)
	if err == nil {
		t.Fatal("no error for a chain over a failed call")
	}
	if got[0] != 20 || got[2] != 40 {
		t.Errorf("results %v, want [20 _ 40]", got)
	}
	for _, target := range []error{lithops.ErrUpstream, lithops.ErrUser, errBadBlock} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %v) = false", err, target)
		}
	}
	var ce *lithops.CallError
	if !errors.As(err, &ce) || ce.Job != f1.At(1).JobID() || ce.Call != f1.At(1).CallID() {
		t.Errorf("errors.As gives %+v, want the first stage's call %s/%s", ce, f1.At(1).JobID(), f1.At(1).CallID())
	}
	var ue *lithops.UpstreamError
	if !errors.As(err, &ue) || ue.Job != f3.At(1).JobID() {
		t.Errorf("UpstreamError %+v, want job %s", ue, f3.At(1).JobID())
	}
	if !strings.Contains(err.Error(), "chain_double") {
		t.Errorf("error %q does not name the chained function", err)
	}
}

// TestMapFuturesPerCall: a chained call runs when its own input call has
// finished, while another call of the earlier job is still running.
func TestMapFuturesPerCall(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t, lithops.WithMaxWorkers(2))
	gate := fmt.Sprintf("chain-gate-%d", time.Now().UnixNano())
	f1, err := lithops.Map(ctx, e, chainBlock, []chainIn{{N: 3, Size: 10}, {N: 4, Size: 10, Gate: gate}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := lithops.Then(ctx, e, f1.At(0), chainSum)
	if err != nil {
		t.Fatal(err)
	}
	second, err := lithops.Then(ctx, e, f1.At(1), chainSum)
	if err != nil {
		t.Fatal(err)
	}
	// If chained calls waited for the whole earlier job, this would wait
	// for the gate, which opens only after it.
	if v, err := first.Result(ctx); err != nil || v != 30 {
		t.Fatalf("first chained call: %v, %v; want 30", v, err)
	}
	if f1.At(1).Done() {
		t.Fatal("the gated call finished before its gate opened")
	}
	st := e.Storage()
	if err := st.PutBytes(ctx, st.Bucket(), gate, nil); err != nil {
		t.Fatal(err)
	}
	if v, err := second.Result(ctx); err != nil || v != 40 {
		t.Fatalf("second chained call: %v, %v; want 40", v, err)
	}
}

// TestMapFuturesAzureStorage chains maps with Azure Blob storage
// (Azurite): the chained workers read stored results through the earlier
// calls' statuses in blob storage.
func TestMapFuturesAzureStorage(t *testing.T) {
	cfg := azuriteConfig(t)
	ctx := ctxT(t)
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	f1, err := lithops.Map(ctx, e, chainBlock, []chainIn{{N: 1, Size: 20 << 10}, {N: 13, Size: 1}, {N: 2, Size: 10}})
	if err != nil {
		t.Fatal(err)
	}
	f2, err := lithops.MapFutures(ctx, e, chainSum, f1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f2.Results(ctx)
	if !errors.Is(err, lithops.ErrUpstream) || !errors.Is(err, errBadBlock) {
		t.Errorf("error %v, want the upstream failure of call 1", err)
	}
	if got[0] != 20<<10 || got[2] != 20 {
		t.Errorf("results %v, want [20480 _ 20]", got)
	}
}
