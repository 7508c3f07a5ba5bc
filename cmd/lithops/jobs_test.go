package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/storage"
)

// populate runs a map of 3 hello calls (M000) and a failing call (M001) on
// localhost storage under a temp dir, keeps their records, and returns the
// config file and the executor id.
func populate(t *testing.T) (cfg, executor string) {
	t.Helper()
	cfg = writeConfig(t, "lithops:\n  data_cleaner: false\nlocalhost:\n  storage_root: "+t.TempDir()+"\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := lithops.NewExecutor(ctx, lithops.WithConfigFile(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fs, err := lithops.Map(ctx, e, hello, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Results(ctx); err != nil {
		t.Fatal(err)
	}
	f, err := lithops.CallAsync(ctx, e, selftestFail, "planned failure")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Result(ctx); err == nil {
		t.Fatal("failing call succeeded")
	}
	return cfg, e.ID()
}

func TestJobsCommands(t *testing.T) {
	cfg, ex := populate(t)

	out, err := run(t, "jobs", "list", "-c", cfg)
	if err != nil {
		t.Fatal(err)
	}
	rows := []*regexp.Regexp{
		regexp.MustCompile(`(?m)^EXECUTOR +JOB +FUNCTION +CALLS +DONE +FAILED +PENDING +CREATED$`),
		regexp.MustCompile(`(?m)^` + ex + ` +M000 +lithops_hello +3 +3 +0 +0 +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$`),
		regexp.MustCompile(`(?m)^` + ex + ` +A001 +lithops_selftest_fail +1 +1 +1 +0 +`),
		regexp.MustCompile(`(?m)^Total jobs: 2$`),
	}
	for _, re := range rows {
		if !re.MatchString(out) {
			t.Errorf("jobs list lacks %s:\n%s", re, out)
		}
	}
	if out, err := run(t, "jobs", "list", "-c", cfg, "-e", "nobody"); err != nil || !strings.Contains(out, "Total jobs: 0") {
		t.Errorf("jobs list -e nobody: %q, %v", out, err)
	}

	tests := []struct {
		name string
		args []string
		want []string // regexps the output must match
	}{
		{"table", []string{"jobs", "show", ex + "/M000"}, []string{
			`^job:       ` + ex + `/M000 \(function lithops_hello\)\n`,
			`(?m)^calls:     3: 3 done, 0 failed, 0 pending$`,
			`(?m)^attempts:  3 \(0 calls retried\)$`,
			`(?m)^workers:   \d+ \(\d+ cold starts?\)$`,
			`(?m)^duration:  min \S+, median \S+, p90 \S+, max \S+$`,
			`(?m)^CALL +STATE +ATTEMPTS +WORKER +COLD +START +DURATION +EXEC +PEAK RSS +ERROR$`,
			`(?m)^00002 +success +1 +\S+ +(yes|no) +\+\d+\.\d{3}s +\S+ +\S+ +(\d+\.\d \wiB|-)$`,
		}},
		{"bare job id", []string{"jobs", "show", "A001", "--format", "table"}, []string{
			`(?m)^00000 +error +1 .* user: planned failure$`,
		}},
		{"csv", []string{"jobs", "show", ex + "/A001", "-f", "csv"}, []string{
			`^executor,job,function,call_id,state,`,
			`(?m)^` + ex + `,A001,lithops_selftest_fail,00000,error,1,`,
		}},
		{"json", []string{"jobs", "show", ex + "/M000", "--format", "json"}, []string{`"summary": \{`, `"call_id": "00002"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, append(tt.args, "-c", cfg)...)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !regexp.MustCompile(w).MatchString(out) {
					t.Errorf("output lacks %s:\n%s", w, out)
				}
			}
			switch tt.name {
			case "csv":
				if rows, err := csv.NewReader(strings.NewReader(out)).ReadAll(); err != nil || len(rows) != 2 {
					t.Errorf("csv: %d rows, %v", len(rows), err)
				}
			case "json":
				var doc struct {
					Summary struct{ Calls, Done int }
					Calls   []json.RawMessage
				}
				if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Summary.Calls != 3 || doc.Summary.Done != 3 || len(doc.Calls) != 3 {
					t.Errorf("json: %+v, %v", doc, err)
				}
			}
		})
	}

	dir := filepath.Join(t.TempDir(), "plots")
	out, err = run(t, "jobs", "plot", ex+"/M000", "A001", "-o", dir, "-c", cfg)
	if err != nil {
		t.Fatal(err)
	}
	paths := strings.Fields(out)
	if len(paths) != 8 || paths[0] != filepath.Join(dir, ex+"_M000_timeline.png") {
		t.Fatalf("plot printed %q", out)
	}
	for _, p := range paths {
		if !strings.HasSuffix(p, ".png") {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() != 960 || img.Bounds().Dy() != 576 {
			t.Fatalf("%s: %v", p, err)
		}
	}

	errs := []struct {
		args []string
		want string
	}{
		{[]string{"jobs", "show", ex + "/M404"}, "no such job " + ex + "/M404"},
		{[]string{"jobs", "show", "R404"}, "no such job R404"},
		{[]string{"jobs", "show", "a/b/c"}, "is not <executor>/<job>"},
		{[]string{"jobs", "show", ex + "/M000", "-f", "xml"}, `unknown format "xml"`},
		{[]string{"jobs", "show"}, "accepts 1 arg"},
		{[]string{"jobs", "plot", "nobody-0/M000"}, "no such job"},
		{[]string{"jobs", "list", "-s", "nosuch"}, "unknown storage backend"},
	}
	for _, e := range errs {
		if _, err := run(t, append(e.args, "-c", cfg)...); err == nil || !strings.Contains(err.Error(), e.want) {
			t.Errorf("%v: %v, want %q", e.args, err, e.want)
		}
	}
}

// On localhost `jobs rerun` would run the calls in the CLI's own binary,
// which lacks the user's functions: it refuses, and the records stay as
// they were; `jobs list` names a malformed job and lists the others.
func TestJobsRerunLocalhostRefused(t *testing.T) {
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
	fs, err := lithops.Map(ctx, e, shout, []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Results(ctx); err != nil {
		t.Fatal(err)
	}
	e.Close()
	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The job as the user's program wrote it: a function the CLI lacks,
	// and a failed call.
	jobKey := "lithops.jobs/" + e.ID() + "/" + fs.At(0).JobID() + "/job.json"
	raw, err := st.GetBytes(ctx, st.Bucket(), jobKey)
	if err != nil {
		t.Fatal(err)
	}
	raw = []byte(strings.Replace(string(raw), `"cli_test_shout"`, `"users_own_function"`, 1))
	st.PutBytes(ctx, st.Bucket(), jobKey, raw)
	statusKey := "lithops.jobs/" + e.ID() + "/" + fs.At(0).JobID() + "/status.00001.json"
	failed := []byte(strings.Replace(string(mustGet(t, st, statusKey)), `"state":"success"`, `"state":"error","error":{"kind":"user","type":"*errors.errorString","message":"the original failure"}`, 1))
	st.Delete(ctx, st.Bucket(), statusKey)
	st.PutBytes(ctx, st.Bucket(), statusKey, failed)

	_, err = run(t, "jobs", "rerun", "-c", cfgPath, e.ID()+"/"+fs.At(0).JobID())
	if err == nil || !strings.Contains(err.Error(), "localhost.runtime") || !errors.Is(err, lithops.ErrMismatch) {
		t.Fatalf("rerun on localhost from the CLI: %v", err)
	}
	if got := mustGet(t, st, statusKey); string(got) != string(failed) {
		t.Fatalf("the original failure record was replaced: %s", got)
	}
	// A malformed job is skipped and named; the others are listed.
	st.PutBytes(ctx, st.Bucket(), "lithops.jobs/"+e.ID()+"/M099/job.json", []byte(`{"x": not json`))
	out, err := run(t, "jobs", "list", "-c", cfgPath)
	if err != nil || !strings.Contains(out, fs.At(0).JobID()) {
		t.Fatalf("jobs list with a malformed job: %q, %v", out, err)
	}
}

func mustGet(t *testing.T, st *storage.Storage, key string) []byte {
	t.Helper()
	b, err := st.GetBytes(context.Background(), st.Bucket(), key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// `jobs rerun E/J` re-runs J and leaves every record of E in place: it
// attaches, and an attached executor deletes only jobs submitted through it
// (it used to delete all of E's jobs on its way out).
func TestJobsRerunKeepsRecords(t *testing.T) {
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
	var jobs []string
	for _, in := range [][]int{{1, 2}, {3}} {
		fs, err := lithops.Map(ctx, e, shout, in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fs.Results(ctx); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, fs.At(0).JobID())
	}
	e.Close()
	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Call 1 of the first job failed: rerun it from the CLI (the test
	// binary registers shout, so its workers can run it).
	statusKey := "lithops.jobs/" + e.ID() + "/" + jobs[0] + "/status.00001.json"
	failed := strings.Replace(string(mustGet(t, st, statusKey)), `"state":"success"`, `"state":"error","error":{"kind":"user","message":"failed once"}`, 1)
	st.Delete(ctx, st.Bucket(), statusKey)
	st.PutBytes(ctx, st.Bucket(), statusKey, []byte(failed))
	before, err := st.List(ctx, st.Bucket(), "lithops.jobs/"+e.ID()+"/"+jobs[1]+"/")
	if err != nil || len(before) == 0 {
		t.Fatalf("records of %s: %d, %v", jobs[1], len(before), err)
	}
	// The CLI runs with the default data_cleaner (on).
	cliCfg := writeConfig(t, "localhost:\n  storage_root: "+root+"\n")
	out, err := run(t, "jobs", "rerun", "-c", cliCfg, e.ID()+"/"+jobs[0])
	if err != nil || !strings.Contains(out, "re-running 1 call(s)") {
		t.Fatalf("jobs rerun: %q, %v", out, err)
	}
	for _, job := range jobs {
		infos, err := st.List(ctx, st.Bucket(), "lithops.jobs/"+e.ID()+"/"+job+"/")
		if err != nil || len(infos) == 0 {
			t.Fatalf("records of %s after jobs rerun: %d, %v", job, len(infos), err)
		}
	}
	if got := string(mustGet(t, st, statusKey)); !strings.Contains(got, `"state":"success"`) {
		t.Fatalf("the rerun call's status: %s", got)
	}
}
