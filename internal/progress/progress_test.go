package progress

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	tests := []struct {
		name    string
		c       Counts
		elapsed time.Duration
		bar     bool
		want    string
	}{
		{"start", Counts{Total: 100, Pending: 100}, 0, false,
			"0/100 done, 0 running, 100 pending | 0.00 calls/s | 0.0s elapsed | ETA ?"},
		{"half", Counts{Total: 100, Done: 50, Failed: 2, Running: 8, Pending: 42}, 5 * time.Second, false,
			"50/100 done (2 failed), 8 running, 42 pending | 10.0 calls/s | 5.0s elapsed | ETA 5.0s"},
		{"bar", Counts{Total: 8, Done: 2, Running: 6}, 4 * time.Second, true,
			"[======>                 ] 2/8 done, 6 running, 0 pending | 0.50 calls/s | 4.0s elapsed | ETA 12.0s"},
		{"done", Counts{Total: 3, Done: 3, Failed: 1}, 1500 * time.Millisecond, true,
			"[========================] 3/3 done (1 failed), 0 running, 0 pending | 2.00 calls/s | 1.5s elapsed"},
		{"fast", Counts{Total: 10000, Done: 2500, Running: 100, Pending: 7400}, 10 * time.Second, false,
			"2500/10000 done, 100 running, 7400 pending | 250 calls/s | 10.0s elapsed | ETA 30.0s"},
		{"long eta", Counts{Total: 1000, Done: 1}, 10 * time.Second, false,
			"1/1000 done, 0 running, 0 pending | 0.10 calls/s | 10.0s elapsed | ETA 2h47m"},
		{"empty", Counts{}, 0, true,
			"[========================] 0/0 done, 0 running, 0 pending | 0.00 calls/s | 0.0s elapsed"},
		{"bad counts clamped", Counts{Total: 2, Done: 5, Failed: 9, Running: -1, Pending: -3}, time.Second, false,
			"2/2 done (2 failed), 0 running, 0 pending | 2.00 calls/s | 1.0s elapsed"},
		{"negative total", Counts{Total: -4, Done: 1}, -time.Second, false,
			"0/0 done, 0 running, 0 pending | 0.00 calls/s | 0.0s elapsed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Format(tt.c, tt.elapsed, tt.bar); got != tt.want {
				t.Errorf("Format:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0.0s"},
		{400 * time.Millisecond, "0.4s"},
		{59*time.Second + 940*time.Millisecond, "59.9s"},
		{4*time.Minute + 5*time.Second, "4m05s"},
		{2*time.Hour + 3*time.Minute, "2h03m"},
	}
	for _, tt := range tests {
		if got := Duration(tt.d); got != tt.want {
			t.Errorf("Duration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTest returns a renderer on a fake clock whose deferred writes are kept
// in *timers instead of being scheduled.
func newTest(terminal bool) (*Renderer, *strings.Builder, *fakeClock, *[]func()) {
	var out strings.Builder
	clk := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := New(&out, Options{Terminal: terminal, Prefix: "lithops: ", Now: clk.Now})
	timers := &[]func(){}
	r.after = func(d time.Duration, f func()) { *timers = append(*timers, f) }
	return r, &out, clk, timers
}

func TestRendererPlain(t *testing.T) {
	r, out, clk, timers := newTest(false)
	c := Counts{Total: 100, Pending: 100}
	r.Update(c) // first: written
	r.Update(c) // unchanged: not written
	clk.Add(100 * time.Millisecond)
	r.Update(Counts{Total: 100, Done: 5, Running: 10, Pending: 85}) // same tenth, within interval: deferred
	clk.Add(100 * time.Millisecond)
	r.Update(Counts{Total: 100, Done: 9, Running: 10, Pending: 81}) // still deferred, one timer
	if len(*timers) != 1 {
		t.Fatalf("%d deferred writes scheduled, want 1", len(*timers))
	}
	clk.Add(100 * time.Millisecond)
	r.Update(Counts{Total: 100, Done: 10, Running: 10, Pending: 80}) // crosses 10%: written
	(*timers)[0]()                                                   // nothing held back: no write
	clk.Add(500 * time.Millisecond)
	r.Update(Counts{Total: 100, Done: 12, Failed: 1, Running: 10, Pending: 78}) // deferred
	clk.Add(time.Second)
	(*timers)[1]() // too early: rescheduled
	if len(*timers) != 3 {
		t.Fatalf("early deferred write not rescheduled: %d timers", len(*timers))
	}
	clk.Add(time.Second)
	(*timers)[2]() // the deferred write
	clk.Add(3 * time.Second)
	r.Update(Counts{Total: 100, Done: 13, Failed: 1, Running: 10, Pending: 77}) // interval passed: written
	clk.Add(time.Second)
	r.Finish(Counts{Total: 100, Done: 100, Failed: 1})
	r.Update(Counts{Total: 100, Done: 100}) // after Finish: nothing
	r.Finish(Counts{Total: 100, Done: 100})
	want := "" +
		"lithops: 0/100 done, 0 running, 100 pending | 0.00 calls/s | 0.0s elapsed | ETA ?\n" +
		"lithops: 10/100 done, 10 running, 80 pending | 33.3 calls/s | 0.3s elapsed | ETA 2.7s\n" +
		"lithops: 12/100 done (1 failed), 10 running, 78 pending | 4.29 calls/s | 2.8s elapsed | ETA 20.5s\n" +
		"lithops: 13/100 done (1 failed), 10 running, 77 pending | 2.24 calls/s | 5.8s elapsed | ETA 38.8s\n" +
		"lithops: 100/100 done (1 failed), 0 running, 0 pending | 14.7 calls/s | 6.8s elapsed\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if !r.Finished() {
		t.Error("Finished() = false after Finish")
	}
}

func TestRendererTerminal(t *testing.T) {
	r, out, clk, timers := newTest(true)
	r.Update(Counts{Total: 4, Pending: 4})
	clk.Add(50 * time.Millisecond) // under the 100 ms redraw gap
	r.Update(Counts{Total: 4, Running: 4})
	if len(*timers) != 1 {
		t.Fatalf("%d deferred redraws, want 1", len(*timers))
	}
	clk.Add(50 * time.Millisecond)
	(*timers)[0]() // the held-back redraw
	clk.Add(900 * time.Millisecond)
	r.Update(Counts{Total: 4, Done: 2, Running: 2})
	clk.Add(time.Second)
	r.Finish(Counts{Total: 4, Done: 4})
	want := "" +
		"\rlithops: [>                       ] 0/4 done, 0 running, 4 pending | 0.00 calls/s | 0.0s elapsed | ETA ?\x1b[K" +
		"\rlithops: [>                       ] 0/4 done, 4 running, 0 pending | 0.00 calls/s | 0.1s elapsed | ETA ?\x1b[K" +
		"\rlithops: [============>           ] 2/4 done, 2 running, 0 pending | 2.00 calls/s | 1.0s elapsed | ETA 1.0s\x1b[K" +
		"\rlithops: [========================] 4/4 done, 0 running, 0 pending | 2.00 calls/s | 2.0s elapsed\x1b[K\n"
	if out.String() != want {
		t.Errorf("output:\n%q\nwant:\n%q", out, want)
	}
}

func TestRendererFinishFirst(t *testing.T) {
	r, out, _, _ := newTest(false)
	r.Finish(Counts{})
	if want := "lithops: 0/0 done, 0 running, 0 pending | 0.00 calls/s | 0.0s elapsed\n"; out.String() != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestRendererRealTimer(t *testing.T) {
	// With the real scheduler a held-back update is written after the gap.
	var mu sync.Mutex
	var out strings.Builder
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	r := New(w, Options{Interval: 20 * time.Millisecond})
	r.Update(Counts{Total: 1000, Pending: 1000})
	r.Update(Counts{Total: 1000, Done: 1, Pending: 999})
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		s := out.String()
		mu.Unlock()
		if strings.Contains(s, "1/1000 done") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("held-back update never written: %q", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
