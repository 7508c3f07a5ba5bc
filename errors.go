package lithops

import (
	"errors"
	"fmt"

	"github.com/lithops-go/lithops/internal/protocol"
)

// Sentinel errors a failed call's *CallError matches with errors.Is, one per
// kind of failure.
var (
	ErrUser     = errors.New("function returned an error")
	ErrPanic    = errors.New("function panicked")
	ErrTimeout  = errors.New("call timed out")
	ErrOOM      = errors.New("call ran out of memory")
	ErrCrashed  = errors.New("worker crashed")
	ErrLost     = errors.New("worker lost")
	ErrMismatch = errors.New("worker program differs from the client's")
	ErrHandler  = errors.New("framework failure around the call")
)

// ErrClosed is returned for calls that had not finished when their executor
// was closed.
var ErrClosed = errors.New("lithops: executor closed")

// ErrCorrupt is wrapped by the error of a call whose status record in
// storage cannot be read (not JSON, not a final status, another call's):
// the call is final; Executor.Rerun replaces the record.
var ErrCorrupt = errors.New("lithops: unreadable status record")

// ErrWaitTimeout is returned by Wait when its timeout expires first.
var ErrWaitTimeout = errors.New("lithops: wait timed out")

// ErrorKind classifies a failed call: "user", "panic", "timeout", "oom",
// "crash", "lost", "mismatch" or "handler".
type ErrorKind = protocol.ErrorKind

// CallError is the error of a failed call, rebuilt on the client from the
// record the worker (or backend) wrote.
type CallError struct {
	Executor string
	Job      string
	Call     string
	Function string
	Attempt  int
	Worker   string
	Kind     ErrorKind
	// Type is the remote error's Go type, e.g. "*errors.errorString".
	Type    string
	Message string
	// Stack is the remote goroutine stack, for panics.
	Stack    string
	ExitCode int
}

// Error formats the failure with the function, executor, job, call,
// attempt and worker, then the kind and message.
func (e *CallError) Error() string {
	where := fmt.Sprintf("%s/%s call %s", e.Executor, e.Job, e.Call)
	if e.Function != "" {
		where = e.Function + " " + where
	}
	if e.Worker != "" {
		where += fmt.Sprintf(" (attempt %d, worker %s)", e.Attempt, e.Worker)
	} else if e.Attempt > 0 {
		where += fmt.Sprintf(" (attempt %d)", e.Attempt)
	}
	switch e.Kind {
	case protocol.KindUser:
		return fmt.Sprintf("%s: %s", where, e.Message)
	case protocol.KindPanic:
		return fmt.Sprintf("%s: panic: %s", where, e.Message)
	}
	return fmt.Sprintf("%s: %s: %s", where, e.Kind, e.Message)
}

// Is matches the sentinel of the error's kind.
func (e *CallError) Is(target error) bool {
	return kindErr(e.Kind) == target
}

func kindErr(k ErrorKind) error {
	switch k {
	case protocol.KindUser:
		return ErrUser
	case protocol.KindPanic:
		return ErrPanic
	case protocol.KindTimeout:
		return ErrTimeout
	case protocol.KindOOM:
		return ErrOOM
	case protocol.KindCrash:
		return ErrCrashed
	case protocol.KindLost:
		return ErrLost
	case protocol.KindMismatch:
		return ErrMismatch
	}
	return ErrHandler
}
