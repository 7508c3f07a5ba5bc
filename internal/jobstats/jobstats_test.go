package jobstats

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/memory"
)

var t0 = time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// status returns a final record of call id that ran from start to end (ms
// after t0).
func status(id string, state protocol.State, attempt int, worker string, cold bool, start, end int) *protocol.Status {
	s := &protocol.Status{
		Version: protocol.Version, ExecutorID: "ex-0", JobID: "M000", CallID: id, Attempt: attempt, State: state,
		WorkerID: worker, ColdStart: cold,
		Start: t0.Add(ms(start)), FuncStart: t0.Add(ms(start + 1)), FuncEnd: t0.Add(ms(end - 1)), End: t0.Add(ms(end)),
		PeakRSS: 10 << 20, ResultSize: 12,
	}
	if state == protocol.StateError {
		s.Error = &protocol.ErrorRecord{Kind: protocol.KindUser, Message: "boom\nsecond line"}
	} else {
		s.HasResult, s.Result = true, []byte("x")
	}
	return s
}

// fixture stores job ex-0/M000 of 6 calls: 00000 success (cold, w1),
// 00001 error after a retry (w2), 00002 success (w1), 00003 running (no
// final record), 00004 pending with a failed attempt, 00005 unreadable.
func fixture(t *testing.T) *storage.Storage {
	t.Helper()
	ctx := context.Background()
	st := storage.New(memory.New(), "memory", "lithops")
	if err := st.CreateBucket(ctx, "lithops"); err != nil {
		t.Fatal(err)
	}
	put := func(key string, v any) {
		var raw []byte
		switch v := v.(type) {
		case []byte:
			raw = v
		default:
			var err error
			if raw, err = json.Marshal(v); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.PutBytes(ctx, "lithops", key, raw); err != nil {
			t.Fatal(err)
		}
	}
	job := &protocol.Job{Version: protocol.Version, ExecutorID: "ex-0", JobID: "M000", Function: "square", Codec: "gob",
		Calls: 6, Bucket: "lithops", Inputs: make([]protocol.Range, 6), Created: t0}
	put(protocol.JobKey("ex-0", "M000"), job)
	put(protocol.InputsKey("ex-0", "M000"), []byte("inputs"))
	put(protocol.StatusKey("ex-0", "M000", "00000"), status("00000", protocol.StateSuccess, 0, "w1", true, 100, 200))
	put(protocol.AttemptKey("ex-0", "M000", "00001", 0), status("00001", protocol.StateError, 0, "w2", true, 100, 150))
	put(protocol.StatusKey("ex-0", "M000", "00001"), status("00001", protocol.StateError, 1, "w2", false, 160, 560))
	put(protocol.StatusKey("ex-0", "M000", "00002"), status("00002", protocol.StateSuccess, 0, "w1", false, 210, 260))
	running := status("00003", protocol.StateRunning, 0, "w3", false, 300, 300)
	put(protocol.StatusKey("ex-0", "M000", "00003"), running)
	put(protocol.AttemptKey("ex-0", "M000", "00004", 0), status("00004", protocol.StateError, 0, "w3", false, 100, 110))
	put(protocol.StatusKey("ex-0", "M000", "00005"), []byte("{not json"))
	put(protocol.StatusKey("ex-0", "M000", "00099"), status("00099", protocol.StateSuccess, 0, "w1", false, 1, 2)) // beyond the job
	put(protocol.ResultKey("ex-0", "M000", "00000", 0, "t0"), []byte("result"))
	// A second job, and keys without a manifest.
	job2 := *job
	job2.ExecutorID, job2.JobID, job2.Function, job2.Calls, job2.Inputs, job2.Created = "ex-1", "A000", "hello", 1, make([]protocol.Range, 1), t0.Add(time.Minute)
	put(protocol.JobKey("ex-1", "A000"), &job2)
	s := status("00000", protocol.StateSuccess, 0, "w9", true, 60_100, 60_300)
	s.ExecutorID, s.JobID = "ex-1", "A000"
	put(protocol.StatusKey("ex-1", "A000", "00000"), s)
	put(protocol.InputsKey("ex-2", "M003"), []byte("orphan"))
	return st
}

func TestLoad(t *testing.T) {
	st := fixture(t)
	r, err := Load(context.Background(), st, "lithops", "ex-0", "M000")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		state    string
		attempts int
		worker   string
		dur      time.Duration
	}{
		{StateSuccess, 1, "w1", ms(100)},
		{StateError, 2, "w2", ms(400)},
		{StateSuccess, 1, "w1", ms(50)},
		{StatePending, 0, "", 0},
		{StatePending, 1, "", 0},
		{StateUnreadable, 0, "", 0},
	}
	if len(r.Calls) != len(want) {
		t.Fatalf("%d calls, want %d", len(r.Calls), len(want))
	}
	for i, w := range want {
		c := r.Calls[i]
		if c.ID != protocol.CallID(i) || c.State != w.state || c.Attempts != w.attempts || c.Worker != w.worker || c.Duration() != w.dur {
			t.Errorf("call %d: %+v, want %+v", i, c, w)
		}
	}
	if c := r.Calls[1]; c.Error == nil || c.Error.Kind != protocol.KindUser || c.ExecTime() != ms(398) {
		t.Errorf("failed call: %+v", c)
	}
	if c := r.Calls[5]; c.Error == nil || !strings.Contains(c.Error.Message, "unreadable: status record is not valid JSON") {
		t.Errorf("unreadable call: %+v", c)
	}
	s := r.Summary
	got := []any{s.Key(), s.Function, s.Calls, s.Done, s.Failed, s.Pending, s.Unreadable, s.Attempts, s.Retried, s.ColdStarts, s.Workers,
		s.MinDuration, s.MedianDuration, s.P90Duration, s.MaxDuration, s.WallTime, s.FirstStart}
	exp := []any{"ex-0/M000", "square", 6, 3, 1, 2, 1, 5, 1, 1, 2, ms(50), ms(100), ms(400), ms(400), ms(560), t0.Add(ms(100))}
	for i := range got {
		if got[i] != exp[i] {
			t.Errorf("summary field %d = %v, want %v (summary %+v)", i, got[i], exp[i], s)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	st := fixture(t)
	ctx := context.Background()
	tests := []struct {
		name, e, j string
		is         error
		want       string
	}{
		{"missing job", "ex-0", "M404", ErrNoJob, "no such job ex-0/M404 in memory://lithops"},
		{"no manifest", "ex-2", "M003", ErrNoJob, "no such job"},
		{"path in id", "..", "M000", nil, "malformed job key"},
		{"empty", "", "", nil, "malformed job key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(ctx, st, "lithops", tt.e, tt.j)
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if err := st.PutBytes(ctx, "lithops", protocol.JobKey("ex-3", "M000"), []byte(`{"protocol":3}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, st, "lithops", "ex-3", "M000"); err == nil || !strings.Contains(err.Error(), "memory://lithops/lithops.jobs/ex-3/M000/job.json: job manifest lacks executor_id") {
		t.Fatalf("invalid manifest: %v", err)
	}
	moved := `{"protocol":3,"executor_id":"../x","job_id":"M000","function":"f","calls":0,"inputs":[]}`
	if err := st.PutBytes(ctx, "lithops", protocol.JobKey("ex-4", "M000"), []byte(moved)); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, st, "lithops", "ex-4", "M000"); err == nil || !strings.Contains(err.Error(), "names job ../x/M000") {
		t.Fatalf("manifest of another job: %v", err)
	}
	if _, err := Load(ctx, st, "nobucket", "ex-0", "M000"); err == nil || !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("missing bucket: %v", err)
	}
}

func TestSplitKey(t *testing.T) {
	tests := []struct {
		key, e, j string
		ok        bool
	}{
		{"ex-0/M000", "ex-0", "M000", true},
		{"M000", "", "", false},
		{"ex-0/", "", "", false},
		{"/M000", "", "", false},
		{"ex-0/M000/00001", "", "", false},
		{"../M000", "", "", false},
	}
	for _, tt := range tests {
		e, j, err := SplitKey(tt.key)
		if (err == nil) != tt.ok || e != tt.e || j != tt.j {
			t.Errorf("SplitKey(%q) = %q, %q, %v", tt.key, e, j, err)
		}
	}
}

func TestResolve(t *testing.T) {
	st := fixture(t)
	ctx := context.Background()
	if err := st.PutBytes(ctx, "lithops", protocol.JobKey("ex-9", "M000"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key, e, j, err string
	}{
		{"ex-0/M000", "ex-0", "M000", ""},
		{"A000", "ex-1", "A000", ""},
		{"M000", "", "", "job M000 is ambiguous: ex-0/M000, ex-9/M000; name one as <executor>/<job>"},
		{"R007", "", "", "no such job R007 in memory://lithops"},
		{"..", "", "", "is not <executor>/<job>"},
		{"a/b/c", "", "", "is not <executor>/<job>"},
	}
	for _, tt := range tests {
		e, j, err := Resolve(ctx, st, "lithops", tt.key)
		if e != tt.e || j != tt.j || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("Resolve(%q) = %q, %q, %v; want %q, %q, %q", tt.key, e, j, err, tt.e, tt.j, tt.err)
		}
	}
}

func TestPercentile(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{d[:1], 90, 1},
		{d, 50, 5},
		{d, 90, 9},
		{d, 91, 10},
		{d, 100, 10},
		{d, 0, 1},
		{d, -5, 1},
		{d, 500, 10},
		{d[:3], 50, 2},
	}
	for _, tt := range tests {
		if got := Percentile(tt.in, tt.p); got != tt.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tt.in, tt.p, got, tt.want)
		}
	}
}

func TestSummarizeEmpty(t *testing.T) {
	s := Summarize(nil, nil)
	if s != (Summary{}) {
		t.Fatalf("empty summary: %+v", s)
	}
}

func TestList(t *testing.T) {
	st := fixture(t)
	jobs, err := List(context.Background(), st, "lithops")
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].Key() != "ex-0/M000" || jobs[1].Key() != "ex-1/A000" || jobs[1].Done != 1 || jobs[0].Failed != 1 {
		t.Fatalf("jobs: %+v", jobs)
	}
	var buf bytes.Buffer
	if err := WriteList(&buf, jobs); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"EXECUTOR  JOB   FUNCTION  CALLS  DONE  FAILED  PENDING  CREATED\n" +
		"ex-0      M000  square    6      3     1       2        2026-11-27 15:00:00.000 UTC\n" +
		"ex-1      A000  hello     1      1     0       0        2026-11-27 15:01:00.000 UTC\n" +
		"Total jobs: 2\n"
	if buf.String() != want {
		t.Errorf("list:\n%s\nwant:\n%s", buf.String(), want)
	}
	empty := storage.New(memory.New(), "memory", "b")
	empty.CreateBucket(context.Background(), "b")
	if jobs, err := List(context.Background(), empty, "b"); err != nil || len(jobs) != 0 {
		t.Fatalf("empty bucket: %v, %v", jobs, err)
	}
}

func TestWriteTable(t *testing.T) {
	r, err := Load(context.Background(), fixture(t), "lithops", "ex-0", "M000")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, r, "table"); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"job:       ex-0/M000 (function square)\n" +
		"created:   2026-11-27 15:00:00.000 UTC\n" +
		"calls:     6: 3 done, 1 failed, 2 pending, 1 unreadable\n" +
		"attempts:  5 (1 call retried)\n" +
		"workers:   2 (1 cold start)\n" +
		"duration:  min 50ms, median 100ms, p90 400ms, max 400ms\n" +
		"wall time: 560ms (submission to last call end)\n" +
		"\n" +
		"CALL   STATE       ATTEMPTS  WORKER  COLD  START    DURATION  EXEC   PEAK RSS  ERROR\n" +
		"00000  success     1         w1      yes   +0.100s  100ms     98ms   10.0 MiB\n" +
		"00001  error       2         w2      no    +0.160s  400ms     398ms  10.0 MiB  user: boom\n" +
		"00002  success     1         w1      no    +0.210s  50ms      48ms   10.0 MiB\n" +
		"00003  pending     0         -       -     -        -         -      -\n" +
		"00004  pending     1         -       -     -        -         -      -\n" +
		"00005  unreadable  0         -       -     -        -         -      -         record: unreadable: status record is not valid JSON: invalid character 'n' looking for beginning of object key string\n"
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestWriteCSVAndJSON(t *testing.T) {
	r, err := Load(context.Background(), fixture(t), "lithops", "ex-0", "M000")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, r, "CSV"); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 7 || strings.Join(rows[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("csv rows: %q", rows)
	}
	if got := strings.Join(rows[2], ","); got != "ex-0,M000,square,00001,error,2,w2,false,2026-11-27T15:00:00.16Z,2026-11-27T15:00:00.161Z,2026-11-27T15:00:00.559Z,2026-11-27T15:00:00.56Z,0.400000,0.398000,12,10485760,user,boom\nsecond line" {
		t.Errorf("csv row 2: %s", got)
	}
	buf.Reset()
	if err := Write(&buf, r, "json"); err != nil {
		t.Fatal(err)
	}
	var doc JSONReport
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Summary.Calls != 6 || doc.Summary.P90Duration != 0.4 || len(doc.Calls) != 6 || doc.Calls[1].ErrorKind != "user" || doc.Calls[3].State != "pending" || !doc.Calls[0].ColdStart {
		t.Errorf("json: %s", buf.String())
	}
	if err := Write(&buf, r, "xml"); err == nil || !strings.Contains(err.Error(), `unknown format "xml" (known: table, csv, json)`) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestFormatHelpers(t *testing.T) {
	durs := map[time.Duration]string{0: "0s", -1: "0s", 850 * time.Microsecond: "850µs", ms(15): "15ms", 1234 * time.Millisecond: "1.234s", 123456 * time.Millisecond: "2m3.5s"}
	for d, want := range durs {
		if got := Dur(d); got != want {
			t.Errorf("Dur(%v) = %q, want %q", d, got, want)
		}
	}
	sizes := map[int64]string{0: "-", 512: "512 B", 1536: "1.5 KiB", 10 << 20: "10.0 MiB", 1 << 62: "4.0 EiB"}
	for n, want := range sizes {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// One malformed job does not break the list: it is skipped and named.
func TestListSkipsBadJob(t *testing.T) {
	ctx := context.Background()
	st := fixture(t)
	for key, body := range map[string]string{
		protocol.JobKey("ex-2", "M000"): `{"x": not json`,
		protocol.JobKey("ex-3", "A000"): `{"protocol": 99, "executor_id": "ex-3", "job_id": "A000"}`,
	} {
		if err := st.PutBytes(ctx, "lithops", key, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	jobs, skipped, err := ListAll(ctx, st, "lithops")
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || len(skipped) != 2 || skipped[0].Key != "ex-2/M000" || skipped[1].Key != "ex-3/A000" {
		t.Fatalf("jobs %d, skipped %+v", len(jobs), skipped)
	}
}

// TestLoadBatchRecords: calls recorded in batch records count as done; a
// call's own record stands over a batch record; an unreadable batch record
// makes its first call unreadable and leaves the others pending.
func TestLoadBatchRecords(t *testing.T) {
	ctx := context.Background()
	st := storage.New(memory.New(), "memory", "lithops")
	st.CreateBucket(ctx, "lithops")
	job := &protocol.Job{Version: protocol.Version, ExecutorID: "ex-0", JobID: "M000", Function: "square", Codec: "gob",
		Calls: 5, Bucket: "lithops", Inputs: make([]protocol.Range, 5), Created: t0}
	raw, _ := json.Marshal(job)
	st.PutBytes(ctx, "lithops", protocol.JobKey("ex-0", "M000"), raw)
	b := protocol.StatusBatch{Version: protocol.Version}
	for _, id := range []string{"00000", "00001", "00003"} {
		b.Statuses = append(b.Statuses, *status(id, protocol.StateSuccess, 0, "w1", false, 100, 200))
	}
	raw, _ = json.Marshal(b)
	st.PutBytes(ctx, "lithops", protocol.BatchKey("ex-0", "M000", protocol.Call{ID: "00000"}), raw)
	raw, _ = json.Marshal(status("00003", protocol.StateError, 0, "w2", false, 100, 300))
	st.PutBytes(ctx, "lithops", protocol.StatusKey("ex-0", "M000", "00003"), raw)
	st.PutBytes(ctx, "lithops", protocol.BatchKey("ex-0", "M000", protocol.Call{ID: "00002"}), []byte("{garbage"))
	r, err := Load(ctx, st, "lithops", "ex-0", "M000")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{StateSuccess, StateSuccess, StateUnreadable, StateError, StatePending}
	for i, w := range want {
		if c := r.Calls[i]; c.State != w {
			t.Errorf("call %d: %+v, want %s", i, c, w)
		}
	}
	if c := r.Calls[2]; c.Error == nil || !strings.Contains(c.Error.Message, "unreadable batch record") {
		t.Errorf("call of an unreadable batch record: %+v", c.Error)
	}
	if s := r.Summary; s.Done != 3 || s.Failed != 1 || s.Pending != 1 || s.Unreadable != 1 {
		t.Errorf("summary %+v", r.Summary)
	}
}
