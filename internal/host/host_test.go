package host

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/memory"
)

func TestPickExecDir(t *testing.T) {
	base := t.TempDir()
	noexecDir := filepath.Join(base, "tmp-noexec")
	good := filepath.Join(base, "cache")
	blocked := filepath.Join(base, "file")
	os.WriteFile(blocked, nil, 0o644) // a file: MkdirAll below it fails
	got, err := pickExecDir([]string{filepath.Join(blocked, "x"), noexecDir, good}, func(d string) bool { return d == noexecDir })
	if err != nil || got != good {
		t.Fatalf("got %q, %v; want %q (the temp dir is noexec)", got, err, good)
	}
	if _, err := pickExecDir([]string{noexecDir}, func(string) bool { return true }); err == nil {
		t.Fatal("no executable dir: no error")
	}
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestProgramCacheVerifiesAndCollapses(t *testing.T) {
	ctx := context.Background()
	st := storage.New(memory.New(), "memory", "b")
	st.CreateBucket(ctx, "b")
	prog := []byte("#!/bin/sh\necho hi\n")
	sum := sha256.Sum256(prog)
	sha := hex.EncodeToString(sum[:])
	st.PutBytes(ctx, "b", protocol.ProgramKey(sha), gz(prog))
	pc, err := newProgramCache(st, t.TempDir(), nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	pc.log = discard()
	var wg sync.WaitGroup
	paths := make([]string, 8)
	for i := range paths {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p, err := pc.get(ctx, sha)
			if err != nil {
				t.Error(err)
			}
			paths[i] = p
		}(i)
	}
	wg.Wait()
	for _, p := range paths {
		if p != paths[0] {
			t.Fatalf("different paths %v", paths)
		}
	}
	fi, err := os.Stat(paths[0])
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("cached program: %v, %v", fi, err)
	}
	// Bytes that do not match their hash are never executed.
	bad := strings.Repeat("0", 64)
	st.PutBytes(ctx, "b", protocol.ProgramKey(bad), gz([]byte("tampered")))
	if _, err := pc.get(ctx, bad); err == nil || !strings.Contains(err.Error(), "failed verification") {
		t.Fatalf("tampered program: %v", err)
	}
	if _, err := os.Stat(filepath.Join(pc.dir, bad)); err == nil {
		t.Fatal("a tampered program was kept")
	}
	for _, h := range []string{"../../etc/passwd", "abc"} {
		if _, err := pc.get(ctx, h); err == nil {
			t.Errorf("hash %q accepted", h)
		}
	}
	missing := strings.Repeat("1", 64)
	if _, err := pc.get(ctx, missing); err == nil || !strings.Contains(err.Error(), "not in storage") {
		t.Fatalf("missing program: %v", err)
	}
}

func TestHandlerProtocol(t *testing.T) {
	st := storage.New(memory.New(), "memory", "b")
	st.CreateBucket(context.Background(), "b")
	h, err := New(Options{Storage: st, CacheDir: t.TempDir(), MaxDeliveries: 5, Meta: protocol.RuntimeMeta{Runtime: "rt", LithopsVersion: protocol.LithopsVersion}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readiness: %v %v", resp, err)
	}
	post := func(body string) (int, map[string]any) {
		resp, err := http.Post(srv.URL+"/"+FunctionName, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	meta := `{"protocol":3,"op":"metadata","bucket":"b","meta_key":"lithops.runtimes/azure_functions/rt.probe.json"}`
	quoted, _ := json.Marshal(meta)
	twice, _ := json.Marshal(string(quoted))
	tests := []struct {
		name, body string
		code       int
	}{
		{"not json", `nope`, 400},
		{"no binding", `{"Data":{},"Metadata":{}}`, 400},
		{"not an invocation", `{"Data":{"msgIn":"\"hello\""}}`, 400},
		{"wrong protocol", `{"Data":{"msgIn":{"protocol":99,"bucket":"b","executor_id":"e","job_id":"j","calls":[{"id":"00000"}]}}}`, 400},
		{"path in ids", `{"Data":{"msgIn":{"protocol":3,"bucket":"b","executor_id":"../e","job_id":"j","calls":[{"id":"00000"}]}}}`, 400},
		{"metadata, quoted twice as the host does", `{"Data":{"msgIn":` + string(twice) + `}}`, 200},
		{"missing manifest", `{"Data":{"msgIn":{"protocol":3,"bucket":"b","executor_id":"e","job_id":"j","calls":[{"id":"00000"}]}}}`, 500},
		{"missing manifest, 4th delivery", `{"Data":{"msgIn":{"protocol":3,"bucket":"b","executor_id":"e","job_id":"j","calls":[{"id":"00000"}]}},"Metadata":{"DequeueCount":"4"}}`, 500},
		// The platform will not deliver it again: the call fails for good.
		{"missing manifest, last delivery", `{"Data":{"msgIn":{"protocol":3,"bucket":"b","executor_id":"e","job_id":"j","calls":[{"id":"00000"}]}},"Metadata":{"DequeueCount":"5"}}`, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := post(tc.body)
			if code != tc.code {
				t.Fatalf("status %d (%v), want %d", code, out, tc.code)
			}
			if out == nil {
				t.Fatal("the answer must always be a JSON object")
			}
		})
	}
	// Over HTTP nothing delivers a request again: a failed run fails its
	// calls at once (here: no manifest for job j2).
	code, _ := post(`{"Data":{"req":{"Body":{"protocol":3,"bucket":"b","executor_id":"e","job_id":"j2","calls":[{"id":"00003"}]}}}}`)
	if code != 200 {
		t.Fatalf("HTTP trigger: status %d", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		raw, err := st.GetBytes(context.Background(), "b", protocol.StatusKey("e", "j2", "00003"))
		if err == nil {
			if !strings.Contains(string(raw), "could not run this call") {
				t.Fatalf("HTTP-triggered failure recorded as %s", raw)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an HTTP-triggered invocation that failed left its call without a status")
		}
		time.Sleep(20 * time.Millisecond)
	}

	raw, err := st.GetBytes(context.Background(), "b", protocol.StatusKey("e", "j", "00000"))
	var failed protocol.Status
	if err != nil || json.Unmarshal(raw, &failed) != nil || failed.Error == nil || failed.Error.Kind != protocol.KindHandler ||
		!strings.Contains(failed.Error.Message, "5 times") || !strings.Contains(failed.Error.Message, "job manifest") {
		t.Fatalf("after the last delivery the call's status is %s, %v; want a handler error naming the cause", raw, err)
	}
	raw, err = st.GetBytes(context.Background(), "b", "lithops.runtimes/azure_functions/rt.probe.json")
	if err != nil || !strings.Contains(string(raw), `"runtime_name":"rt"`) {
		t.Fatalf("metadata record: %s, %v", raw, err)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestDuplicateDeliveriesOnOneHost: two deliveries of one call running on
// the same host each see the call end once, whichever execution ends first.
func TestDuplicateDeliveriesOnOneHost(t *testing.T) {
	st := storage.New(memory.New(), "memory", "b")
	h, err := New(Options{Storage: st, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	k := waiterKey("e", "j", "00001")
	c1, c2 := newCollector(), newCollector()
	h.waiters[k] = []*collector{c1, c2}
	base := protocol.Status{Version: protocol.Version, ExecutorID: "e", JobID: "j", CallID: "00001"}
	running := base
	running.State = protocol.StateRunning
	h.deliver(&running)
	first, second := base, base
	first.State, first.WorkerID = protocol.StateSuccess, "w1"
	second.State, second.WorkerID = protocol.StateSuccess, "w2"
	h.deliver(&first)
	h.deliver(&second) // the other execution ends too
	for i, c := range []*collector{c1, c2} {
		got := c.take()
		if len(got) != 1 || got[0].WorkerID != "w1" {
			t.Fatalf("delivery %d saw %d ends (%v), want the first one only", i, len(got), got)
		}
		select {
		case <-c.signal:
		default:
			t.Fatalf("delivery %d was not signalled", i)
		}
	}
}
