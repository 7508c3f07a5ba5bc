package protocol

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestMalformedRecords(t *testing.T) {
	tests := []struct {
		name, kind, json, want string
	}{
		{"job: old protocol", "job", `{"protocol":0,"executor_id":"e","job_id":"j","function":"f","calls":0,"inputs":[]}`, "protocol version 0"},
		{"job: no function", "job", `{"protocol":3,"executor_id":"e","job_id":"j","calls":0,"inputs":[]}`, "lacks function"},
		{"job: ranges vs calls", "job", `{"protocol":3,"executor_id":"e","job_id":"j","function":"f","calls":2,"inputs":[{"o":0,"n":1}]}`, "2 calls but 1 input ranges"},
		{"job: overlapping ranges", "job", `{"protocol":3,"executor_id":"e","job_id":"j","function":"f","calls":2,"inputs":[{"o":0,"n":5},{"o":3,"n":1}]}`, "out of order"},
		{"job: negative size", "job", `{"protocol":3,"executor_id":"e","job_id":"j","function":"f","calls":1,"inputs":[{"o":0,"n":-1}]}`, "negative"},
		{"inv: other protocol", "inv", `{"protocol":7,"bucket":"b","executor_id":"e","job_id":"j","calls":[{"id":"00000"}]}`, "redeploy the runtime or upgrade the client"},
		{"inv: no calls", "inv", `{"protocol":3,"bucket":"b","executor_id":"e","job_id":"j","calls":[]}`, "no calls"},
		{"inv: traversal", "inv", `{"protocol":3,"bucket":"b","executor_id":"..","job_id":"j","calls":[{"id":"0"}]}`, "path separator"},
		{"inv: bad call id", "inv", `{"protocol":3,"bucket":"b","executor_id":"e","job_id":"j","calls":[{"id":"a/b"}]}`, "malformed"},
		{"inv: call twice", "inv", `{"protocol":3,"bucket":"b","executor_id":"e","job_id":"j","calls":[{"id":"0"},{"id":"1"},{"id":"0"}]}`, "names call 0 twice"},
		{"inv: negative index", "inv", `{"protocol":3,"bucket":"b","executor_id":"e","job_id":"j","calls":[{"id":"0","i":-1}]}`, "malformed"},
		{"inv: unknown op", "inv", `{"protocol":3,"op":"rm -rf","bucket":"b"}`, "unknown op"},
		{"inv: metadata outside runtimes", "inv", `{"protocol":3,"op":"metadata","bucket":"b","meta_key":"lithops.jobs/x"}`, "meta_key under"},
		{"status: unknown state", "status", `{"protocol":3,"job_id":"j","call_id":"0","state":"weird"}`, "unknown state"},
		{"status: success without result", "status", `{"protocol":3,"job_id":"j","call_id":"0","state":"success"}`, "neither an inline result nor a result key"},
		{"status: error without record", "status", `{"protocol":3,"job_id":"j","call_id":"0","state":"error"}`, "no error record"},
		{"status: no call id", "status", `{"protocol":3,"job_id":"j","state":"running"}`, "lacks call_id"},
		{"gather: not JSON", "gather", `[1,2`, "not valid JSON"},
		{"gather: inline and key", "gather", `{"parts":[{"has_inline":true,"inline":"AA=="},{"has_inline":true,"key":"k"}]}`, "part 1 has both"},
		{"gather: neither", "gather", `{"parts":[{}]}`, "part 0 has neither"},
		{"gather: negative size", "gather", `{"parts":[{"key":"k","size":-4}]}`, "size -4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			switch tc.kind {
			case "job":
				var j Job
				if err = json.Unmarshal([]byte(tc.json), &j); err == nil {
					err = j.Validate()
				}
			case "inv":
				var i Invocation
				if err = json.Unmarshal([]byte(tc.json), &i); err == nil {
					err = i.Validate()
				}
			case "status":
				var s Status
				if err = json.Unmarshal([]byte(tc.json), &s); err == nil {
					err = s.Validate()
				}
			case "gather":
				_, err = ParseGather([]byte(tc.json))
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestRegistryDiff(t *testing.T) {
	a := Registry{"f": "func(context.Context, int) (int, error)", "g": "x"}
	b := Registry{"f": "func(context.Context, string) (int, error)", "h": "y"}
	d := a.Diff(b)
	for _, want := range []string{`"f" is func(context.Context, int) (int, error) in the client but func(context.Context, string) (int, error) in the worker`,
		`"g" is registered in the client but not in the worker`, `"h" is registered in the worker but not in the client`} {
		if !strings.Contains(d, want) {
			t.Errorf("diff %q lacks %q", d, want)
		}
	}
	if a.Diff(a) != "" {
		t.Error("equal registries differ")
	}
}

// FuzzRecords: no input makes decoding and validation panic, and whatever
// validates can be encoded again.
func FuzzRecords(f *testing.F) {
	f.Add([]byte(`{"protocol":3,"executor_id":"e","job_id":"j","function":"f","calls":1,"inputs":[{"o":0,"n":3}]}`))
	f.Add([]byte(`{"protocol":3,"bucket":"b","executor_id":"e","job_id":"j","calls":[{"id":"00000","input":"AAE="}]}`))
	f.Add([]byte(`{"protocol":3,"job_id":"j","call_id":"0","state":"error","error":{"kind":"user","message":"m"}}`))
	f.Add([]byte(`{"parts":[{"has_inline":true,"inline":"AAE="},{"key":"lithops.jobs/e/M000/00001/result-0-ab","size":9000}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var j Job
		if json.Unmarshal(data, &j) == nil && j.Validate() == nil {
			if _, err := json.Marshal(&j); err != nil {
				t.Fatal(err)
			}
		}
		var i Invocation
		if json.Unmarshal(data, &i) == nil && i.Validate() == nil && i.Op == OpRun {
			for _, c := range i.Calls {
				if strings.ContainsAny(c.ID, "/\\") {
					t.Fatalf("validated call id %q", c.ID)
				}
			}
		}
		if st, err := ParseStatus(data); err == nil && (st.CallID == "" || st.JobID == "") {
			t.Fatalf("validated status %+v", st)
		}
		if j, err := ParseJob(data); err == nil && len(j.Inputs) != j.Calls {
			t.Fatalf("validated manifest of %d calls with %d inputs", j.Calls, len(j.Inputs))
		}
		if g, err := ParseGather(data); err == nil {
			for _, p := range g.Parts {
				if p.HasInline == (p.Key != "") {
					t.Fatalf("validated gather part %+v", p)
				}
			}
		}
	})
}

// ParseKey reads every key the writers make, and nothing else.
func TestParseKey(t *testing.T) {
	const e, j, c = "e1-0", "M001", "00042"
	good := []struct {
		key  string
		want Key
	}{
		{JobKey(e, j), Key{Kind: KindManifest, Executor: e, Job: j}},
		{InputsKey(e, j), Key{Kind: KindInputs, Executor: e, Job: j}},
		{StatusKey(e, j, c), Key{Kind: KindStatus, Executor: e, Job: j, Call: c}},
		{BatchKey(e, j, Call{ID: c, Attempt: 1}), Key{Kind: KindStatus, Executor: e, Job: j, Call: c, Attempt: 1, Batch: true}},
		{AttemptKey(e, j, c, 3), Key{Kind: KindAttempt, Executor: e, Job: j, Call: c, Attempt: 3}},
		{LeaseKey(e, j, c), Key{Kind: KindLease, Executor: e, Job: j, Call: c}},
		{MessageLeaseKey(e, j, Call{ID: c, Attempt: 2}), Key{Kind: KindLease, Executor: e, Job: j, Call: c, Attempt: 2, Message: true}},
		{LogKey(e, j, c, 2), Key{Kind: KindLogs, Executor: e, Job: j, Call: c, Attempt: 2}},
		{ResultKey(e, j, c, 1, "ab12"), Key{Kind: KindResult, Executor: e, Job: j, Call: c, Attempt: 1}},
		{ShuffleKey(e, j, c, "9f3a"), Key{Kind: KindShuffle, Executor: e, Job: j, Call: c}},
	}
	for _, g := range good {
		got, ok := ParseKey(g.key)
		if !ok || got != g.want {
			t.Errorf("ParseKey(%q) = %+v, %v; want %+v", g.key, got, ok, g.want)
		}
	}
	for _, bad := range []string{"", "lithops.jobs/", "lithops.jobs/e/j", "lithops.jobs/e/j/other",
		"lithops.jobs/e/j/attempt/00001-x.json", "lithops.jobs/e/j/attempt/00001--1.json", "lithops.jobs/e/j/attempt/00001-01.json",
		"lithops.jobs/e/j/attempt/00001.json", "lithops.jobs/e/j/logs/00001-1", "lithops.jobs/e/j/result/00001-1",
		"lithops.jobs/e/j/result/00001-1-", "lithops.jobs/e/j/status.00001", "lithops.jobs/e/j/status.x.json",
		"lithops.jobs/e/j/status..json", "lithops.jobs/e/j/status.00001-.json", "lithops.jobs/e/j/status.00001-x.json",
		"lithops.jobs/e/j/status.-1.json", "lithops.jobs/e/j/status.00001-1", "lithops.jobs/e/j/status.", "lithops.jobs/e/j/lease/",
		"lithops.jobs/e/j/lease/00001-", "lithops.jobs/e/j/lease/00001-x", "lithops.jobs/e/j/lease/-1", "lithops.jobs/e/j/lease/00001-1-2",
		"lithops.jobs/e/j/shuffle/00001", "lithops.jobs/e/j/shuffle/00001-", "lithops.jobs/e/j/shuffle/x-ab", "lithops.jobs/e/j/status.d/00001.json",
		"lithops.runtimes/bin/abc", "lithops.jobs//j/status.00001.json",
		// The layout of protocol version 2: statuses under status/.
		"lithops.jobs/e/j/status/00001.json", "lithops.jobs/e/j/status/00001-1.json",
		// Python Lithops' keys under the same prefix.
		"lithops.jobs/7c0b10-0-M001/00000/status.json", "lithops.jobs/7c0b10-0-M001/00000/output.pickle",
		"lithops.jobs/7c0b10-0-M001/aggdata.pickle", "lithops.jobs/7c0b10-0/0a1b2c.func.pickle",
		// The layout of protocol version 1.
		"lithops.jobs/e/j/00001/status.json", "lithops.jobs/e/j/00001/attempt-0.json"} {
		if k, ok := ParseKey(bad); ok {
			t.Errorf("ParseKey(%q) = %+v, want not ok", bad, k)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{-1, 5 * time.Second, 7500 * time.Millisecond},
		{0, 100 * time.Millisecond, 150 * time.Millisecond},
		{1, 200 * time.Millisecond, 300 * time.Millisecond},
		{5, 3200 * time.Millisecond, 4800 * time.Millisecond},
		{6, 5 * time.Second, 7500 * time.Millisecond},
		{1000, 5 * time.Second, 7500 * time.Millisecond},
	}
	for _, tc := range tests {
		for range 50 {
			if d := RetryDelay(tc.attempt); d < tc.min || d > tc.max {
				t.Fatalf("RetryDelay(%d) = %v, want in [%v, %v]", tc.attempt, d, tc.min, tc.max)
			}
		}
	}
}

// An invocation may carry its own job's manifest, valid, and no other.
func TestInvocationCarriedManifest(t *testing.T) {
	job := &Job{Version: Version, ExecutorID: "e", JobID: "A000", Function: "f", Calls: 1, Inputs: []Range{{0, 0}}}
	other := *job
	other.JobID = "A001"
	bad := *job
	bad.Calls = 2
	tests := []struct {
		name string
		job  *Job
		want string
	}{
		{"its own", job, ""},
		{"another job's", &other, "carries the manifest of e/A001"},
		{"invalid", &bad, "invocation's manifest"},
	}
	for _, tc := range tests {
		inv := Invocation{Version: Version, Bucket: "b", ExecutorID: "e", JobID: "A000", Calls: []Call{{ID: "00000"}}, Job: tc.job}
		err := inv.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestParseLease(t *testing.T) {
	l, err := ParseLease([]byte(`{"at":"2026-11-29T14:00:00Z","calls":[{"id":"00003","attempt":0},{"id":"00007","attempt":2}]}`))
	if err != nil || len(l.Calls) != 2 || l.Calls[1] != (LeaseCall{ID: "00007", Attempt: 2}) {
		t.Fatalf("got %+v, %v", l, err)
	}
	for _, bad := range []string{``, `{`, `[]`, `{"calls":[{"id":"x","attempt":0}]}`, `{"calls":[{"id":"00001","attempt":-1}]}`, `{"calls":[{"id":"","attempt":0}]}`} {
		if _, err := ParseLease([]byte(bad)); err == nil {
			t.Errorf("ParseLease(%q) accepted", bad)
		}
	}
}

// TestParseStatusBatch: a batch record is read only when every status in
// it is a valid success of the key's job, beginning with the key's call.
func TestParseStatusBatch(t *testing.T) {
	const e, j = "e1", "M000"
	k, _ := ParseKey(BatchKey(e, j, Call{ID: "00003", Attempt: 1}))
	ok := func(id string, attempt int) Status {
		return Status{Version: Version, ExecutorID: e, JobID: j, CallID: id, Attempt: attempt, State: StateSuccess, HasResult: true, Result: []byte("r" + id)}
	}
	enc := func(sts ...Status) []byte {
		b, _ := json.Marshal(StatusBatch{Version: Version, Statuses: sts})
		return b
	}
	got, err := ParseStatusBatch(k, enc(ok("00003", 1), ok("00004", 0), ok("00009", 2)))
	if err != nil || len(got) != 3 || got[2].CallID != "00009" || string(got[1].Result) != "r00004" {
		t.Fatalf("ParseStatusBatch = %+v, %v", got, err)
	}
	failed := ok("00004", 0)
	failed.State, failed.HasResult, failed.Error = StateError, false, &ErrorRecord{Kind: KindUser, Message: "x"}
	other := ok("00004", 0)
	other.JobID = "M001"
	bad := map[string][]byte{
		"not json":          []byte("{"),
		"old version":       []byte(`{"protocol":1,"statuses":[]}`),
		"empty":             enc(),
		"a failure":         enc(ok("00003", 1), failed),
		"another job":       enc(ok("00003", 1), other),
		"wrong first call":  enc(ok("00004", 1)),
		"wrong attempt":     enc(ok("00003", 0)),
		"a call twice":      enc(ok("00003", 1), ok("00005", 0), ok("00005", 1)),
		"an invalid status": enc(ok("00003", 1), Status{Version: Version, ExecutorID: e, JobID: j, CallID: "00007", State: StateSuccess}),
	}
	for name, raw := range bad {
		if got, err := ParseStatusBatch(k, raw); err == nil {
			t.Errorf("%s: ParseStatusBatch = %+v, want an error", name, got)
		}
	}
}

func TestBlockKey(t *testing.T) {
	for _, tc := range []struct {
		call  string
		block int
		want  string
		ok    bool
	}{
		{"00000", 16, "lithops.jobs/e/j/status.00000-0.json", true},
		{"00015", 16, "lithops.jobs/e/j/status.00000-0.json", true},
		{"00016", 16, "lithops.jobs/e/j/status.00016-0.json", true},
		{"123457", 16, "lithops.jobs/e/j/status.123456-0.json", true},
		{"00007", 1, "lithops.jobs/e/j/status.00007-0.json", true},
		{"00007", 0, "", false},
		{"x", 16, "", false},
		{"-1", 16, "", false},
	} {
		got, ok := BlockKey("e", "j", tc.call, tc.block)
		if got != tc.want || ok != tc.ok {
			t.Errorf("BlockKey(%s, %d) = %q, %v; want %q, %v", tc.call, tc.block, got, ok, tc.want, tc.ok)
		}
		if !ok {
			continue
		}
		k, parsed := ParseKey(got)
		if !parsed || !k.Batch || k.Kind != KindStatus || k.Attempt != 0 {
			t.Errorf("ParseKey(%s) = %+v, %v; want a batch status key at attempt 0", got, k, parsed)
		}
	}
}

func TestParseBlockRecord(t *testing.T) {
	const e, j = "e1", "M000"
	key, _ := BlockKey(e, j, "00021", 16)
	k, _ := ParseKey(key)
	ok := func(id string, attempt int) Status {
		return Status{Version: Version, ExecutorID: e, JobID: j, CallID: id, Attempt: attempt, State: StateSuccess, HasResult: true, Result: []byte("r" + id)}
	}
	enc := func(b StatusBatch) []byte {
		b.Version = Version
		raw, _ := json.Marshal(b)
		return raw
	}
	// A block record need not begin at the block's first call, nor hold
	// attempt 0.
	got, err := ParseStatusBatch(k, enc(StatusBatch{Block: 16, Statuses: []Status{ok("00021", 0), ok("00017", 2), ok("00031", 0)}}))
	if err != nil || len(got) != 3 || got[1].CallID != "00017" {
		t.Fatalf("block record: %+v, %v", got, err)
	}
	got, err = ParseStatusBatch(k, enc(StatusBatch{Block: 16, Fence: true}))
	if err != nil || len(got) != 0 {
		t.Fatalf("fence: %+v, %v; want no status, no error", got, err)
	}
	inner, _ := ParseKey(BatchKey(e, j, Call{ID: "00017"}))
	retried, _ := ParseKey(BatchKey(e, j, Call{ID: "00016", Attempt: 1}))
	bad := []struct {
		name string
		k    Key
		raw  []byte
	}{
		{"call past the block", k, enc(StatusBatch{Block: 16, Statuses: []Status{ok("00021", 0), ok("00032", 0)}})},
		{"call before the block", k, enc(StatusBatch{Block: 16, Statuses: []Status{ok("00015", 0)}})},
		{"fence with a status", k, enc(StatusBatch{Block: 16, Fence: true, Statuses: []Status{ok("00021", 0)}})},
		{"empty block", k, enc(StatusBatch{Block: 16})},
		{"negative block", k, enc(StatusBatch{Block: -1, Statuses: []Status{ok("00016", 0)}})},
		{"huge block", k, enc(StatusBatch{Block: MaxBlock + 1, Statuses: []Status{ok("00016", 0)}})},
		{"key not at a block's start", inner, enc(StatusBatch{Block: 16, Statuses: []Status{ok("00017", 0)}})},
		{"key not at attempt 0", retried, enc(StatusBatch{Block: 16, Statuses: []Status{ok("00017", 0)}})},
	}
	for _, tc := range bad {
		if got, err := ParseStatusBatch(tc.k, tc.raw); err == nil {
			t.Errorf("%s: ParseStatusBatch = %+v, want an error", tc.name, got)
		}
	}
}

func TestParseJobAndStatus(t *testing.T) {
	for _, tc := range []struct {
		name, raw, wantJob, wantStatus string // "" : parses
	}{
		{name: "manifest", raw: `{"protocol":3,"executor_id":"e","job_id":"j","function":"f","calls":1,"inputs":[{"o":0,"n":3}]}`,
			wantStatus: "lacks call_id"},
		{name: "status", raw: `{"protocol":3,"job_id":"j","call_id":"00000","state":"error","error":{"kind":"user","message":"m"}}`,
			wantJob: "lacks executor_id"},
		{name: "not JSON", raw: `{"protocol":`, wantJob: "job manifest is not valid JSON", wantStatus: "status record is not valid JSON"},
		{name: "old protocol", raw: `{"protocol":1,"executor_id":"e","job_id":"j","function":"f","call_id":"00000","state":"running"}`,
			wantJob: "protocol version 1", wantStatus: "protocol version 1"},
		{name: "success without result", raw: `{"protocol":3,"job_id":"j","call_id":"00000","state":"success"}`,
			wantJob: "lacks executor_id", wantStatus: "neither an inline result nor a result key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJob([]byte(tc.raw))
			if (err == nil) != (tc.wantJob == "") || err != nil && !strings.Contains(err.Error(), tc.wantJob) {
				t.Errorf("ParseJob: %v, want %q", err, tc.wantJob)
			}
			_, err = ParseStatus([]byte(tc.raw))
			if (err == nil) != (tc.wantStatus == "") || err != nil && !strings.Contains(err.Error(), tc.wantStatus) {
				t.Errorf("ParseStatus: %v, want %q", err, tc.wantStatus)
			}
		})
	}
}

// KeyJob places a key by its executor and job alone, whatever follows.
func TestKeyJob(t *testing.T) {
	for _, tc := range []struct {
		key  string
		e, j string
		ok   bool
	}{
		{StatusKey("e1", "M001", "00000"), "e1", "M001", true},
		{"lithops.jobs/e1/M001/status/00000.json", "e1", "M001", true}, // protocol 2
		{"lithops.jobs/e1/M001/", "e1", "M001", true},
		{"lithops.jobs/e1/M001", "", "", false},
		{"lithops.jobs//M001/job.json", "", "", false},
		{"lithops.runtimes/bin/abc", "", "", false},
		{"lithops.jobs/7c0b10-0/0a1b2c.func.pickle", "", "", false},
	} {
		e, j, ok := KeyJob(tc.key)
		if e != tc.e || j != tc.j || ok != tc.ok {
			t.Errorf("KeyJob(%q) = %q, %q, %v; want %q, %q, %v", tc.key, e, j, ok, tc.e, tc.j, tc.ok)
		}
	}
}
