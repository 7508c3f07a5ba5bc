//go:build unix

package procpool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
)

// pidOf is the process id a pid or sleep call answered.
func pidOf(t *testing.T, r Result) int {
	t.Helper()
	if r.Err != nil || r.Response.Status == nil || r.Response.Status.State != protocol.StateSuccess {
		t.Fatalf("want a successful answer, got %+v (err %v)", r.Response, r.Err)
	}
	pid, err := strconv.Atoi(string(r.Response.Status.Result))
	if err != nil {
		t.Fatalf("result %q is not a pid", r.Response.Status.Result)
	}
	return pid
}

// alive reports whether process pid exists (and is not a zombie we own:
// the pool reaps its workers).
func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// TestSubmit: how one task ends, for each way it can.
func TestSubmit(t *testing.T) {
	e := newTestEnv(t)
	badProg := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(badProg, []byte("#!/nonexistent/interpreter\n"), 0o755)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		fn, in  string
		timeout time.Duration
		memMB   int
		ctx     context.Context
		program string
		linux   bool
		check   func(t *testing.T, r Result, took time.Duration)
	}{
		{name: "answer", fn: "pid", check: func(t *testing.T, r Result, _ time.Duration) {
			if pidOf(t, r) == os.Getpid() || r.WorkerID == "" || r.Response.Status.WorkerID != r.WorkerID {
				t.Fatalf("answer %+v from worker %q", r.Response.Status, r.WorkerID)
			}
		}},
		{name: "killed at its timeout", fn: "sleep", in: "60s", timeout: 200 * time.Millisecond, check: func(t *testing.T, r Result, took time.Duration) {
			var te *TimeoutError
			if !errors.As(r.Err, &te) || te.Timeout != 200*time.Millisecond {
				t.Fatalf("err %v, want a TimeoutError", r.Err)
			}
			if took < KillGrace || took > KillGrace+10*time.Second {
				t.Fatalf("killed after %v, want the timeout plus KillGrace (%v)", took, KillGrace)
			}
		}},
		{name: "worker dies", fn: "exit", check: func(t *testing.T, r Result, _ time.Duration) {
			var ee *ExitError
			if !errors.As(r.Err, &ee) || ee.Record.Kind != protocol.KindCrash || ee.Record.ExitCode != 3 {
				t.Fatalf("err %v, want an ExitError with status 3", r.Err)
			}
		}},
		{name: "memory over its limit", fn: "alloc", in: "256", memMB: 64, linux: true, check: func(t *testing.T, r Result, _ time.Duration) {
			var oe *OOMError
			if !errors.As(r.Err, &oe) || oe.LimitMB != 64 || oe.RSS <= 64<<20 {
				t.Fatalf("err %v, want an OOMError over 64 MiB", r.Err)
			}
		}},
		{name: "program does not start", fn: "pid", program: badProg, check: func(t *testing.T, r Result, _ time.Duration) {
			var se *StartError
			if !errors.As(r.Err, &se) || r.WorkerID != "" {
				t.Fatalf("err %v from %q, want a StartError and no worker", r.Err, r.WorkerID)
			}
		}},
		{name: "ctx ended before it started", fn: "pid", ctx: cancelled, check: func(t *testing.T, r Result, _ time.Duration) {
			if !errors.Is(r.Err, context.Canceled) || r.WorkerID != "" {
				t.Fatalf("err %v from %q, want context.Canceled and no worker", r.Err, r.WorkerID)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.linux && runtime.GOOS != "linux" {
				t.Skip("memory limits are enforced on Linux only")
			}
			opts := e.options(1)
			opts.Program = tc.program
			p, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			_, inv := e.job(tc.fn, tc.in, 1, nil)
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			tk, done := task(ctx, inv, tc.timeout)
			tk.MemoryMB = tc.memMB
			start := time.Now()
			if err := p.Submit(tk); err != nil {
				t.Fatal(err)
			}
			r := wait(t, done)
			tc.check(t, r, time.Since(start))
			if r.Err != nil {
				// A worker that failed its task is gone.
				eventually(t, 10*time.Second, "the failed worker exits", func() bool { return p.Stats().Processes == 0 })
			}
		})
	}
}

// TestReuseAndReplace: a worker serves task after task; one that died is
// replaced by a fresh process for the next task.
func TestReuseAndReplace(t *testing.T) {
	e := newTestEnv(t)
	p, err := New(e.options(1))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	run := func(fn string) Result {
		_, inv := e.job(fn, "", 1, nil)
		tk, done := task(context.Background(), inv, 0)
		if err := p.Submit(tk); err != nil {
			t.Fatal(err)
		}
		return wait(t, done)
	}
	first := pidOf(t, run("pid"))
	if again := pidOf(t, run("pid")); again != first {
		t.Fatalf("second task ran in process %d, want the resident %d", again, first)
	}
	if r := run("exit"); r.Err == nil {
		t.Fatal("a worker that exited mid-call answered")
	}
	eventually(t, 10*time.Second, "the dead worker is reaped", func() bool { return !alive(first) })
	next := pidOf(t, run("pid"))
	if next == first {
		t.Fatal("the dead worker was used again")
	}
	if s := p.Stats(); s.Processes != 1 {
		t.Fatalf("stats %+v, want the one replacement process", s)
	}
}

// TestIdleEviction: a worker idle for IdleTimeout exits, and the next task
// starts a new one; with no IdleTimeout it stays.
func TestIdleEviction(t *testing.T) {
	e := newTestEnv(t)
	opts := e.options(2)
	opts.IdleTimeout = 200 * time.Millisecond
	evicting, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer evicting.Close()
	keeping, err := New(e.options(2))
	if err != nil {
		t.Fatal(err)
	}
	defer keeping.Close()
	pids := map[*Pool]int{}
	for _, p := range []*Pool{evicting, keeping} {
		_, inv := e.job("pid", "", 1, nil)
		tk, done := task(context.Background(), inv, 0)
		if err := p.Submit(tk); err != nil {
			t.Fatal(err)
		}
		pids[p] = pidOf(t, wait(t, done))
	}
	eventually(t, 10*time.Second, "the idle worker exits", func() bool {
		return evicting.Stats().Processes == 0 && !alive(pids[evicting])
	})
	if s := keeping.Stats(); s.Processes != 1 || !alive(pids[keeping]) {
		t.Fatalf("without IdleTimeout the worker went: %+v", s)
	}
	_, inv := e.job("pid", "", 1, nil)
	tk, done := task(context.Background(), inv, 0)
	if err := evicting.Submit(tk); err != nil {
		t.Fatal(err)
	}
	if pid := pidOf(t, wait(t, done)); pid == pids[evicting] {
		t.Fatal("a task ran on an evicted worker")
	}
}

// TestBound: at most Size workers run at once however many tasks wait, and
// with one worker tasks start in the order submitted.
func TestBound(t *testing.T) {
	e := newTestEnv(t)
	for _, size := range []int{1, 3} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			p, err := New(e.options(size))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			const n = 8
			_, inv := e.job("sleep", "50ms", n, nil)
			var (
				mu                   sync.Mutex
				running, most, procs int
				order                []string
				workers              = map[string]bool{}
			)
			done := make(chan Result, n)
			tasks := make([]*Task, n)
			for i, c := range inv.Calls {
				one := inv
				one.Calls = []protocol.Call{c}
				tasks[i] = &Task{Ctx: context.Background(), Invocation: one,
					Started: func(id string, _ time.Time) {
						mu.Lock()
						defer mu.Unlock()
						running++
						most = max(most, running)
						procs = max(procs, p.Stats().Processes)
						order = append(order, c.ID)
						workers[id] = true
					},
					Done: func(r Result) {
						mu.Lock()
						running--
						mu.Unlock()
						done <- r
					}}
			}
			if err := p.Submit(tasks...); err != nil {
				t.Fatal(err)
			}
			for range n {
				if r := wait(t, done); r.Err != nil {
					t.Fatal(r.Err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if most > size || procs > size || len(workers) > size {
				t.Fatalf("%d tasks ran at once on %d processes (%d workers); the bound is %d", most, procs, len(workers), size)
			}
			if size == 1 {
				for i, id := range order {
					if id != protocol.CallID(i) {
						t.Fatalf("tasks started in order %v", order)
					}
				}
			}
		})
	}
}

// TestClose: Close ends the running task and the queued ones with
// ErrClosed, stops the workers, and refuses new tasks.
func TestClose(t *testing.T) {
	e := newTestEnv(t)
	p, err := New(e.options(1))
	if err != nil {
		t.Fatal(err)
	}
	_, inv := e.job("sleep", "60s", 3, nil)
	started := make(chan string, 3)
	done := make(chan Result, 3)
	for _, c := range inv.Calls {
		one := inv
		one.Calls = []protocol.Call{c}
		err := p.Submit(&Task{Ctx: context.Background(), Invocation: one,
			Started: func(id string, _ time.Time) { started <- id },
			Done:    func(r Result) { done <- r }})
		if err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("no task started")
	}
	p.Close()
	for range 3 {
		if r := wait(t, done); !errors.Is(r.Err, ErrClosed) {
			t.Fatalf("a task ended with %v after Close, want ErrClosed", r.Err)
		}
	}
	if s := p.Stats(); s.Processes != 0 || s.Queued != 0 {
		t.Fatalf("after Close: %+v", s)
	}
	tk, _ := task(context.Background(), inv, 0)
	if err := p.Submit(tk); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
}

// TestWorkerEnvironment: workers get Env and the config pipe, and with
// CleanEnv none of this process's other variables.
func TestWorkerEnvironment(t *testing.T) {
	e := newTestEnv(t)
	t.Setenv("PROCPOOL_TEST_SECRET", "s3cret")
	tests := []struct {
		clean     bool
		variable  string
		wantValue string
	}{
		{false, "PROCPOOL_TEST_SECRET", "s3cret"},
		{true, "PROCPOOL_TEST_SECRET", ""},
		{true, "PROCPOOL_TEST_GIVEN", "yes"},
		{true, WorkerEnv, "localhost"},
	}
	for _, tc := range tests {
		t.Run(tc.variable+"/clean="+strconv.FormatBool(tc.clean), func(t *testing.T) {
			opts := e.options(1)
			opts.CleanEnv = tc.clean
			opts.Env = []string{"PROCPOOL_TEST_GIVEN=yes"}
			p, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			_, inv := e.job("env", tc.variable, 1, nil)
			tk, done := task(context.Background(), inv, 0)
			if err := p.Submit(tk); err != nil {
				t.Fatal(err)
			}
			r := wait(t, done)
			if r.Err != nil || r.Response.Status == nil || string(r.Response.Status.Result) != tc.wantValue {
				t.Fatalf("worker sees %s=%q (%+v, %v), want %q", tc.variable, r.Response.Status.Result, r.Response, r.Err, tc.wantValue)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"no size", Options{}},
		{"negative idle timeout", Options{Size: 1, IdleTimeout: -time.Second}},
		{"missing program", Options{Size: 1, Program: filepath.Join(t.TempDir(), "none")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.opts); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
