package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/driver"
	"github.com/lithops-go/lithops/storage/memory"
)

// TestBatchRecords: with BatchRecords, the successes of a request of
// several calls are recorded together, a failure alone; every call is
// answered in order with the status recorded for it, found by Lookup; a
// batch record another execution wrote stands; a batch that cannot be
// written leaves each call's status in its answer for the pool to record.
func TestBatchRecords(t *testing.T) {
	tests := []struct {
		name         string
		inputs       []string
		batchRecords bool
		faulty       string // "put": writes of status records fail; "putlate": they land, then fail
		before       string // the result of call 00000 in a batch record written before
		want         []string
		wantKeys     []string // status keys in storage afterwards
	}{
		{name: "successes in one batch", inputs: []string{"a", "b", "c"}, batchRecords: true,
			want: []string{"a", "b", "c"}, wantKeys: []string{"00000-0.json"}},
		{name: "a failure alone", inputs: []string{"a", "fail", "c", "d"}, batchRecords: true,
			want: []string{"a", "error", "c", "d"}, wantKeys: []string{"00000.json", "00001.json", "00002-0.json"}},
		{name: "one call per record without BatchRecords", inputs: []string{"a", "b"},
			want: []string{"a", "b"}, wantKeys: []string{"00000.json", "00001.json"}},
		{name: "a batch recorded before stands", inputs: []string{"a", "b"}, batchRecords: true, before: "old",
			want: []string{"old", "b"}, wantKeys: []string{"00000-0.json", "00001.json"}},
		{name: "a batch that cannot be written", inputs: []string{"a", "b"}, batchRecords: true, faulty: "put",
			want: []string{"unrecorded a", "unrecorded b"}},
		{name: "a batch written, its answer lost", inputs: []string{"a", "b"}, batchRecords: true, faulty: "putlate",
			want: []string{"a", "b"}, wantKeys: []string{"00000-0.json"}},
	}
	// Which calls share a batch depends on how fast they run; here every
	// success of a request waits for the next failure or the last call.
	defer func(d time.Duration) { flushDelay = d }(flushDelay)
	flushDelay = time.Hour
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var d driver.Driver = memory.New()
			clean := storage.New(d, "memory", "b")
			clean.CreateBucket(ctx, "b")
			if tc.faulty != "" {
				d = &faultyDriver{Driver: d, op: tc.faulty, key: "/status."}
			}
			st := storage.New(d, "memory", "b")
			funcs := runFuncs(os.Stderr)
			w := New("w1", st, funcs, nil)
			job := protocol.Job{Version: protocol.Version, ExecutorID: "e", JobID: "B000", Function: "failon", Signature: funcs["failon"].Signature,
				Registry: cloneRegistry(w.Registry), Calls: len(tc.inputs), Bucket: "b", Inputs: make([]protocol.Range, len(tc.inputs))}
			raw, _ := json.Marshal(job)
			clean.PutBytes(ctx, "b", protocol.JobKey("e", "B000"), raw)
			req := PipeRequest{BatchRecords: tc.batchRecords, Invocation: protocol.Invocation{Version: protocol.Version, Bucket: "b", ExecutorID: "e", JobID: "B000"}}
			for i, in := range tc.inputs {
				req.Invocation.Calls = append(req.Invocation.Calls, protocol.Call{ID: protocol.CallID(i), Index: i, HasInput: true, Input: []byte(in)})
			}
			if tc.before != "" {
				old := protocol.Status{Version: protocol.Version, ExecutorID: "e", JobID: "B000", CallID: "00000", State: protocol.StateSuccess, HasResult: true, Result: []byte(tc.before)}
				b, _ := json.Marshal(protocol.StatusBatch{Version: protocol.Version, Statuses: []protocol.Status{old}})
				clean.PutBytes(ctx, "b", protocol.BatchKey("e", "B000", protocol.Call{ID: "00000"}), b)
			}
			line, _ := json.Marshal(req)
			var out bytes.Buffer
			if err := ServePipe(ctx, w, bytes.NewReader(append(line, '\n')), &out); err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(&out)
			for i, want := range tc.want {
				var resp PipeResponse
				if err := dec.Decode(&resp); err != nil {
					t.Fatalf("answer %d: %v", i, err)
				}
				s := resp.Status
				switch unrec, isUnrec := strings.CutPrefix(want, "unrecorded "); {
				case s == nil || s.CallID != protocol.CallID(i):
					t.Fatalf("answer %d: %+v, want one of call %s", i, resp, protocol.CallID(i))
				case isUnrec:
					if resp.Error == "" || string(s.Result) != unrec {
						t.Fatalf("answer %d: %+v, want the unrecorded result %q with an error", i, resp, unrec)
					}
					continue
				case resp.Error != "":
					t.Fatalf("answer %d: error %s", i, resp.Error)
				case want == "error":
					if s.State != protocol.StateError {
						t.Fatalf("answer %d: %+v, want a failure", i, s)
					}
				case string(s.Result) != want:
					t.Fatalf("answer %d: result %q, want %q", i, s.Result, want)
				}
				rec, err := Lookup(ctx, clean, "b", "e", "B000", s.CallID)
				if err != nil || rec.State != s.State || string(rec.Result) != string(s.Result) {
					t.Fatalf("call %s answered %+v, recorded %+v (%v)", s.CallID, s, rec, err)
				}
			}
			if dec.More() {
				t.Fatal("more answers than calls")
			}
			infos, _ := clean.List(ctx, "b", protocol.StatusPrefix("e", "B000"))
			var keys []string
			for _, o := range infos {
				keys = append(keys, strings.TrimPrefix(o.Key, protocol.StatusPrefix("e", "B000")))
			}
			slices.Sort(keys)
			if !slices.Equal(keys, tc.wantKeys) {
				t.Fatalf("status records %q, want %q", keys, tc.wantKeys)
			}
			if _, err := Lookup(ctx, clean, "b", "e", "B000", "00099"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Lookup of a call without a record: %v, want not found", err)
			}
		})
	}
}

// watchPuts calls onPut before each write.
type watchPuts struct {
	driver.Driver
	onPut func(key string)
}

func (d *watchPuts) Put(ctx context.Context, bucket, key string, r io.Reader, opts driver.PutOptions) error {
	d.onPut(key)
	return d.Driver.Put(ctx, bucket, key, r, opts)
}

// TestAnswersBeforeBatch: every answer before a batch record is in the
// pipe when the batch is written (a pool whose worker dies looks for the
// batch holding the first call it has no answer for).
func TestAnswersBeforeBatch(t *testing.T) {
	defer func(d time.Duration) { flushDelay = d }(flushDelay)
	flushDelay = time.Hour
	ctx := context.Background()
	var out bytes.Buffer
	var linesAtBatch = -1
	d := &watchPuts{Driver: memory.New(), onPut: func(key string) {
		if strings.HasSuffix(key, "-0.json") {
			linesAtBatch = bytes.Count(out.Bytes(), []byte("\n"))
		}
	}}
	st := storage.New(d, "memory", "b")
	st.CreateBucket(ctx, "b")
	funcs := runFuncs(os.Stderr)
	w := New("w1", st, funcs, nil)
	job := protocol.Job{Version: protocol.Version, ExecutorID: "e", JobID: "B001", Function: "failon", Signature: funcs["failon"].Signature,
		Registry: cloneRegistry(w.Registry), Calls: 3, Bucket: "b", Inputs: make([]protocol.Range, 3)}
	raw, _ := json.Marshal(job)
	st.PutBytes(ctx, "b", protocol.JobKey("e", "B001"), raw)
	req := PipeRequest{BatchRecords: true, Invocation: protocol.Invocation{Version: protocol.Version, Bucket: "b", ExecutorID: "e", JobID: "B001"}}
	for i, in := range []string{"fail", "b", "c"} {
		req.Invocation.Calls = append(req.Invocation.Calls, protocol.Call{ID: protocol.CallID(i), Index: i, HasInput: true, Input: []byte(in)})
	}
	line, _ := json.Marshal(req)
	if err := ServePipe(ctx, w, bytes.NewReader(append(line, '\n')), &out); err != nil {
		t.Fatal(err)
	}
	if linesAtBatch != 1 {
		t.Fatalf("%d answers were in the pipe when the batch of calls 1 and 2 was written, want the failure's 1", linesAtBatch)
	}
}
