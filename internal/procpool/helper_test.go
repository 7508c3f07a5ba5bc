package procpool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/localfs"
)

// The test binary is its own worker program: in worker mode TestMain
// serves the pipe with the functions below instead of running tests.
func TestMain(m *testing.M) {
	if os.Getenv(WorkerEnv) == "localhost" {
		if err := serveTestWorker(); err != nil {
			fmt.Fprintln(os.Stderr, "test worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testConfig is what a test worker reads on ConfigFD.
type testConfig struct {
	Root string `json:"root"` // the localfs storage root
}

// testFuncs are the test worker's functions; inputs are plain strings.
var testFuncs = map[string]*worker.Func{
	// pid answers the worker's process id, to tell workers apart.
	"pid": {Call: func(ctx context.Context, _ protocol.Codec, _ []byte) ([]byte, error) {
		return []byte(strconv.Itoa(os.Getpid())), nil
	}},
	// sleep ignores its ctx for the duration in its input: only a kill ends it early.
	"sleep": {Call: func(ctx context.Context, _ protocol.Codec, in []byte) ([]byte, error) {
		d, err := time.ParseDuration(string(in))
		if err != nil {
			return nil, err
		}
		time.Sleep(d)
		return []byte(strconv.Itoa(os.Getpid())), nil
	}},
	// exit kills the worker with status 3 mid-call.
	"exit": {Call: func(ctx context.Context, _ protocol.Codec, _ []byte) ([]byte, error) {
		os.Exit(3)
		return nil, nil
	}},
	// alloc holds the MiB its input names, touched, until killed.
	"alloc": {Call: func(ctx context.Context, _ protocol.Codec, in []byte) ([]byte, error) {
		mb, _ := strconv.Atoi(string(in))
		b := make([]byte, mb<<20)
		for i := range b {
			b[i] = byte(i)
		}
		time.Sleep(30 * time.Second)
		return b[:1], nil
	}},
	// flaky fails as many times per call as its input says, then succeeds;
	// it counts in a file of the storage root.
	"flaky": {Call: func(ctx context.Context, _ protocol.Codec, in []byte) ([]byte, error) {
		n, _ := strconv.Atoi(string(in))
		f, err := os.OpenFile(filepath.Join(os.Getenv("TEST_ROOT"), "flaky-"+worker.CallIDFrom(ctx)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		fi, _ := f.Stat()
		f.Write([]byte{'x'})
		if fi.Size() < int64(n) {
			return nil, errors.New("flaky failure")
		}
		return []byte("ok"), nil
	}},
	// mixed does what its input says: "exit" exits with status 3
	// ("sleep-exit" 50 ms later), a
	// duration sleeps that long, anything else answers the pid; a call of
	// one job (one batch) can differ from the next.
	"mixed": {Call: func(ctx context.Context, _ protocol.Codec, in []byte) ([]byte, error) {
		switch string(in) {
		case "exit":
			os.Exit(3)
		case "sleep-exit": // after the answers before it are out
			time.Sleep(50 * time.Millisecond)
			os.Exit(3)
		}
		if d, err := time.ParseDuration(string(in)); err == nil {
			time.Sleep(d)
		}
		return []byte(strconv.Itoa(os.Getpid())), nil
	}},
	// env answers the variable its input names.
	"env": {Call: func(ctx context.Context, _ protocol.Codec, in []byte) ([]byte, error) {
		return []byte(os.Getenv(string(in))), nil
	}},
}

func init() {
	for n, f := range testFuncs {
		f.Name, f.Signature = n, "func(string) string"
	}
}

func serveTestWorker() error {
	f := os.NewFile(ConfigFD, "config")
	raw, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	var cfg testConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("config %q: %w", raw, err)
	}
	os.Setenv("TEST_ROOT", cfg.Root)
	st, err := openTestStorage(cfg.Root)
	if err != nil {
		return err
	}
	if os.Getenv("TEST_OLD_WORKER") == "1" {
		os.Unsetenv(worker.BatchEnv) // a worker of before batches: no Hello
	}
	w := worker.New(os.Getenv("LITHOPS_WORKER_ID"), st, testFuncs, nil)
	return worker.ServePipe(context.Background(), w, os.NewFile(3, "requests"), os.NewFile(4, "responses"))
}

func openTestStorage(root string) (*storage.Storage, error) {
	d, err := localfs.New(root)
	if err != nil {
		return nil, err
	}
	st := storage.New(d, "localhost", "b")
	return st, st.CreateBucket(context.Background(), "b")
}

// testEnv is a storage shared with test workers, and jobs in it.
type testEnv struct {
	t    *testing.T
	root string
	st   *storage.Storage
	jobs int
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	root := t.TempDir()
	st, err := openTestStorage(root)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, root: root, st: st}
}

// options are pool options whose workers are this test binary on e's
// storage.
func (e *testEnv) options(size int) Options {
	cfg, _ := json.Marshal(testConfig{Root: e.root})
	return Options{Size: size, Config: cfg, Storage: e.st, Output: io.Discard}
}

// job stores a manifest of n calls of fn and returns it with an
// invocation of its calls, each with input in.
func (e *testEnv) job(fn, in string, n int, edit func(*protocol.Job)) (*protocol.Job, protocol.Invocation) {
	e.t.Helper()
	e.jobs++
	reg := protocol.Registry{}
	for name, f := range testFuncs {
		reg[name] = f.Signature
	}
	job := &protocol.Job{Version: protocol.Version, ExecutorID: "e", JobID: fmt.Sprintf("J%03d", e.jobs), Function: fn,
		Signature: testFuncs[fn].Signature, Registry: reg, Calls: n, Inputs: make([]protocol.Range, n), Bucket: "b"}
	if edit != nil {
		edit(job)
	}
	raw, _ := json.Marshal(job)
	if err := e.st.PutBytes(context.Background(), "b", protocol.JobKey(job.ExecutorID, job.JobID), raw); err != nil {
		e.t.Fatal(err)
	}
	inv := protocol.Invocation{Version: protocol.Version, Bucket: "b", ExecutorID: job.ExecutorID, JobID: job.JobID}
	for i := 0; i < n; i++ {
		inv.Calls = append(inv.Calls, protocol.Call{ID: protocol.CallID(i), Index: i, HasInput: true, Input: []byte(in)})
	}
	return job, inv
}

// task returns a task of the first call of inv and the channel its
// result comes on.
func task(ctx context.Context, inv protocol.Invocation, timeout time.Duration) (*Task, chan Result) {
	done := make(chan Result, 1)
	one := inv
	one.Calls = inv.Calls[:1]
	return &Task{Ctx: ctx, Invocation: one, Timeout: timeout, Done: func(r Result) { done <- r }}, done
}

// wait returns the result on done, failing the test after 30 s.
func wait(t *testing.T, done <-chan Result) Result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("the task did not end within 30 s")
		return Result{}
	}
}

// eventually polls cond every 10 ms until it holds, failing the test
// after limit.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
