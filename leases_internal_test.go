package lithops

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/driver"
	"github.com/lithops-go/lithops/storage/memory"
)

// leaser is a backend whose runtime leases calls (compute.Leaser) but runs
// nothing: the test writes the leases, and the backend records what the
// executor invokes.
type leaser struct {
	mu    sync.Mutex
	calls []protocol.Call
}

func (b *leaser) Name() string { return "leaser" }
func (b *leaser) Close() error { return nil }
func (b *leaser) Leases() bool { return true }
func (b *leaser) Invoke(ctx context.Context, job *protocol.Job, inv protocol.Invocation) error {
	b.mu.Lock()
	b.calls = append(b.calls, inv.Calls...)
	b.mu.Unlock()
	return nil
}

// leaseJob submits a no-op map of n calls with retries on an executor
// whose backend is a leaser and whose poller the test drives by hand
// (lease 1 s), on storage over d when d is not nil.
func leaseJob(ctx context.Context, t *testing.T, d driver.Driver, n, retries int) (*Executor, *leaser, *jobState) {
	t.Helper()
	cfg := config.Default()
	cfg.Localhost.StorageRoot = t.TempDir()
	cfg.Lithops.LeaseTimeout = 1
	cfg.Lithops.MonitoringInterval = 600
	e, err := NewExecutor(ctx, WithConfig(cfg), WithBackend("inprocess"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if d != nil {
		e.st = storage.New(d, "memory", e.bucket)
		if err := e.st.CreateBucket(ctx, e.bucket); err != nil {
			t.Fatal(err)
		}
	}
	e.backend.Close()
	fake := &leaser{}
	e.backend = fake
	fs, err := Map(ctx, e, echoInt, make([]int, n), WithRetries(retries))
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	js, _ := e.lookup(fs.At(0).JobID())
	e.mu.Unlock()
	return e, fake, js
}

// retried returns the calls invoked again (attempt > 0), by id.
func (b *leaser) retried() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := map[string]int{}
	for _, c := range b.calls {
		if c.Attempt > 0 {
			m[c.ID] = c.Attempt
		}
	}
	return m
}

// TestMessageLeases drives the poller's lease tracking by hand: one lease
// per message vouches for all its calls; a call belongs to the lease that
// names its newest attempt; when a lease stops changing for longer than the
// job's lease, exactly the calls it still vouches for are lost (retried),
// and the stale object is deleted (a garbled one too); a lease naming an
// attempt the client has moved past, or with a body that cannot be read,
// vouches for nothing.
func TestMessageLeases(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, fake, js := leaseJob(ctx, t, nil, 4, 3)
	jobID := js.job.JobID
	id := protocol.CallID
	write := func(key string, calls ...protocol.LeaseCall) {
		t.Helper()
		b, _ := json.Marshal(protocol.Lease{At: time.Now(), Calls: calls})
		if err := e.st.PutBytes(ctx, e.bucket, key, b); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(key string) bool {
		_, err := e.st.Head(ctx, e.bucket, key)
		return err == nil
	}
	msgA := protocol.MessageLeaseKey(e.id, jobID, protocol.Call{ID: id(0)})
	msgB := protocol.MessageLeaseKey(e.id, jobID, protocol.Call{ID: id(3)})
	garbled := protocol.MessageLeaseKey(e.id, jobID, protocol.Call{ID: id(2), Attempt: 7})
	a := []protocol.LeaseCall{{ID: id(0)}, {ID: id(1)}, {ID: id(2)}}
	write(msgA, a...)
	write(msgB, protocol.LeaseCall{ID: id(3)})
	if err := e.st.PutBytes(ctx, e.bucket, garbled, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	e.pollJob(js)
	for i, want := range []string{msgA, msgA, msgA, msgB} {
		if got := js.calls[i].leaseKey; got != want {
			t.Fatalf("call %d has lease %q, want %q", i, got, want)
		}
	}

	// A keeps changing, B does not: call 3 alone is lost.
	for range 3 {
		time.Sleep(450 * time.Millisecond)
		write(msgA, a...)
		e.pollJob(js)
	}
	waitRetried(t, fake, map[string]int{id(3): 1})
	if exists(msgB) {
		t.Error("the stale lease of call 3's message was not deleted")
	}
	if !exists(msgA) {
		t.Error("a live lease was deleted")
	}
	// A lease naming call 3's lost attempt (a late write of the dead
	// runtime) does not vouch for the retry.
	write(protocol.MessageLeaseKey(e.id, jobID, protocol.Call{ID: id(3)}), protocol.LeaseCall{ID: id(3)})
	e.pollJob(js)
	if got := js.calls[3].leaseKey; got != "" {
		t.Fatalf("call 3's retry is vouched for by %q, a lease of its lost attempt", got)
	}

	// Call 1 moves to a lease of a newer attempt (C); then A stops: calls 0
	// and 2 are lost, call 1 is not.
	msgC := protocol.MessageLeaseKey(e.id, jobID, protocol.Call{ID: id(1), Attempt: 1})
	write(msgC, protocol.LeaseCall{ID: id(1), Attempt: 1})
	e.pollJob(js)
	if got := js.calls[1].leaseKey; got != msgC {
		t.Fatalf("call 1 has lease %q, want the newer attempt's %q", got, msgC)
	}
	for range 3 {
		time.Sleep(450 * time.Millisecond)
		write(msgC, protocol.LeaseCall{ID: id(1), Attempt: 1})
		e.pollJob(js)
	}
	waitRetried(t, fake, map[string]int{id(0): 1, id(2): 1, id(3): 1})
	if exists(msgA) || !exists(msgC) {
		t.Errorf("after A went stale: A exists %v, C exists %v; want only C", exists(msgA), exists(msgC))
	}
	// The lost attempts are recorded, each once.
	for _, i := range []int{0, 2, 3} {
		if !exists(protocol.AttemptKey(e.id, jobID, id(i), 0)) {
			t.Errorf("call %d's lost attempt 0 is not recorded", i)
		}
	}
	if exists(protocol.AttemptKey(e.id, jobID, id(1), 0)) {
		t.Error("call 1, vouched for by a newer lease, was declared lost")
	}
}

// waitRetried waits until the backend has seen exactly want retried.
func waitRetried(t *testing.T, b *leaser, want map[string]int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := b.retried()
		if len(got) == len(want) {
			keys := make([]string, 0, len(got))
			for k, v := range got {
				if want[k] == v {
					keys = append(keys, k)
				}
			}
			if len(keys) == len(want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("retried %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaseFaults is a storage driver that fails, while set, one operation
// ("get", "put", "delete" or "list") on keys containing a part of the
// layout (default: lease objects).
type leaseFaults struct {
	driver.Driver
	mu   sync.Mutex
	fail string
	on   string
}

var errLeaseFault = errors.New("injected lease fault")

func (d *leaseFaults) set(op string) { d.setOn(op, "/lease/") }
func (d *leaseFaults) setOn(op, part string) {
	d.mu.Lock()
	d.fail, d.on = op, part
	d.mu.Unlock()
}
func (d *leaseFaults) failing(op, key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fail == op && strings.Contains(key, d.on)
}
func (d *leaseFaults) Put(ctx context.Context, bucket, key string, r io.Reader, opts driver.PutOptions) error {
	if d.failing("put", key) {
		return errLeaseFault
	}
	return d.Driver.Put(ctx, bucket, key, r, opts)
}
func (d *leaseFaults) GetRange(ctx context.Context, bucket, key string, off, n int64) (io.ReadCloser, error) {
	if d.failing("get", key) {
		return nil, errLeaseFault
	}
	return d.Driver.GetRange(ctx, bucket, key, off, n)
}
func (d *leaseFaults) Delete(ctx context.Context, bucket string, keys []string) error {
	for _, k := range keys {
		if d.failing("delete", k) {
			return errLeaseFault
		}
	}
	return d.Driver.Delete(ctx, bucket, keys)
}
func (d *leaseFaults) List(ctx context.Context, bucket, prefix string) ([]driver.ObjectInfo, error) {
	if d.failing("list", prefix) {
		return nil, errLeaseFault
	}
	return d.Driver.List(ctx, bucket, prefix)
}

// TestLeaseErrorPaths: a lease that cannot be read now is read at a later
// poll; a stale lease whose calls cannot be recorded lost stays, and the
// next poll records them; a stale lease that cannot be deleted loses its
// calls once, not at every poll; a Rerun whose leases cannot be listed fails with the reason
// and deletes no record.
func TestLeaseErrorPaths(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	faults := &leaseFaults{Driver: memory.New()}
	e, fake, js := leaseJob(ctx, t, faults, 2, 1)
	jobID := js.job.JobID
	key := protocol.MessageLeaseKey(e.id, jobID, protocol.Call{ID: protocol.CallID(0)})
	b, _ := json.Marshal(protocol.Lease{At: time.Now(), Calls: []protocol.LeaseCall{{ID: protocol.CallID(0)}, {ID: protocol.CallID(1)}}})
	if err := e.st.PutBytes(ctx, e.bucket, key, b); err != nil {
		t.Fatal(err)
	}

	faults.set("get")
	e.pollJob(js)
	if js.calls[0].leaseKey != "" {
		t.Fatal("a lease whose body could not be read vouches for calls")
	}
	faults.set("")
	e.pollJob(js)
	if js.calls[0].leaseKey != key || js.calls[1].leaseKey != key {
		t.Fatalf("after the read recovered: leases %q, %q", js.calls[0].leaseKey, js.calls[1].leaseKey)
	}

	// Stale, but the lost attempts cannot be recorded: nothing is retried,
	// the lease stays, and the next poll tries again.
	faults.setOn("put", "/attempt/")
	time.Sleep(1100 * time.Millisecond)
	e.pollJob(js)
	time.Sleep(300 * time.Millisecond)
	if got := fake.retried(); len(got) != 0 {
		t.Fatalf("retried %v although the lost attempts were not recorded", got)
	}
	if _, err := e.st.Head(ctx, e.bucket, key); err != nil {
		t.Fatalf("the lease of calls not recorded lost was deleted: %v", err)
	}

	faults.set("delete")
	e.pollJob(js) // stale: both lost, the delete fails
	waitRetried(t, fake, map[string]int{protocol.CallID(0): 1, protocol.CallID(1): 1})
	if _, err := e.st.Head(ctx, e.bucket, key); err != nil {
		t.Fatalf("the stale lease: %v; its delete failed, it should still be there", err)
	}
	e.pollJob(js) // read again: it names attempt 0, which the client moved past
	time.Sleep(1100 * time.Millisecond)
	e.pollJob(js)
	fake.mu.Lock()
	invoked := len(fake.calls)
	fake.mu.Unlock()
	if invoked != 4 { // attempt 0 of both calls, then attempt 1 of each, once
		t.Fatalf("%d invocations, want 4: a stale lease whose delete failed lost its calls again", invoked)
	}
	faults.set("")

	// Rerun: the job's calls are pending (their retries never ran here).
	faults.set("list")
	before, _ := e.st.List(ctx, e.bucket, protocol.JobPrefix(e.id, jobID))
	if _, err := e.Rerun(ctx, jobID); !errors.Is(err, errLeaseFault) {
		t.Fatalf("Rerun with leases unlistable: %v", err)
	}
	faults.set("")
	after, _ := e.st.List(ctx, e.bucket, protocol.JobPrefix(e.id, jobID))
	if len(after) != len(before) {
		t.Errorf("a failed Rerun changed the job's records: %d objects, was %d", len(after), len(before))
	}
}

// TestLostCallEndedMeanwhile: a call found lost whose worker was only slow
// and recorded its final status just before the lost attempt was recorded
// ends with that status, as does one whose runtime host gave up on it (a
// handler error at an attempt with retries left, in the call's final
// record); no next attempt runs for nothing. A lost call without a final
// status is retried as before.
func TestLostCallEndedMeanwhile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, fake, js := leaseJob(ctx, t, nil, 3, 2)
	ended, gone, gaveUp := js.calls[0], js.calls[1], js.calls[2]
	handler := protocol.Failed(e.id, js.job.JobID, protocol.Call{ID: gaveUp.id}, protocol.KindHandler, "delivery", "the host gave up")
	hb, err := json.Marshal(handler)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutBytes(ctx, e.bucket, protocol.StatusKey(e.id, js.job.JobID, gaveUp.id), hb); err != nil {
		t.Fatal(err)
	}
	raw, err := protocol.Gob.Marshal(envelope[int]{V: 7})
	if err != nil {
		t.Fatal(err)
	}
	st := &protocol.Status{Version: protocol.Version, ExecutorID: e.id, JobID: js.job.JobID, CallID: ended.id,
		State: protocol.StateSuccess, Result: raw, HasResult: true, End: time.Now()}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutBytes(ctx, e.bucket, protocol.StatusKey(e.id, js.job.JobID, ended.id), b); err != nil {
		t.Fatal(err)
	}
	js.pollMu.Lock()
	errEnded := e.lost(ctx, js, ended, 0, 2*time.Second)
	errGone := e.lost(ctx, js, gone, 0, 2*time.Second)
	errGaveUp := e.lost(ctx, js, gaveUp, 0, 2*time.Second)
	js.pollMu.Unlock()
	if errEnded != nil || errGone != nil || errGaveUp != nil {
		t.Fatalf("lost: %v, %v, %v", errEnded, errGone, errGaveUp)
	}
	waitRetried(t, fake, map[string]int{gone.id: 1})
	time.Sleep(300 * time.Millisecond) // a retry of the ended call would have been invoked by now
	if got := fake.retried(); len(got) != 1 {
		t.Fatalf("retried %v: only call %s had no final status", got, gone.id)
	}
	if !ended.isDone() || ended.state() != StateSuccess {
		t.Fatalf("the call that ended meanwhile: done %v, state %v; want its recorded success", ended.isDone(), ended.state())
	}
	if !gaveUp.isDone() || gaveUp.state() != StateError {
		t.Fatalf("the call its host gave up on: done %v, state %v; want its recorded failure", gaveUp.isDone(), gaveUp.state())
	}
}
