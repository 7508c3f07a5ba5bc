package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
)

var shout = lithops.Func("cli_test_shout", func(ctx context.Context, n int) (int, error) {
	fmt.Printf("hello from call %d\n", n)
	fmt.Fprintf(os.Stderr, "warning from call %d\n", n)
	return n, nil
})

func TestLogsCommand(t *testing.T) {
	root := t.TempDir()
	cfgPath := writeConfig(t, "lithops:\n  data_cleaner: false\nlocalhost:\n  storage_root: "+root+"\n")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg), lithops.WithWorkerOutput(new(strings.Builder)))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := lithops.Map(ctx, e, shout, []int{0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Results(ctx); err != nil {
		t.Fatal(err)
	}
	// A map on the warm workers: its calls are recorded in batch records.
	many := make([]int, 64)
	big, err := lithops.Map(ctx, e, shout, many)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := big.Results(ctx); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if !hasBatchRecord(t, cfgPath, e.ID(), big.At(0).JobID()) {
		t.Fatal("the map of 64 calls left no batch record; the test needs one")
	}
	// --follow ends once every call has finished, the batch-recorded too.
	followed := make(chan error, 1)
	go func() {
		_, err := run(t, "logs", e.ID()+"/"+big.At(0).JobID(), "-c", cfgPath, "--follow")
		followed <- err
	}()
	select {
	case err := <-followed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("logs --follow of a finished job recorded in batches did not end within 60 s")
	}
	job := e.ID() + "/" + fs.At(0).JobID()
	out, err := run(t, "logs", job, "-c", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		for _, want := range []string{fmt.Sprintf("=== %s call %05d attempt 0 ===", job, i), fmt.Sprintf("hello from call %d", i), fmt.Sprintf("warning from call %d", i)} {
			if !strings.Contains(out, want) {
				t.Errorf("logs lack %q:\n%s", want, out)
			}
		}
	}
	one, err := run(t, "logs", job+"/1", "-c", cfgPath, "--follow")
	if err != nil || !strings.Contains(one, "hello from call 1") || strings.Contains(one, "hello from call 0") {
		t.Fatalf("one call's logs: %q, %v", one, err)
	}
	// A job of another protocol version: its call is not followed for ever.
	st, err := lithops.OpenStorage(ctx, lithops.WithConfigFile(cfgPath))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.PutBytes(ctx, st.Bucket(), protocol.JobKey("old-v2", "A000"), []byte(`{"protocol":2,"executor_id":"old-v2","job_id":"A000","function":"f","calls":1,"inputs":[{}]}`))
	st.PutBytes(ctx, st.Bucket(), protocol.JobPrefix("old-v2", "A000")+"status/00000.json", []byte("{}"))
	oldDone := make(chan error, 1)
	go func() {
		_, err := run(t, "logs", "old-v2/A000/0", "-c", cfgPath, "--follow")
		oldDone <- err
	}()
	select {
	case err := <-oldDone:
		if err == nil || !strings.Contains(err.Error(), "protocol version 2") {
			t.Errorf("logs --follow of a call of a protocol-2 job: %v, want an error naming its version", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("logs --follow of a call of a protocol-2 job did not end within 30 s")
	}
	// One call of a job whose manifest is not stored (yet): followed until
	// its status is there, as before.
	st.PutBytes(ctx, st.Bucket(), protocol.StatusKey("nomanifest", "A000", "00000"), []byte("{}"))
	if _, err := run(t, "logs", "nomanifest/A000/0", "-c", cfgPath, "--follow"); err != nil {
		t.Errorf("logs --follow of a finished call of a job without a manifest: %v", err)
	}
	for _, bad := range []string{"nojob", "a/b/c/d", "a/b/x"} {
		if _, err := run(t, "logs", bad, "-c", cfgPath); err == nil {
			t.Errorf("logs %q: no error", bad)
		}
	}
}

// hasBatchRecord reports whether job has a batch record (protocol.BatchKey).
func hasBatchRecord(t *testing.T, cfgPath, exec, job string) bool {
	t.Helper()
	st, err := lithops.OpenStorage(context.Background(), lithops.WithConfigFile(cfgPath))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	infos, err := st.List(context.Background(), st.Bucket(), protocol.StatusPrefix(exec, job))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range infos {
		if k, ok := protocol.ParseKey(o.Key); ok && k.Batch {
			return true
		}
	}
	return false
}
