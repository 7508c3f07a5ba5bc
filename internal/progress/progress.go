// Package progress renders the progress of a set of calls: a bar redrawn in
// place on a terminal, or plain lines, few of them, for logs and pipes.
//
// Invariants:
//   - Rendering is a pure function of the counts, the elapsed time and the
//     mode (Format); the Renderer only decides when to write. Time comes
//     from an injectable clock, so output is testable byte for byte.
//   - On a terminal every write starts with a carriage return and ends by
//     clearing the rest of the line; the final write ends with a newline.
//   - Off a terminal a line is written only when the counts changed and
//     either Interval has passed since the last line or the done count
//     crossed another tenth of the total; on a terminal the bar is redrawn
//     at most every Interval/20. Counts held back are written by one
//     deferred write at the end of that gap, so what is shown is never
//     staler than the gap. The final line is always written, once.
//   - Nothing is written after Finish. Bad counts (negative, or more done
//     than total) are clamped, never a panic.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Counts are the calls in each state.
type Counts struct {
	Total   int
	Done    int // finished, successfully or not
	Failed  int // finished with an error (part of Done)
	Running int
	Pending int // not started
}

// clamp makes c consistent: no negative count, Done ≤ Total, Failed ≤ Done.
func (c Counts) clamp() Counts {
	c.Total = max(c.Total, 0)
	c.Done = min(max(c.Done, 0), c.Total)
	c.Failed = min(max(c.Failed, 0), c.Done)
	c.Running = max(c.Running, 0)
	c.Pending = max(c.Pending, 0)
	return c
}

// BarWidth is the number of cells of the terminal bar.
const BarWidth = 24

// DefaultInterval is how often, at most, a plain line is written when the
// done count does not cross a tenth of the total.
const DefaultInterval = 2 * time.Second

// Format renders one progress line (without line ending) for counts c after
// elapsed time. With bar set it starts with a bar of BarWidth cells. The rate
// is done calls per second over elapsed; the ETA is the remaining calls at
// that rate, "?" while nothing is done.
func Format(c Counts, elapsed time.Duration, bar bool) string {
	c = c.clamp()
	var b strings.Builder
	if bar {
		b.WriteString(Bar(c, BarWidth))
		b.WriteByte(' ')
	}
	fmt.Fprintf(&b, "%d/%d done", c.Done, c.Total)
	if c.Failed > 0 {
		fmt.Fprintf(&b, " (%d failed)", c.Failed)
	}
	fmt.Fprintf(&b, ", %d running, %d pending", c.Running, c.Pending)
	secs := elapsed.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(c.Done) / secs
	}
	fmt.Fprintf(&b, " | %s calls/s | %s elapsed", fmtRate(rate), Duration(elapsed))
	switch {
	case c.Done == c.Total:
	case rate > 0:
		eta := time.Duration(float64(c.Total-c.Done) / rate * float64(time.Second))
		fmt.Fprintf(&b, " | ETA %s", Duration(eta))
	default:
		b.WriteString(" | ETA ?")
	}
	return b.String()
}

// Bar draws "[=====>    ]" with width cells between the brackets, filled in
// proportion to c.Done of c.Total (full when Total is 0).
func Bar(c Counts, width int) string {
	c = c.clamp()
	width = max(width, 1)
	filled := width
	if c.Total > 0 {
		filled = c.Done * width / c.Total
	}
	var b strings.Builder
	b.WriteByte('[')
	b.WriteString(strings.Repeat("=", filled))
	if filled < width {
		b.WriteByte('>')
		b.WriteString(strings.Repeat(" ", width-filled-1))
	}
	b.WriteByte(']')
	return b.String()
}

func fmtRate(r float64) string {
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f", r)
	case r >= 10:
		return fmt.Sprintf("%.1f", r)
	}
	return fmt.Sprintf("%.2f", r)
}

// Duration formats d compactly: "0.4s", "12.3s", "4m05s", "2h03m".
func Duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		s := int(d.Round(time.Second) / time.Second)
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	m := int(d.Round(time.Minute) / time.Minute)
	return fmt.Sprintf("%dh%02dm", m/60, m%60)
}

// Options configure a Renderer.
type Options struct {
	// Terminal selects the bar redrawn in place; otherwise plain lines.
	Terminal bool
	// Prefix starts every line (e.g. "lithops: ").
	Prefix string
	// Interval bounds how often plain lines are written (DefaultInterval
	// when 0). On a terminal redraws happen at most every Interval/20.
	Interval time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Renderer writes progress to a writer. It is safe for concurrent use.
type Renderer struct {
	w     io.Writer
	opts  Options
	after func(time.Duration, func()) // time.AfterFunc, replaced in tests

	mu       sync.Mutex
	start    time.Time
	started  bool
	wrote    bool
	lastAt   time.Time // when the last line was written
	shown    Counts    // what it showed
	latest   Counts    // the latest counts reported
	dirty    bool      // latest is not shown yet
	timer    bool      // a deferred write is scheduled
	finished bool
}

// New returns a Renderer writing to w.
func New(w io.Writer, opts Options) *Renderer {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Renderer{w: w, opts: opts, after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
}

// Update reports new counts; the Renderer writes now if it is time to, else
// it schedules one deferred write of the latest counts, so what is shown is
// never older than the write gap. The first call starts the clock that the
// rate and ETA are measured on.
func (r *Renderer) Update(c Counts) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	c = c.clamp()
	now := r.opts.Now()
	if !r.started {
		r.start, r.started = now, true
	}
	r.latest = c
	if r.wrote && c == r.shown {
		r.dirty = false
		return
	}
	gap := r.gap()
	since := now.Sub(r.lastAt)
	if !r.wrote || since >= gap || (!r.opts.Terminal && tenths(c) != tenths(r.shown)) {
		r.write(c, now, false)
		return
	}
	r.dirty = true
	if !r.timer {
		r.timer = true
		r.after(gap-since, r.flush)
	}
}

// gap is the least time between two writes that no tenth step forces.
func (r *Renderer) gap() time.Duration {
	if r.opts.Terminal {
		return r.opts.Interval / 20
	}
	return r.opts.Interval
}

// flush writes the latest counts if they are not shown yet, once the gap
// since the last write (which a tenth step may have moved) has passed.
func (r *Renderer) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished || !r.dirty {
		r.timer = false
		return
	}
	now := r.opts.Now()
	if since := now.Sub(r.lastAt); since < r.gap() {
		r.after(r.gap()-since, r.flush)
		return
	}
	r.timer = false
	r.write(r.latest, now, false)
}

// Finish writes the final line for c (always, once) and ends it with a
// newline. Later calls of Update and Finish do nothing.
func (r *Renderer) Finish(c Counts) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	now := r.opts.Now()
	if !r.started {
		r.start, r.started = now, true
	}
	r.write(c.clamp(), now, true)
	r.finished = true
}

// Finished reports whether Finish was called.
func (r *Renderer) Finished() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.finished
}

func tenths(c Counts) int {
	if c.Total == 0 {
		return 10
	}
	return c.Done * 10 / c.Total
}

func (r *Renderer) write(c Counts, now time.Time, final bool) {
	line := r.opts.Prefix + Format(c, now.Sub(r.start), r.opts.Terminal)
	if r.opts.Terminal {
		line = "\r" + line + "\x1b[K"
		if final {
			line += "\n"
		}
	} else {
		line += "\n"
	}
	// A failing writer (a closed pipe) must not break the wait it reports on.
	_, _ = io.WriteString(r.w, line)
	r.shown, r.lastAt, r.wrote, r.dirty = c, now, true, false
}
