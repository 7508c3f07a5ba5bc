package host

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops/storage/driver"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/memory"
)

// slowProgram answers each call with an error response after 300 ms; it
// returns its path and hash.
func slowProgram(t *testing.T) (string, string) {
	return shProgram(t, "slow", `while read -r line <&3; do sleep 0.3; printf '{"error":"no"}\n' >&4; done`)
}

// noLeaseDelete is storage whose lease objects cannot be deleted.
type noLeaseDelete struct{ driver.Driver }

func (d noLeaseDelete) Delete(ctx context.Context, bucket string, keys []string) error {
	for _, k := range keys {
		if strings.Contains(k, "/lease/") {
			return errors.New("injected delete failure")
		}
	}
	return d.Driver.Delete(ctx, bucket, keys)
}

// leaseJob stores the manifest of job e/j with n calls and a lease.
func leaseJob(t *testing.T, st *storage.Storage, sha string, n int, lease float64) *protocol.Invocation {
	t.Helper()
	inv := putJob(t, st, sha, 30, n)
	job := protocol.Job{Version: protocol.Version, ExecutorID: "e", JobID: "j", Function: "f", Calls: n,
		Inputs: make([]protocol.Range, n), Timeout: 30, Bucket: "b", Lease: lease, Program: sha}
	raw, _ := json.Marshal(job)
	if err := st.PutBytes(context.Background(), "b", protocol.JobKey("e", "j"), raw); err != nil {
		t.Fatal(err)
	}
	inv.Calls[0].Attempt = 1 // the key names the first call's attempt
	return inv
}

// TestMessageLease: a delivery of four calls keeps one lease object for
// all of them, named after its first call and attempt, listing every call,
// rewritten while they wait and run; it is deleted once they have all
// ended, and left (to go stale) when the delivery stops before that.
func TestMessageLease(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cancel     bool // stop the delivery once the lease is seen
		failDelete bool // the lease cannot be deleted
	}{{"every call ends", false, false}, {"delivery stopped", true, false}, {"lease delete fails", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			var d driver.Driver = memory.New()
			if tc.failDelete {
				d = noLeaseDelete{d}
			}
			st := storage.New(d, "memory", "b")
			st.CreateBucket(context.Background(), "b")
			path, sha := slowProgram(t)
			h, err := New(Options{Storage: st, CacheDir: t.TempDir(), Workers: 1, CompiledPath: path, CompiledSHA: sha, Logger: discard()})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			inv := leaseJob(t, st, sha, 4, 0.3)
			key := protocol.MessageLeaseKey("e", "j", inv.Calls[0])
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			runCtx, stop := context.WithCancel(ctx)
			defer stop()
			ran := make(chan error, 1)
			go func() { _, err := h.Run(runCtx, inv); ran <- err }()

			etags := map[string]bool{}
			var runErr error
		watch:
			for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				select {
				case runErr = <-ran:
					break watch
				default:
				}
				infos, err := st.List(ctx, "b", protocol.LeasesPrefix("e", "j"))
				if err != nil {
					t.Fatal(err)
				}
				if len(infos) > 1 {
					t.Fatalf("%d lease objects for one message, want 1", len(infos))
				}
				if len(infos) == 0 {
					continue
				}
				if infos[0].Key != key {
					t.Fatalf("lease %s, want %s", infos[0].Key, key)
				}
				etags[infos[0].ETag] = true
				raw, err := st.GetBytes(ctx, "b", key)
				if err != nil {
					continue // deleted as the delivery ended
				}
				l, err := protocol.ParseLease(raw)
				if err != nil || len(l.Calls) != 4 || l.Calls[0] != (protocol.LeaseCall{ID: inv.Calls[0].ID, Attempt: 1}) || l.Calls[3].ID != inv.Calls[3].ID {
					t.Fatalf("lease body %s: %+v, %v", raw, l, err)
				}
				if tc.cancel && len(etags) >= 2 {
					stop()
				}
			}
			if tc.cancel {
				if runErr == nil {
					t.Fatal("a stopped delivery returned no error")
				}
				if _, err := st.Head(ctx, "b", key); err != nil {
					t.Fatalf("the lease of a stopped delivery: %v; want it left to go stale", err)
				}
				return
			}
			if runErr != nil {
				t.Fatal(runErr) // also when the lease cannot be deleted: the calls are recorded
			}
			if tc.failDelete {
				if _, err := st.Head(ctx, "b", key); err != nil {
					t.Fatalf("lease after a failed delete: %v", err)
				}
				return // left to go stale; the client deletes it
			}
			if len(etags) < 3 {
				t.Errorf("the lease was written %d times in 1.2 s of calls, want renewals every 100 ms", len(etags))
			}
			if infos, _ := st.List(ctx, "b", protocol.LeasesPrefix("e", "j")); len(infos) != 0 {
				t.Errorf("%d lease objects left after every call ended", len(infos))
			}
		})
	}
}
