package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
)

func TestCleanCommand(t *testing.T) {
	root := t.TempDir()
	cfgPath := writeConfig(t, "lithops:\n  data_cleaner: false\nlocalhost:\n  storage_root: "+root+"\n")
	cfg, _ := config.Load(cfgPath)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 2; i++ {
		e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
		if err != nil {
			t.Fatal(err)
		}
		fs, err := lithops.Map(ctx, e, hello, []string{"a", "b"})
		if err != nil {
			t.Fatal(err)
		}
		fs.Results(ctx)
		ids = append(ids, e.ID())
		e.Close()
	}
	st, _ := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	defer st.Close()
	// An uploaded program that a job names, and one that none does.
	used, unused := strings.Repeat("a", 64), strings.Repeat("b", 64)
	st.PutBytes(ctx, st.Bucket(), protocol.ProgramKey(used), []byte("x"))
	st.PutBytes(ctx, st.Bucket(), protocol.ProgramKey(unused), []byte("y"))
	raw, _ := st.GetBytes(ctx, st.Bucket(), protocol.JobKey(ids[1], "M000"))
	st.PutBytes(ctx, st.Bucket(), protocol.JobKey(ids[1], "M000"), []byte(strings.Replace(string(raw), `"codec"`, `"program":"`+used+`","codec"`, 1)))

	count := func(prefix string) int {
		infos, _ := st.List(ctx, st.Bucket(), prefix)
		return len(infos)
	}
	if out, err := run(t, "clean", "-c", cfgPath, "--older-than", "1h"); err != nil || !strings.Contains(out, "deleted 0 job(s)") {
		t.Fatalf("clean --older-than 1h: %q, %v", out, err)
	}
	if out, err := run(t, "clean", "-c", cfgPath, "--executor", ids[0], "--programs"); err != nil || !strings.Contains(out, "deleted 1 job(s)") || !strings.Contains(out, "deleted 1 uploaded program(s)") {
		t.Fatalf("clean --executor: %q, %v", out, err)
	}
	if count(protocol.ExecutorPrefix(ids[0])) != 0 || count(protocol.ExecutorPrefix(ids[1])) == 0 {
		t.Fatal("clean --executor removed the wrong jobs")
	}
	if count(protocol.ProgramKey(used)) != 1 || count(protocol.ProgramKey(unused)) != 0 {
		t.Fatal("clean --programs kept the wrong programs")
	}
	// A crashed executor's prepared (empty) directory for its next job.
	if err := st.Prepare(ctx, st.Bucket(), protocol.JobPrefix(ids[1], "M009")); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "clean", "-c", cfgPath); err != nil || !strings.Contains(out, "deleted 1 job(s)") || count(protocol.JobsPrefix) != 0 {
		t.Fatalf("clean: %q, %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(root, st.Bucket(), strings.TrimSuffix(protocol.JobsPrefix, "/"))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("clean left directories under %s: %v", protocol.JobsPrefix, err)
	}
}

func TestJobsRerun(t *testing.T) {
	root := t.TempDir()
	cfgPath := writeConfig(t, "lithops:\n  data_cleaner: false\nlocalhost:\n  storage_root: "+root+"\n")
	cfg, _ := config.Load(cfgPath)
	ctx := context.Background()
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := lithops.Map(ctx, e, hello, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	fs.Results(ctx)
	e.Close()
	// As if the client had died before call 1 finished.
	st, _ := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	defer st.Close()
	st.Delete(ctx, st.Bucket(), protocol.StatusKey(e.ID(), "M000", "00001"))
	out, err := run(t, "jobs", "rerun", e.ID()+"/M000", "-c", cfgPath)
	if err != nil || !strings.Contains(out, "re-running 1 call(s)") || !strings.Contains(out, "3 calls, 0 failed") {
		t.Fatalf("jobs rerun: %q, %v", out, err)
	}
	if _, err := st.Head(ctx, st.Bucket(), protocol.StatusKey(e.ID(), "M000", "00001")); err != nil {
		t.Fatalf("call 1 not recorded after the rerun: %v", err)
	}
	if _, err := run(t, "jobs", "rerun", "nonsense", "-c", cfgPath); err == nil {
		t.Fatal("jobs rerun nonsense: no error")
	}
}

// An unreadable manifest may name a program in use: cleaning programs then
// deletes none and says why.
func TestCleanProgramsKeepsAllOnUnreadableManifest(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.Localhost.StorageRoot = t.TempDir()
	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	prog := protocol.ProgramKey("0123abcd")
	for key, data := range map[string]string{
		prog: "program bytes",
		protocol.JobKey("0011223344556677-0", "M000"): "{not json",
	} {
		if err := st.PutBytes(ctx, st.Bucket(), key, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := cleanPrograms(ctx, st)
	if err == nil || n != 0 || !strings.Contains(err.Error(), "M000/job.json") {
		t.Fatalf("cleanPrograms = %d, %v; want 0 and an error naming the manifest", n, err)
	}
	if _, err := st.Head(ctx, st.Bucket(), prog); err != nil {
		t.Fatalf("the program was deleted: %v", err)
	}
}

// TestCleanOlderThanAnyVersion: --older-than goes by a manifest's creation
// time whatever its protocol version (old jobs are what it is for after an
// upgrade); a manifest whose age cannot be read is kept.
func TestCleanOlderThanAnyVersion(t *testing.T) {
	root := t.TempDir()
	cfgPath := writeConfig(t, "lithops:\n  data_cleaner: false\nlocalhost:\n  storage_root: "+root+"\n")
	cfg, _ := config.Load(cfgPath)
	ctx := context.Background()
	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	jobs := map[string]string{
		"old-v1":  `{"protocol":1,"executor_id":"old-v1","job_id":"M000","function":"f","calls":1,"created":"2020-01-02T03:04:05Z"}`,
		"old-v2":  `{"protocol":2,"executor_id":"old-v2","job_id":"M000","function":"f","calls":1,"created":"2020-01-02T03:04:05Z"}`,
		"garbled": `{"protocol":3,"created":`,
		"ageless": `{"protocol":3,"executor_id":"ageless","job_id":"M000"}`,
	}
	for exec, manifest := range jobs {
		st.PutBytes(ctx, st.Bucket(), protocol.JobKey(exec, "M000"), []byte(manifest))
		st.PutBytes(ctx, st.Bucket(), protocol.StatusKey(exec, "M000", "00000"), []byte("{}"))
	}
	// Protocol 2 kept statuses under status/: keys ParseKey no longer reads,
	// which go with their job all the same.
	for _, k := range []string{"status/00001.json", "status/00002-0.json"} {
		st.PutBytes(ctx, st.Bucket(), protocol.JobPrefix("old-v2", "M000")+k, []byte("{}"))
	}
	out, err := run(t, "clean", "-c", cfgPath, "--older-than", "24h")
	if err != nil || !strings.Contains(out, "deleted 2 job(s)") {
		t.Fatalf("clean --older-than 24h: %q, %v; want the protocol-1 and protocol-2 jobs of 2020 deleted", out, err)
	}
	for exec := range jobs {
		infos, _ := st.List(ctx, st.Bucket(), protocol.ExecutorPrefix(exec))
		if gone := len(infos) == 0; gone != (exec == "old-v1" || exec == "old-v2") {
			t.Errorf("job of %s: deleted %v", exec, gone)
		}
	}
}
