package lithops

import (
	"io"
	"os"

	"github.com/lithops-go/lithops/internal/progress"
	"github.com/mattn/go-isatty"
)

// WaitProgressBar shows Wait's progress on w: calls done, failed, running and
// pending, the rate in calls per second and the time left at that rate.
//
// When w is a terminal the line is a bar redrawn in place (at most ten times
// a second) and ended with a newline when Wait's condition is met. Otherwise
// (a file, a pipe, a CI log) it writes plain lines, one when a tenth more of
// the calls are done or at most one every two seconds, and always a final
// line when the condition is met. If Wait ends by its timeout or ctx instead,
// the last line shown stays as it is.
//
// It chains with WaitProgress: a function given before it is still called.
// Typical use:
//
//	lithops.Wait(ctx, futures, lithops.WaitProgressBar(os.Stderr))
func WaitProgressBar(w io.Writer) WaitOption {
	terminal := isTerminal(w)
	return func(wc *waitConfig) {
		prefix := "lithops: "
		if terminal {
			prefix = ""
		}
		r := progress.New(w, progress.Options{Terminal: terminal, Prefix: prefix})
		prev := wc.progress
		wc.progress = func(p Progress) {
			if prev != nil {
				prev(p)
			}
			c := progress.Counts{Total: p.Total, Done: p.Done, Failed: p.Failed, Running: p.Running, Pending: p.Pending}
			// wc holds every option by the time Wait reports, so this
			// is the condition Wait returns on.
			if satisfied(p, wc.returnWhen) {
				r.Finish(c)
				return
			}
			r.Update(c)
		}
	}
}

// isTerminal reports whether w is a terminal (and not TERM=dumb).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil || os.Getenv("TERM") == "dumb" {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}
