package lithops_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
)

var slowSquare = lithops.Func("slow_square", func(ctx context.Context, x int) (int, error) {
	time.Sleep(150 * time.Millisecond)
	return x * x, nil
})

// runDoomedClient submits a map, prints its executor id and waits to be
// killed.
func runDoomedClient() {
	ctx := context.Background()
	e, err := lithops.NewExecutor(ctx, lithops.WithMaxWorkers(2))
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	in := make([]int, 30)
	for i := range in {
		in[i] = i
	}
	if _, err := lithops.Map(ctx, e, slowSquare, in); err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("EXECUTOR", e.ID())
	time.Sleep(time.Minute)
	os.Exit(3)
}

// TestReattach: a client process is killed mid-job; a new process attaches
// to its executor, re-runs what never finished and gets every result.
func TestReattach(t *testing.T) {
	ctx := ctxT(t)
	root := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfgPath, []byte("localhost:\n  storage_root: "+root+"\n"), 0o600)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "LITHOPS_TEST_CLIENT=1", "LITHOPS_CONFIG_FILE="+cfgPath)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	id, ok := strings.CutPrefix(strings.TrimSpace(line), "EXECUTOR ")
	if err != nil || !ok {
		cmd.Process.Kill()
		t.Fatalf("client said %q, %v", line, err)
	}
	// Kill the client once some calls are done: most are not (30 calls of
	// 150 ms on 2 workers take over 2 s).
	st, err := lithops.OpenStorage(ctx, lithops.WithConfigFile(cfgPath))
	if err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	defer st.Close()
	for deadline := time.Now().Add(20 * time.Second); finishedCalls(ctx, t, st, id) < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no call of the doomed client finished within 20 s")
		}
	}
	cmd.Process.Kill()
	cmd.Wait()

	e, err := lithops.Attach(ctx, id, lithops.WithConfigFile(cfgPath))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	jobs := e.Jobs()
	if len(jobs) != 1 || jobs[0].ID != "M000" || jobs[0].Calls != 30 {
		t.Fatalf("attached jobs %+v", jobs)
	}
	done := jobs[0].Done
	if done < 2 || done == 30 {
		t.Errorf("calls done before the kill: %d of 30, want some and not all", done)
	}
	if _, err := lithops.JobFutures[string](e, "M000"); err == nil {
		t.Fatal("JobFutures with the wrong type: no error")
	}
	fs, err := lithops.JobFutures[int](e, "M000")
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.Rerun(ctx, "M000")
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || n > 30-done {
		t.Errorf("re-ran %d calls of the %d not done", n, 30-done)
	}
	got, err := fs.Results(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != i*i {
			t.Fatalf("result %d = %d", i, v)
		}
	}
	if _, err := lithops.Attach(ctx, "nobody-0", lithops.WithConfigFile(cfgPath)); err == nil {
		t.Fatal("attach to an unknown executor: no error")
	}
	if _, err := lithops.Attach(ctx, "../x", lithops.WithConfigFile(cfgPath)); err == nil {
		t.Fatal("attach with a path in the id: no error")
	}
}

// TestRerunFailed re-runs only the failed calls of a finished job.
func TestRerunFailed(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	dir := t.TempDir()
	in := make([]failScript, 3)
	for i := range in {
		in[i] = failScript{Dir: dir, Codes: map[int][]int{1: {-1}}, I: i}
	}
	fs, err := lithops.Map(ctx, e, deterministicFailure, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Results(ctx); !errors.Is(err, lithops.ErrUser) {
		t.Fatalf("first run: %v", err)
	}
	n, err := e.Rerun(ctx, fs.At(0).JobID())
	if err != nil || n != 1 {
		t.Fatalf("rerun: %d, %v; want 1 call", n, err)
	}
	again, _ := lithops.JobFutures[int](e, fs.At(0).JobID())
	if got, err := again.Results(ctx); err != nil || fmt.Sprint(got) != "[0 1 2]" {
		t.Fatalf("after rerun: %v, %v", got, err)
	}
}

// keptExecutor runs two jobs (M000 and M001) on an executor that keeps its
// records, closes it, and returns its config and id.
func keptExecutor(t *testing.T) (*config.Config, string) {
	t.Helper()
	ctx := ctxT(t)
	cfg := config.Default()
	cfg.Localhost.StorageRoot = t.TempDir()
	off := false
	cfg.Lithops.DataCleaner = &off
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]int{{1, 2}, {3, 4}} {
		fs, err := lithops.Map(ctx, e, slowSquare, in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fs.Results(ctx); err != nil {
			t.Fatal(err)
		}
	}
	id := e.ID()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	on := true
	cfg2 := *cfg
	cfg2.Lithops.DataCleaner = &on // the default: attaching must still delete nothing
	return &cfg2, id
}

// A failed Attach deletes nothing: every error return used to Close the
// executor, and Close deleted all of its records (issue 9, repro 1).
func TestFailedAttachDeletesNothing(t *testing.T) {
	ctx := ctxT(t)
	cfg, id := keptExecutor(t)
	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bad := id + "/M000/job.json"
	if err := st.PutBytes(ctx, st.Bucket(), "lithops.jobs/"+bad, []byte(`{"x": not json`)); err != nil {
		t.Fatal(err)
	}
	if _, err := lithops.Attach(ctx, id, lithops.WithConfig(cfg)); err == nil || !strings.Contains(err.Error(), "M000") {
		t.Fatalf("attach to a corrupt manifest: %v", err)
	}
	// A cancelled ctx takes an error path too.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := lithops.Attach(cctx, id, lithops.WithConfig(cfg)); err == nil {
		t.Fatal("attach with a cancelled ctx succeeded")
	}
	infos, err := st.List(ctx, st.Bucket(), "lithops.jobs/"+id+"/M001/")
	if err != nil || len(infos) < 3 {
		t.Fatalf("M001's records after failed attaches: %d, %v", len(infos), err)
	}
}

// An attached executor's Close deletes only the jobs submitted through it,
// never the jobs it attached to (issue 9, repro 2).
func TestAttachedCloseKeepsAttachedJobs(t *testing.T) {
	ctx := ctxT(t)
	cfg, id := keptExecutor(t)
	e, err := lithops.Attach(ctx, id, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := lithops.JobFutures[int](e, "M001")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fs.Results(ctx); err != nil || fmt.Sprint(got) != "[9 16]" {
		t.Fatalf("attached results: %v, %v", got, err)
	}
	mine, err := lithops.Map(ctx, e, slowSquare, []int{5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mine.Results(ctx); err != nil {
		t.Fatal(err)
	}
	newJob := mine.At(0).JobID()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for job, want := range map[string]bool{"M000": true, "M001": true, newJob: false} {
		infos, err := st.List(ctx, st.Bucket(), "lithops.jobs/"+id+"/"+job+"/")
		if err != nil || (len(infos) > 0) != want {
			t.Errorf("job %s: %d records after Close, %v (want kept: %v)", job, len(infos), err, want)
		}
	}
	// Attach again: the kept jobs are all there.
	e2, err := lithops.Attach(ctx, id, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	e2.Close()
}

// An unreadable status record ends its call with ErrCorrupt instead of a
// poll that waits for ever; Rerun replaces the record (issue 9, point 6).
func TestCorruptStatusIsFinal(t *testing.T) {
	ctx := ctxT(t)
	cfg, id := keptExecutor(t)
	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key := "lithops.jobs/" + id + "/M001/status.00001.json"
	if err := st.Delete(ctx, st.Bucket(), key); err != nil {
		t.Fatal(err)
	}
	if err := st.PutBytes(ctx, st.Bucket(), key, []byte("{garbage")); err != nil {
		t.Fatal(err)
	}
	e, err := lithops.Attach(ctx, id, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fs, err := lithops.JobFutures[int](e, "M001")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := fs.At(1).Result(wctx); !errors.Is(err, lithops.ErrCorrupt) || !strings.Contains(err.Error(), "M001/status.00001.json") {
		t.Fatalf("call with a corrupt status: %v", err)
	}
	if v, err := fs.At(0).Result(ctx); err != nil || v != 9 {
		t.Fatalf("the other call: %v, %v", v, err)
	}
	if n, err := e.Rerun(ctx, "M001"); err != nil || n != 1 {
		t.Fatalf("rerun: %d, %v", n, err)
	}
	again, _ := lithops.JobFutures[int](e, "M001")
	if got, err := again.Results(ctx); err != nil || fmt.Sprint(got) != "[9 16]" {
		t.Fatalf("after rerun: %v, %v", got, err)
	}
}

// finishedCalls counts the final status records of executor id's job M000.
func finishedCalls(ctx context.Context, t *testing.T, st *storage.Storage, id string) int {
	t.Helper()
	objs, err := st.List(ctx, st.Bucket(), protocol.JobPrefix(id, "M000"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range objs {
		if k, ok := protocol.ParseKey(o.Key); ok && k.Kind == protocol.KindStatus {
			n++
		}
	}
	return n
}

var quickTriple = lithops.Func("quick_triple", func(ctx context.Context, x int) (int, error) { return 3 * x, nil })

// TestBatchRecordsAcrossProcesses: a localhost map of quick calls records
// its successes in batch records; an executor that attaches reads every
// result from them, as do the job's stats; a batch record that cannot be
// read fails its first call with ErrCorrupt, leaves its other calls
// pending, and Rerun runs them again.
func TestBatchRecordsAcrossProcesses(t *testing.T) {
	ctx := ctxT(t)
	cfg := config.Default()
	cfg.Localhost.StorageRoot = t.TempDir()
	off := false
	cfg.Lithops.DataCleaner = &off
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg), lithops.WithMaxWorkers(2))
	if err != nil {
		t.Fatal(err)
	}
	const n = 400
	in := make([]int, n)
	for i := range in {
		in[i] = i
	}
	var job string
	for range 2 { // the first map starts the workers; the second finds them warm
		fs, err := lithops.Map(ctx, e, quickTriple, in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fs.Results(ctx); err != nil {
			t.Fatal(err)
		}
		job = fs.At(0).JobID()
	}
	id := e.ID()
	e.Close()

	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	objs, err := st.List(ctx, st.Bucket(), protocol.StatusPrefix(id, job))
	if err != nil {
		t.Fatal(err)
	}
	var batches []string
	for _, o := range objs {
		if k, ok := protocol.ParseKey(o.Key); ok && k.Batch {
			batches = append(batches, o.Key)
		}
	}
	if len(batches) == 0 {
		// How many depends on the machine's speed (a batch holds the calls
		// that end within 0.5 ms of each other); the test needs one.
		t.Fatalf("%d status records for %d calls, none a batch", len(objs), n)
	}

	check := func(e *lithops.Executor, pending map[int]bool) {
		t.Helper()
		fs, err := lithops.JobFutures[int](e, job)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if pending[i] {
				continue
			}
			if v, err := fs.At(i).Result(ctx); err != nil || v != 3*i {
				t.Fatalf("call %d: %v, %v", i, v, err)
			}
		}
	}
	a, err := lithops.Attach(ctx, id, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	check(a, nil)
	sum, err := a.JobSummary(ctx, job)
	if err != nil || sum.Done != n {
		t.Fatalf("summary %+v, %v; want %d calls done", sum, err, n)
	}
	a.Close()

	// Damage one batch record.
	k, _ := protocol.ParseKey(batches[0])
	raw, err := st.GetBytes(ctx, st.Bucket(), batches[0])
	if err != nil {
		t.Fatal(err)
	}
	sts, err := protocol.ParseStatusBatch(k, raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutBytes(ctx, st.Bucket(), batches[0], []byte("{garbage")); err != nil {
		t.Fatal(err)
	}
	a, err = lithops.Attach(ctx, id, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	fs, _ := lithops.JobFutures[int](a, job)
	first, _ := strconv.Atoi(sts[0].CallID)
	if _, err := fs.At(first).Result(ctx); !errors.Is(err, lithops.ErrCorrupt) || !strings.Contains(err.Error(), batches[0]) {
		t.Fatalf("first call of a damaged batch record: %v, want ErrCorrupt naming the record", err)
	}
	pending := map[int]bool{first: true}
	for _, s := range sts[1:] {
		i, _ := strconv.Atoi(s.CallID)
		pending[i] = true
		wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := fs.At(i).Result(wctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d of a damaged batch record: %v, want it pending", i, err)
		}
	}
	check(a, pending)
	rerun, err := a.Rerun(ctx, job)
	if err != nil || rerun != len(sts) {
		t.Fatalf("rerun: %d, %v; want the %d calls of the damaged record", rerun, err, len(sts))
	}
	check(a, nil)
}
