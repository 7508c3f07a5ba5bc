package worker

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/driver"
	"github.com/lithops-go/lithops/storage/memory"
)

// faultyDriver fails the operations op names ("get", "put", or "putlate":
// a put that is written but answers an error), on keys with the given
// substring.
type faultyDriver struct {
	driver.Driver
	op, key string
}

var errInjected = errors.New("injected storage failure")

func (d *faultyDriver) GetRange(ctx context.Context, bucket, key string, off, n int64) (io.ReadCloser, error) {
	if d.op == "get" && strings.Contains(key, d.key) {
		return nil, errInjected
	}
	return d.Driver.GetRange(ctx, bucket, key, off, n)
}

func (d *faultyDriver) Put(ctx context.Context, bucket, key string, r io.Reader, opts driver.PutOptions) error {
	if d.op == "put" && strings.Contains(key, d.key) {
		return errInjected
	}
	err := d.Driver.Put(ctx, bucket, key, r, opts)
	if d.op == "putlate" && err == nil && strings.Contains(key, d.key) {
		return errInjected // written, but the answer was lost
	}
	return err
}

// runFuncs are the functions of TestRun; inputs are plain bytes.
func runFuncs(out *os.File) map[string]*Func {
	fs := map[string]*Func{
		"echo": {Call: func(_ context.Context, _ protocol.Codec, in []byte) ([]byte, error) { return in, nil }},
		"big": {Call: func(context.Context, protocol.Codec, []byte) ([]byte, error) {
			return bytes.Repeat([]byte("x"), 2*protocol.InlineLimit), nil
		}},
		"fail": {Call: func(context.Context, protocol.Codec, []byte) ([]byte, error) { return nil, errors.New("user says no") }},
		"failon": {Call: func(_ context.Context, _ protocol.Codec, in []byte) ([]byte, error) {
			if string(in) == "fail" {
				return nil, errors.New("user says no")
			}
			return in, nil
		}},
		"panic": {Call: func(context.Context, protocol.Codec, []byte) ([]byte, error) { panic("boom") }},
		"wait": {Call: func(ctx context.Context, _ protocol.Codec, _ []byte) ([]byte, error) {
			<-ctx.Done()
			return nil, fmt.Errorf("gave up: %w", ctx.Err())
		}},
		"decode": {Call: func(context.Context, protocol.Codec, []byte) ([]byte, error) {
			return nil, DecodeError(errors.New("bad gob"))
		}},
		"framework": {Call: func(context.Context, protocol.Codec, []byte) ([]byte, error) {
			return nil, fmt.Errorf("shuffle: %w", HandlerError(errors.New("segment unreadable")))
		}},
		"ids": {Call: func(ctx context.Context, _ protocol.Codec, _ []byte) ([]byte, error) {
			if StorageFrom(ctx) == nil {
				return nil, errors.New("no storage in ctx")
			}
			return []byte(CallIDFrom(ctx)), nil
		}},
		"print": {Call: func(_ context.Context, _ protocol.Codec, in []byte) ([]byte, error) {
			fmt.Fprintf(out, "printed %s\n", in)
			return in, nil
		}},
	}
	for n, f := range fs {
		f.Name, f.Signature = n, "func([]byte) []byte"
	}
	return fs
}

// TestRun: one call of each kind, what Run returns and what it records.
func TestRun(t *testing.T) {
	tests := []struct {
		name    string
		fn      string
		input   string // inline unless fromStorage
		stored  bool   // the input is read from the job's inputs object
		retries int
		timeout float64
		edit    func(*protocol.Job)
		fault   *faultyDriver
		capture bool

		wantErr    bool // Run's error: the outcome could not be recorded
		wantState  protocol.State
		wantKind   protocol.ErrorKind
		wantMsg    string
		wantResult string
		wantKey    func(s *protocol.Status) string // where it is recorded
		check      func(t *testing.T, st *storage.Storage, s *protocol.Status)
	}{
		{name: "inline result", fn: "echo", input: "hi", wantState: protocol.StateSuccess, wantResult: "hi"},
		{name: "input read from storage", fn: "echo", input: "from the inputs object", stored: true, wantState: protocol.StateSuccess, wantResult: "from the inputs object"},
		{name: "ctx carries storage and call id", fn: "ids", wantState: protocol.StateSuccess, wantResult: "00000"},
		{name: "big result stored apart", fn: "big", wantState: protocol.StateSuccess, check: func(t *testing.T, st *storage.Storage, s *protocol.Status) {
			b, err := st.GetBytes(context.Background(), "b", s.ResultKey)
			if s.HasResult || s.ResultKey == "" || err != nil || len(b) != 2*protocol.InlineLimit || s.ResultSize != int64(len(b)) {
				t.Fatalf("result key %q (%d bytes, %v), inline %v", s.ResultKey, len(b), err, s.HasResult)
			}
		}},
		{name: "user error", fn: "fail", wantState: protocol.StateError, wantKind: protocol.KindUser, wantMsg: "user says no"},
		{name: "a job with blocks: the block fenced first", fn: "echo", input: "hi", edit: func(j *protocol.Job) { j.Block = 16 },
			wantState: protocol.StateSuccess, wantResult: "hi", check: func(t *testing.T, st *storage.Storage, s *protocol.Status) {
				key, _ := protocol.BlockKey(s.ExecutorID, s.JobID, s.CallID, 16)
				raw, err := st.GetBytes(context.Background(), "b", key)
				var b protocol.StatusBatch
				if err != nil || json.Unmarshal(raw, &b) != nil || !b.Fence {
					t.Fatalf("block key %s holds %s (%v), want a fence", key, raw, err)
				}
			}},
		{name: "user error with a retry left is an attempt record", fn: "fail", retries: 1, wantState: protocol.StateError, wantKind: protocol.KindUser,
			wantKey: func(s *protocol.Status) string { return protocol.AttemptKey(s.ExecutorID, s.JobID, s.CallID, 0) }},
		{name: "panic", fn: "panic", wantState: protocol.StateError, wantKind: protocol.KindPanic, wantMsg: "boom", check: func(t *testing.T, _ *storage.Storage, s *protocol.Status) {
			if !strings.Contains(s.Error.Stack, "panic") {
				t.Fatalf("no stack: %q", s.Error.Stack)
			}
		}},
		{name: "timeout the function honoured", fn: "wait", timeout: 0.05, wantState: protocol.StateError, wantKind: protocol.KindTimeout, wantMsg: "exceeded its timeout of 50ms"},
		{name: "input not decodable", fn: "decode", wantState: protocol.StateError, wantKind: protocol.KindHandler, wantMsg: "decode input"},
		{name: "framework code failed", fn: "framework", wantState: protocol.StateError, wantKind: protocol.KindHandler, wantMsg: "shuffle: segment unreadable"},
		{name: "registry differs", fn: "echo", edit: func(j *protocol.Job) { j.Registry["other"] = "func()" },
			wantState: protocol.StateError, wantKind: protocol.KindMismatch, wantMsg: "differs from the client's"},
		{name: "function unknown", fn: "echo", edit: func(j *protocol.Job) { j.Function = "nope" },
			wantState: protocol.StateError, wantKind: protocol.KindMismatch, wantMsg: "nope"},
		{name: "call index past the job", fn: "echo", edit: func(j *protocol.Job) { j.Calls, j.Inputs = 0, nil },
			wantState: protocol.StateError, wantKind: protocol.KindHandler, wantMsg: "has index 0"},
		{name: "manifest unreadable: not recorded", fn: "echo", fault: &faultyDriver{op: "get", key: "job.json"},
			wantErr: true, wantState: protocol.StateError, wantKind: protocol.KindHandler, wantMsg: "injected"},
		{name: "status unwritable", fn: "echo", fault: &faultyDriver{op: "put", key: "status"},
			wantErr: true, wantState: protocol.StateSuccess, wantResult: ""},
		{name: "output captured and stored", fn: "print", input: "7", capture: true, wantState: protocol.StateSuccess, wantResult: "7",
			check: func(t *testing.T, st *storage.Storage, s *protocol.Status) {
				raw, err := st.GetBytes(context.Background(), "b", protocol.LogKey(s.ExecutorID, s.JobID, s.CallID, s.Attempt))
				if err != nil {
					t.Fatalf("no log: %v", err)
				}
				zr, err := gzip.NewReader(bytes.NewReader(raw))
				if err != nil {
					t.Fatal(err)
				}
				logs, _ := io.ReadAll(zr)
				if string(logs) != "printed 7\n" || s.LogSize != int64(len(logs)) {
					t.Fatalf("log %q (size %d)", logs, s.LogSize)
				}
			}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var d driver.Driver = memory.New()
			clean := storage.New(d, "memory", "b")
			clean.CreateBucket(ctx, "b")
			st := clean
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			defer pw.Close()
			funcs := runFuncs(pw)
			w := New("w1", st, funcs, nil)
			if tc.capture {
				w.Capture = NewCapture(pr, pw, io.Discard, 1<<20)
			}
			jobID := fmt.Sprintf("R%03d", i)
			job := protocol.Job{Version: protocol.Version, ExecutorID: "e", JobID: jobID, Function: tc.fn, Signature: funcs[tc.fn].Signature,
				Registry: cloneRegistry(w.Registry), Codec: "gob", Calls: 1, Bucket: "b", Inputs: []protocol.Range{{}}, Retries: tc.retries, Timeout: tc.timeout}
			call := protocol.Call{ID: "00000", HasInput: !tc.stored, Input: []byte(tc.input)}
			if tc.stored {
				pad := "padding:"
				clean.PutBytes(ctx, "b", protocol.InputsKey("e", jobID), []byte(pad+tc.input))
				job.Inputs = []protocol.Range{{Offset: int64(len(pad)), Size: int64(len(tc.input))}}
			}
			if tc.edit != nil {
				tc.edit(&job)
			}
			raw, _ := json.Marshal(job)
			clean.PutBytes(ctx, "b", protocol.JobKey("e", jobID), raw)
			if tc.fault != nil {
				tc.fault.Driver = d
				w.Storage = storage.New(tc.fault, "memory", "b")
			}
			inv := protocol.Invocation{Version: protocol.Version, Bucket: "b", ExecutorID: "e", JobID: jobID, Calls: []protocol.Call{call}}
			s, err := w.Run(ctx, &inv, call)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Run error %v, want error %v", err, tc.wantErr)
			}
			if s.State != tc.wantState || (s.Error == nil) != (tc.wantKind == "") ||
				(s.Error != nil && (s.Error.Kind != tc.wantKind || !strings.Contains(s.Error.Message, tc.wantMsg))) {
				t.Fatalf("status %s %+v; want %s %q %q", s.State, s.Error, tc.wantState, tc.wantKind, tc.wantMsg)
			}
			if s.WorkerID != "w1" || s.CallID != "00000" || s.JobID != jobID || !s.ColdStart || s.End.Before(s.Start) {
				t.Fatalf("status identity or times wrong: %+v", s)
			}
			if tc.wantResult != "" && (!s.HasResult || string(s.Result) != tc.wantResult) {
				t.Fatalf("result %q (inline %v), want %q", s.Result, s.HasResult, tc.wantResult)
			}
			key := protocol.StatusKey("e", jobID, "00000")
			if tc.wantKey != nil {
				key = tc.wantKey(s)
			}
			rec, gerr := clean.GetBytes(ctx, "b", key)
			if tc.wantErr {
				if gerr == nil {
					t.Fatalf("a status that Run says it could not record is at %s", key)
				}
			} else {
				var got protocol.Status
				if gerr != nil || json.Unmarshal(rec, &got) != nil || got.State != s.State || got.Attempt != s.Attempt {
					t.Fatalf("recorded at %s: %s, %v", key, rec, gerr)
				}
			}
			if tc.check != nil {
				tc.check(t, clean, s)
			}
			// A second call of the same worker is warm.
			if !tc.wantErr {
				call2 := call
				call2.ID = "00001"
				inv.Calls = []protocol.Call{call2}
				if s2, _ := w.Run(ctx, &inv, call2); s2.ColdStart {
					t.Fatal("the second call of a worker is a cold start")
				}
			}
		})
	}
}

// clone copies a registry, so that a job's edit does not change the worker's.
func cloneRegistry(r protocol.Registry) protocol.Registry {
	c := protocol.Registry{}
	for k, v := range r {
		c[k] = v
	}
	return c
}

// pipeWorker is a worker over in-memory storage (bucket "b") that holds the
// manifest of job e/jobID: calls calls of "echo".
func pipeWorker(t *testing.T, jobID string, calls int) *Worker {
	t.Helper()
	ctx := context.Background()
	st := storage.New(memory.New(), "memory", "b")
	st.CreateBucket(ctx, "b")
	funcs := runFuncs(os.Stderr)
	w := New("w1", st, funcs, nil)
	job := protocol.Job{Version: protocol.Version, ExecutorID: "e", JobID: jobID, Function: "echo", Signature: funcs["echo"].Signature,
		Registry: w.Registry, Calls: calls, Bucket: "b", Inputs: make([]protocol.Range, calls)}
	raw, _ := json.Marshal(job)
	if err := st.PutBytes(ctx, "b", protocol.JobKey("e", jobID), raw); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestServePipe: one response per call, in order, for requests of one call
// and of several (a batch); every call of a request that is not a valid
// invocation is answered with an error, not served; the end of the
// requests ends ServePipe cleanly, and garbage ends it with an error. With
// BatchEnv set, a Hello comes first.
func TestServePipe(t *testing.T) {
	w := pipeWorker(t, "P000", 2)
	req := func(inv protocol.Invocation) string {
		b, _ := json.Marshal(PipeRequest{Invocation: inv})
		return string(b) + "\n"
	}
	good := func(id, in string) protocol.Invocation {
		return protocol.Invocation{Version: protocol.Version, Bucket: "b", ExecutorID: "e", JobID: "P000",
			Calls: []protocol.Call{{ID: id, Index: 0, HasInput: true, Input: []byte(in)}}}
	}
	bad := good("00009", "x")
	bad.ExecutorID = "../e"
	// batch: one request of several calls, answered one by one
	batch := func(inv protocol.Invocation, more ...protocol.Invocation) protocol.Invocation {
		for _, m := range more {
			inv.Calls = append(inv.Calls, m.Calls...)
		}
		return inv
	}
	tests := []struct {
		name    string
		in      string
		want    []string // per response: the result, or "error: <substring>"
		wantErr bool
	}{
		{"two calls", req(good("00000", "a")) + req(good("00001", "b")), []string{"a", "b"}, false},
		{"invalid invocation", req(bad) + req(good("00002", "c")), []string{"error: path separator", "c"}, false},
		{"batch", req(batch(good("00004", "e"), good("00005", "f"), good("00006", "g"))) + req(good("00007", "h")), []string{"e", "f", "g", "h"}, false},
		{"invalid batch", req(batch(bad, good("00008", "i"))) + req(good("00010", "j")), []string{"error: path separator", "error: path separator", "j"}, false},
		{"garbage", req(good("00003", "d")) + "{not json\n", []string{"d"}, true},
		{"nothing", "", nil, false},
	}
	for _, hello := range []bool{false, true} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%s/hello=%v", tc.name, hello), func(t *testing.T) {
				servePipeCase(t, w, hello, tc.in, tc.want, tc.wantErr)
			})
		}
	}
}

// servePipeCase serves in and checks the answers (a result, or "error:
// <substring>"), after a Hello when hello is set.
func servePipeCase(t *testing.T, w *Worker, hello bool, in string, want []string, wantErr bool) {
	if hello {
		t.Setenv(BatchEnv, "1")
	}
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- ServePipe(context.Background(), w, strings.NewReader(in), &out) }()
	select {
	case err := <-done:
		if (err != nil) != wantErr {
			t.Fatalf("ServePipe: %v, want error %v", err, wantErr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ServePipe did not return at the end of its input")
	}
	dec := json.NewDecoder(&out)
	if hello {
		var resp PipeResponse
		if err := dec.Decode(&resp); err != nil || resp.Hello == nil || !resp.Hello.Batch || resp.Status != nil {
			t.Fatalf("first line %+v (%v), want a Hello with Batch", resp, err)
		}
	}
	for i, want := range want {
		var resp PipeResponse
		if err := dec.Decode(&resp); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if msg, isErr := strings.CutPrefix(want, "error: "); isErr {
			if resp.Status != nil || !strings.Contains(resp.Error, msg) {
				t.Fatalf("response %d: %+v, want an error containing %q", i, resp, msg)
			}
			continue
		}
		if resp.Error != "" || resp.Status == nil || string(resp.Status.Result) != want {
			t.Fatalf("response %d: %+v (status %+v), want result %q", i, resp, resp.Status, want)
		}
	}
	if dec.More() {
		t.Fatal("more responses than calls")
	}
}

// TestServePipeGob: with GobEnv (and BatchEnv) the worker says Hello with
// Gob, answers in gob after it, reads JSON requests until one switches to
// gob, and gob requests after it; a switch it does not know ends it with
// an error.
func TestServePipeGob(t *testing.T) {
	ctx := context.Background()
	w := pipeWorker(t, "G000", 8)
	call := func(id, in string) protocol.Invocation {
		return protocol.Invocation{Version: protocol.Version, Bucket: "b", ExecutorID: "e", JobID: "G000",
			Calls: []protocol.Call{{ID: id, HasInput: true, Input: []byte(in)}}}
	}
	t.Setenv(BatchEnv, "1")
	t.Setenv(GobEnv, "1")
	for _, tc := range []struct {
		name    string
		sw      string
		want    []string
		wantErr bool
	}{
		{name: "switched", sw: "gob", want: []string{"a", "b", "c", "d", "error: path separator"}},
		{name: "an unknown switch", sw: "xml", want: []string{"a"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in bytes.Buffer
			jenc := json.NewEncoder(&in)
			jenc.Encode(PipeRequest{Invocation: call("00000", "a")})
			jenc.Encode(PipeRequest{Switch: tc.sw})
			genc := gob.NewEncoder(&in)
			genc.Encode(PipeRequest{Invocation: call("00001", "b")})
			two := call("00002", "c")
			two.Calls = append(two.Calls, call("00003", "d").Calls...)
			genc.Encode(PipeRequest{Invocation: two})
			bad := call("00004", "x")
			bad.ExecutorID = "../e"
			genc.Encode(PipeRequest{Invocation: bad})
			var out bytes.Buffer
			err := ServePipe(ctx, w, &in, &out)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ServePipe: %v, want error %v", err, tc.wantErr)
			}
			jdec := json.NewDecoder(&out)
			var hello PipeResponse
			if err := jdec.Decode(&hello); err != nil || hello.Hello == nil || !hello.Hello.Gob || !hello.Hello.Batch {
				t.Fatalf("first line %+v (%v), want a Hello with Batch and Gob", hello, err)
			}
			gdec := gob.NewDecoder(AfterJSON(jdec, &out))
			for i, want := range tc.want {
				var resp PipeResponse
				if err := gdec.Decode(&resp); err != nil {
					t.Fatalf("response %d: %v", i, err)
				}
				if msg, isErr := strings.CutPrefix(want, "error: "); isErr {
					if resp.Status != nil || !strings.Contains(resp.Error, msg) {
						t.Fatalf("response %d: %+v, want an error containing %q", i, resp, msg)
					}
					continue
				}
				if resp.Status == nil || resp.Status.State != protocol.StateSuccess || string(resp.Status.Result) != want {
					t.Fatalf("response %d: %+v, want %q", i, resp, want)
				}
			}
			var extra PipeResponse
			if err := gdec.Decode(&extra); err != io.EOF {
				t.Fatalf("after the answers: %+v, %v; want the end", extra, err)
			}
		})
	}
}
