package lithops

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
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

	// chain holds the registered members of the remote error's chain,
	// rebuilt (RegisterError, RegisterErrorType).
	chain []error
}

// Unwrap returns the members of the function's error chain that the
// program registered with RegisterError or RegisterErrorType, rebuilt on
// the client, so that errors.Is and errors.As see them. It is empty for
// errors that were not registered.
func (e *CallError) Unwrap() []error { return e.chain }

// Error formats the failure with the function, executor, job, call,
// attempt and worker, then the kind and message.
func (e *CallError) Error() string {
	where := fmt.Sprintf("%s/%s call %s", e.Executor, e.Job, e.Call)
	if e.Function != "" {
		where = e.Function + " " + where
	}
	// Attempts are numbered from 0, as in Stats.Attempt, CallStats and
	// `lithops jobs show`.
	if e.Worker != "" {
		where += fmt.Sprintf(" (attempt %d, worker %s)", e.Attempt, e.Worker)
	} else {
		where += fmt.Sprintf(" (attempt %d)", e.Attempt)
	}
	// Every kind reads the same way: "…: user: odd input", "…: panic: …".
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

// Registries of the error values and types whose identity survives the trip
// from a function to its caller.
var (
	errRegMu   sync.RWMutex
	sentinels  = map[string]error{} // registered name → value
	errTypes   = map[string]reflect.Type{}
	errChainOn sync.Once
)

// sentinelName names a registered error value: its type and message, the
// same in the client and in its workers (one program).
func sentinelName(err error) string { return fmt.Sprintf("%T: %s", err, err.Error()) }

// RegisterError registers err, an error value compared by identity (a
// sentinel such as io.EOF or a package's ErrX), so that when a function's
// error wraps it (fmt.Errorf("...: %w", err), errors.Join) the caller's
// error satisfies errors.Is(callerErr, err) too, on every backend. Call it
// at package level or in init, beside lithops.Func, so that the client and
// its workers register the same errors. Values are told apart by type and
// message; it panics if err is nil, not comparable, or another value of the
// same type and message is registered.
func RegisterError(err error) {
	if err == nil {
		panic("lithops.RegisterError: nil error")
	}
	if !reflect.TypeOf(err).Comparable() {
		panic(fmt.Sprintf("lithops.RegisterError(%T): the error is not comparable; register its type with RegisterErrorType", err))
	}
	name := sentinelName(err)
	errRegMu.Lock()
	defer errRegMu.Unlock()
	if old, ok := sentinels[name]; ok && old != err {
		panic(fmt.Sprintf("lithops.RegisterError: another error %q of type %T is registered", err.Error(), err))
	}
	sentinels[name] = err
	errChainOn.Do(installErrorChain)
}

// RegisterErrorType registers the error type E so that when a function's
// error has an E in its chain, the caller's error has an E too, rebuilt
// from its fields: errors.As(callerErr, &e) works on every backend. E's
// values must encode with encoding/gob (exported fields, or GobEncoder) or
// encoding/json; one that encodes with neither is carried by message only
// and not rebuilt. Call it at package level or in init, beside lithops.Func.
func RegisterErrorType[E error]() {
	t := reflect.TypeFor[E]()
	if t.Kind() == reflect.Interface {
		panic(fmt.Sprintf("lithops.RegisterErrorType[%v]: an interface type; register the concrete error type", t))
	}
	errRegMu.Lock()
	defer errRegMu.Unlock()
	errTypes[typeName(t)] = t
	errChainOn.Do(installErrorChain)
}

func installErrorChain() { worker.ErrorChain = errorChain }

// errorChain lists the registered members of err's chain, depth first,
// outermost first (at most 64).
func errorChain(err error) []protocol.ErrorLink {
	errRegMu.RLock()
	defer errRegMu.RUnlock()
	var links []protocol.ErrorLink
	var walk func(e error, depth int)
	walk = func(e error, depth int) {
		if e == nil || depth > 32 || len(links) >= 64 {
			return
		}
		t := reflect.TypeOf(e)
		if t.Comparable() {
			if name := sentinelName(e); sentinels[name] == e {
				links = append(links, protocol.ErrorLink{Name: name, Sentinel: true, Message: e.Error()})
			}
		}
		if _, ok := errTypes[typeName(t)]; ok {
			l := protocol.ErrorLink{Name: typeName(t), Message: e.Error()}
			var b bytes.Buffer
			if gob.NewEncoder(&b).Encode(e) == nil {
				l.Value, l.Codec = b.Bytes(), "gob"
			} else if j, err := json.Marshal(e); err == nil {
				l.Value, l.Codec = j, "json"
			}
			links = append(links, l)
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap(), depth+1)
		case interface{ Unwrap() []error }:
			for _, m := range u.Unwrap() {
				walk(m, depth+1)
			}
		}
	}
	walk(err, 0)
	return links
}

// rebuildChain returns the errors that links name and this program
// registered: sentinels by identity, types decoded from their values.
func rebuildChain(links []protocol.ErrorLink) []error {
	errRegMu.RLock()
	defer errRegMu.RUnlock()
	var out []error
	for _, l := range links {
		if l.Sentinel {
			if e, ok := sentinels[l.Name]; ok {
				out = append(out, e)
			}
			continue
		}
		t, ok := errTypes[l.Name]
		if !ok || len(l.Value) == 0 {
			continue
		}
		v := reflect.New(t)
		var err error
		switch l.Codec {
		case "gob":
			err = gob.NewDecoder(bytes.NewReader(l.Value)).Decode(v.Interface())
		case "json":
			err = json.Unmarshal(l.Value, v.Interface())
		default:
			continue
		}
		if err != nil {
			continue
		}
		if e, ok := v.Elem().Interface().(error); ok && (t.Kind() != reflect.Pointer || !v.Elem().IsNil()) {
			out = append(out, e)
		}
	}
	return out
}

// withChain gives a failed call's *CallError the registered members of its
// remote error's chain, from the call's status record.
func withChain(err error, c *callState) error {
	var ce *CallError
	if !errors.As(err, &ce) || ce.chain != nil {
		return err
	}
	c.mu.Lock()
	st := c.status
	c.mu.Unlock()
	if st != nil && st.Error != nil && len(st.Error.Chain) > 0 {
		ce.chain = rebuildChain(st.Error.Chain)
	}
	return err
}
