package main

import (
	"context"
	"strings"
	"testing"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
)

// pythonTree is what Python Lithops leaves in the same localhost bucket
// (lithops.jobs/ and lithops.runtimes/ of /tmp/lithops-root/storage).
var pythonTree = []string{
	"lithops.jobs/6a4d52-0/0c2f3e4b5a6d7e8f9a0b1c2d3e4f5a6b.func.pickle",
	"lithops.jobs/6a4d52-0-M000/aggdata.pickle",
	"lithops.jobs/6a4d52-0-M000/00000/status.json",
	"lithops.jobs/6a4d52-0-M000/00000/output.pickle",
	"lithops.jobs/6a4d52-0-M000/00000/1a2b3c4d5e6f.init",
	"lithops.jobs/6a4d52-0-M000/00001/status.json",
	"lithops.jobs/6a4d52-0-A001/00000/status.json",
	"lithops.jobs/6a4d52-0-M000-00002-0-M000/00000/status.json",
	"lithops.jobs/tmp/6a4d52/cloudobject_0",
	"lithops.runtimes/localhost/3.7.1/python3.meta.json",
	"lithops.runtimes/azure_functions/3.7.1/lithops-runtime-abc.meta.json",
}

// TestPythonLithopsTreeLeftAlone: with Python Lithops' records in the same
// bucket, jobs list/show, job list, logs and clean never fail and never
// delete any of them; lithops-go's own jobs are listed, shown by every key
// form, and cleaned.
func TestPythonLithopsTreeLeftAlone(t *testing.T) {
	root := t.TempDir()
	cfgPath := writeConfig(t, "lithops:\n  data_cleaner: false\nlocalhost:\n  storage_root: "+root+"\n")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, k := range pythonTree {
		if err := st.PutBytes(ctx, st.Bucket(), k, []byte(`{"exception": false}`)); err != nil {
			t.Fatal(err)
		}
	}
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := lithops.Map(ctx, e, hello, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Results(ctx); err != nil {
		t.Fatal(err)
	}
	id := e.ID()
	e.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"jobs", "list"}, id},
		{[]string{"job", "list"}, id},
		{[]string{"jobs", "show", id + "/M000"}, "calls:     2: 2 done"},
		{[]string{"jobs", "show", id + "-M000"}, "calls:     2: 2 done"},
		{[]string{"jobs", "show", "M000"}, "calls:     2: 2 done"},
		{[]string{"logs", id + "-M000"}, ""},
		{[]string{"logs", "get", "M000/1"}, ""},
		{[]string{"clean", "-e", "6a4d52-0"}, "deleted 0 job(s), 0 object(s)"},
		{[]string{"clean", "--older-than", "1ns"}, "deleted 1 job(s)"},
		{[]string{"jobs", "list"}, ""},
		{[]string{"clean", "-a"}, "deleted 0 job(s), 0 object(s)"},
	} {
		out, err := run(t, append(tc.args, "-c", cfgPath)...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("lithops %s: %q, %v; want %q in it", strings.Join(tc.args, " "), out, err, tc.want)
		}
		for _, k := range pythonTree {
			if _, err := st.Head(ctx, st.Bucket(), k); err != nil {
				t.Fatalf("after lithops %s, Python Lithops' %s: %v", strings.Join(tc.args, " "), k, err)
			}
		}
	}
	if infos, _ := st.List(ctx, st.Bucket(), protocol.ExecutorPrefix(id)); len(infos) != 0 {
		t.Errorf("lithops-go's records left: %d", len(infos))
	}
}
