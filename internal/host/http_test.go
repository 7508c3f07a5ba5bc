package host

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/memory"
)

// postHTTP serves inv as an HTTP-triggered invocation (what the Functions
// host POSTs for a request to the function's URL) and returns the answer's
// res.statusCode and body, and how long the answer took.
func postHTTP(t *testing.T, ctx context.Context, h *Host, inv *protocol.Invocation) (string, string, time.Duration) {
	t.Helper()
	body, _ := json.Marshal(inv)
	payload, _ := json.Marshal(map[string]any{"Data": map[string]any{"req": map[string]any{"Method": "POST", "Body": string(body)}}})
	req := httptest.NewRequest(http.MethodPost, "/"+FunctionName, strings.NewReader(string(payload))).WithContext(ctx)
	rec := httptest.NewRecorder()
	start := time.Now()
	h.Handler().ServeHTTP(rec, req)
	took := time.Since(start)
	var out struct {
		Outputs struct {
			Res struct {
				StatusCode string `json:"statusCode"`
				Body       string `json:"body"`
			} `json:"res"`
		}
	}
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
		t.Fatalf("answer %d %s", rec.Code, rec.Body)
	}
	return out.Outputs.Res.StatusCode, out.Outputs.Res.Body, took
}

// status reads the recorded status of call id of job e/j, nil if none.
func status(t *testing.T, st *storage.Storage, id string) *protocol.Status {
	t.Helper()
	raw, err := st.GetBytes(context.Background(), "b", protocol.StatusKey("e", "j", id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	var s protocol.Status
	if err != nil || json.Unmarshal(raw, &s) != nil {
		t.Fatalf("status of %s: %s, %v", id, raw, err)
	}
	return &s
}

// TestHTTPTriggerAnswersWhenSettled: the platform tracks no work after an
// HTTP-triggered function has answered, so the host answers only when the
// calls are settled (here: killed at their 1-s timeout and recorded).
func TestHTTPTriggerAnswersWhenSettled(t *testing.T) {
	st := storage.New(memory.New(), "memory", "b")
	st.CreateBucket(context.Background(), "b")
	path, sha := stuckProgram(t)
	h, err := New(Options{Storage: st, CacheDir: t.TempDir(), Workers: 2, CompiledPath: path, CompiledSHA: sha, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	inv := putJob(t, st, sha, 1, 3)
	code, body, took := postHTTP(t, context.Background(), h, inv)
	if code != "200" {
		t.Fatalf("answer %s %q after %v, want 200 once the calls are settled", code, body, took)
	}
	for _, c := range inv.Calls {
		if s := status(t, st, c.ID); s == nil || s.Error == nil || s.Error.Kind != protocol.KindTimeout {
			t.Fatalf("call %s had status %+v when the host answered; want its recorded timeout", c.ID, s)
		}
	}
}

// TestHTTPTriggerBound: calls that cannot settle before the HTTP limit
// (here the request's own deadline leaves 3 s) are recorded as failed when
// it is reached, and the host answers then, without a hand-off.
func TestHTTPTriggerBound(t *testing.T) {
	st := storage.New(memory.New(), "memory", "b")
	st.CreateBucket(context.Background(), "b")
	path, sha := stuckProgram(t)
	h, err := New(Options{Storage: st, CacheDir: t.TempDir(), Workers: 1, CompiledPath: path, CompiledSHA: sha, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	inv := putJob(t, st, sha, 60, 2)
	ctx, cancel := context.WithTimeout(context.Background(), httpMargin+3*time.Second)
	defer cancel()
	code, body, took := postHTTP(t, ctx, h, inv)
	if code != "200" || took > 10*time.Second {
		t.Fatalf("answer %s %q after %v; want 200 at the 3-s bound", code, body, took)
	}
	for _, c := range inv.Calls {
		s := status(t, st, c.ID)
		if s == nil || s.Error == nil || s.Error.Kind != protocol.KindHandler || !strings.Contains(s.Error.Message, "not finished within 3s") {
			t.Fatalf("call %s: status %+v; want failed at the HTTP bound", c.ID, s)
		}
	}
}

// TestHTTPTriggerHandOff: an invocation whose calls may outlast the HTTP
// limit (3 calls of 100 s on 1 worker) goes to the trigger queue, and only
// then is answered 202; one that fits runs at once. A failed hand-off
// answers 5xx, which the client retries.
func TestHTTPTriggerHandOff(t *testing.T) {
	st := storage.New(memory.New(), "memory", "b")
	st.CreateBucket(context.Background(), "b")
	path, sha := stuckProgram(t)
	var mu sync.Mutex
	var queued []*protocol.Invocation
	var fail error
	h, err := New(Options{Storage: st, CacheDir: t.TempDir(), Workers: 1, CompiledPath: path, CompiledSHA: sha, Logger: discard(),
		HandOff: func(ctx context.Context, inv *protocol.Invocation) error {
			mu.Lock()
			defer mu.Unlock()
			if fail != nil {
				return fail
			}
			queued = append(queued, inv)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	inv := putJob(t, st, sha, 100, 3)
	code, body, took := postHTTP(t, context.Background(), h, inv)
	if code != "202" || took > 5*time.Second || len(queued) != 1 || len(queued[0].Calls) != 3 {
		t.Fatalf("answer %s %q after %v, %d queued; want 202 at once after queueing the invocation", code, body, took, len(queued))
	}
	if s := status(t, st, inv.Calls[0].ID); s != nil {
		t.Fatalf("a handed-off call ran here too: %+v", s)
	}
	fail = errors.New("queue down")
	if code, body, _ := postHTTP(t, context.Background(), h, inv); code != "503" || !strings.Contains(body, "queue down") {
		t.Fatalf("failed hand-off answered %s %q, want 503", code, body)
	}
	// Without a timeout the calls have no bound: queued.
	fail = nil
	h.jobs, h.oldJobs = nil, nil // forget the manifest: putJob rewrites it
	inv = putJob(t, st, sha, 0, 1)
	if code, _, _ := postHTTP(t, context.Background(), h, inv); code != "202" || len(queued) != 2 {
		t.Fatalf("job without a timeout: answer %s, %d queued; want it queued", code, len(queued))
	}
	// Within the bound: run here, answered when settled.
	h.jobs, h.oldJobs = nil, nil // forget the manifest: putJob rewrites it
	inv = putJob(t, st, sha, 1, 2)
	if code, _, _ := postHTTP(t, context.Background(), h, inv); code != "200" || len(queued) != 2 || status(t, st, inv.Calls[1].ID) == nil {
		t.Fatalf("job that fits: answer %s, %d queued; want it run here", code, len(queued))
	}
}
