package lithops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
)

// sharedExecutors returns two executors on one storage root whose job data
// outlives Close (data_cleaner off).
func sharedExecutors(t *testing.T) (*lithops.Executor, *lithops.Executor) {
	t.Helper()
	cfg := config.Default()
	cfg.Localhost.StorageRoot = t.TempDir()
	off := false
	cfg.Lithops.DataCleaner = &off
	var out [2]*lithops.Executor
	for i := range out {
		e, err := lithops.NewExecutor(context.Background(), lithops.WithConfig(cfg))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		out[i] = e
	}
	return out[0], out[1]
}

func TestJobSummaryAndCalls(t *testing.T) {
	ctx := ctxT(t)
	e, other := sharedExecutors(t)
	fs, err := lithops.Map(ctx, e, misbehave, []string{"a", "error", "b", "c"}, lithops.WithRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lithops.Wait(ctx, fs); err != nil {
		t.Fatal(err)
	}
	job := fs.At(0).JobID()
	s, err := e.JobSummary(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if s.Executor != e.ID() || s.Job != job || s.Function != "misbehave" || s.Calls != 4 || s.Done != 4 || s.Failed != 1 ||
		s.Pending != 0 || s.Attempts != 5 || s.Retried != 1 || s.Workers < 1 || s.ColdStarts < 1 || s.ColdStarts > s.Workers {
		t.Fatalf("summary: %+v", s)
	}
	if !(s.MinDuration > 0 && s.MinDuration <= s.MedianDuration && s.MedianDuration <= s.P90Duration && s.P90Duration <= s.MaxDuration && s.MaxDuration <= s.WallTime) {
		t.Fatalf("durations out of order: %+v", s)
	}

	calls, err := e.JobCalls(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 4 {
		t.Fatalf("%d calls", len(calls))
	}
	for i, c := range calls {
		fst, ok := fs.At(i).Stats()
		if !ok || c.CallID != fs.At(i).CallID() || c.Worker != fst.Worker || !c.Started.Equal(fst.Started) || !c.Finished.Equal(fst.Finished) ||
			c.PeakRSS != fst.PeakRSS || c.ColdStart != fst.ColdStart || c.ExecTime != fst.ExecTime || c.Duration() <= 0 {
			t.Errorf("call %d: JobCalls %+v, Future.Stats %+v", i, c, fst)
		}
		want := lithops.StateSuccess
		if i == 1 {
			want = lithops.StateError
		}
		if c.State != want {
			t.Errorf("call %d state %s, want %s", i, c.State, want)
		}
	}
	if c := calls[1]; c.Attempts != 2 || c.Attempt != 1 || c.Err == nil || !errors.Is(c.Err, lithops.ErrUser) || !strings.Contains(c.Err.Error(), "boom: user error") {
		t.Fatalf("failed call: %+v (err %v)", c, c.Err)
	}

	// Another executor on the same storage reads it by <executor>/<job>,
	// also once the first is closed.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := other.JobSummary(ctx, e.ID()+"/"+job)
	if err != nil || s2 != s {
		t.Fatalf("from another executor: %+v, %v; want %+v", s2, err, s)
	}
	for _, f := range []string{"table", "csv", "json", ""} {
		var buf bytes.Buffer
		if err := other.WriteJobStats(ctx, &buf, e.ID()+"/"+job, f); err != nil {
			t.Fatalf("format %q: %v", f, err)
		}
		out := buf.String()
		switch f {
		case "csv":
			if strings.Count(out, "\n") != 5 || !strings.Contains(out, ",error,2,") {
				t.Errorf("csv:\n%s", out)
			}
		case "json":
			var doc struct {
				Summary struct{ Calls, Failed int }
				Calls   []struct{ State string }
			}
			if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || doc.Summary.Calls != 4 || doc.Summary.Failed != 1 || len(doc.Calls) != 4 {
				t.Errorf("json: %v\n%s", err, out)
			}
		default:
			if !strings.HasPrefix(out, "job:       "+e.ID()+"/"+job+" (function misbehave)\n") || !strings.Contains(out, "user: boom: user error") {
				t.Errorf("table:\n%s", out)
			}
		}
	}
}

func TestJobSummaryErrors(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	tests := []struct {
		job, want string
	}{
		{"M999", "no such job " + e.ID() + "/M999"},
		{"nobody-0/M000", "no such job nobody-0/M000"},
		{"a/b/c", `job key "a/b/c" is not <executor>/<job>`},
		{"../M000", "is not <executor>/<job>"},
		{"", "malformed job key"},
	}
	for _, tt := range tests {
		if _, err := e.JobSummary(ctx, tt.job); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("JobSummary(%q): %v, want %q", tt.job, err, tt.want)
		}
		if _, err := e.JobCalls(ctx, tt.job); err == nil {
			t.Errorf("JobCalls(%q) succeeded", tt.job)
		}
	}
	if err := e.WriteJobStats(ctx, &bytes.Buffer{}, "M000", "xml"); err == nil || !strings.Contains(err.Error(), `unknown format "xml"`) {
		t.Errorf("format xml: %v", err)
	}
}
