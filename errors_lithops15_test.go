package lithops_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/lithops-go/lithops"
)

// errOdd is a sentinel a function wraps; errUnregistered is one it is not
// registered.
var (
	errOdd          = errors.New("odd number")
	errUnregistered = errors.New("never registered")
)

// rangeError is an error type with fields the caller reads back.
type rangeError struct {
	Value, Max int
}

func (e *rangeError) Error() string { return fmt.Sprintf("%d is over %d", e.Value, e.Max) }

func init() {
	lithops.RegisterError(errOdd)
	lithops.RegisterError(io.ErrUnexpectedEOF)
	lithops.RegisterErrorType[*rangeError]()
}

// failWith fails in the way its input names.
var failWith = lithops.Func("lithops15_fail_with", func(ctx context.Context, mode string) (int, error) {
	switch mode {
	case "sentinel":
		return 0, fmt.Errorf("check 7: %w", errOdd)
	case "type":
		return 0, fmt.Errorf("check: %w", &rangeError{Value: 12, Max: 10})
	case "join":
		return 0, errors.Join(fmt.Errorf("read: %w", io.ErrUnexpectedEOF), fmt.Errorf("and: %w", &rangeError{Value: 3, Max: 2}))
	case "unregistered":
		return 0, fmt.Errorf("wrapped: %w", errUnregistered)
	case "panic":
		panic(fmt.Errorf("panicking with: %w", errOdd))
	}
	return 1, nil
})

// TestRegisteredErrorsSurvive: a function's wrapped sentinel or error type,
// when registered, is found by errors.Is / errors.As on the caller, on
// localhost worker processes and in-process; unregistered errors keep their
// message and outer type name and match nothing of theirs.
func TestRegisteredErrorsSurvive(t *testing.T) {
	ctx := ctxT(t)
	execs := map[string]*lithops.Executor{"localhost": newExecutor(t)}
	inproc, err := lithops.NewExecutor(ctx, lithops.InProcess())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inproc.Close() })
	execs["inprocess"] = inproc
	for name, e := range execs {
		for _, tc := range []struct {
			mode     string
			kind     error
			is       []error
			isNot    []error
			asRange  *rangeError
			msg      string
			typeName string
		}{
			{mode: "sentinel", kind: lithops.ErrUser, is: []error{errOdd}, msg: "user: check 7: odd number", typeName: "*fmt.wrapError"},
			{mode: "type", kind: lithops.ErrUser, asRange: &rangeError{12, 10}, msg: "user: check: 12 is over 10"},
			{mode: "join", kind: lithops.ErrUser, is: []error{io.ErrUnexpectedEOF}, asRange: &rangeError{3, 2}},
			{mode: "unregistered", kind: lithops.ErrUser, isNot: []error{errUnregistered, errOdd}, msg: "user: wrapped: never registered", typeName: "*fmt.wrapError"},
			{mode: "panic", kind: lithops.ErrPanic, is: []error{errOdd}, msg: "panic: panicking with: odd number"},
		} {
			t.Run(name+"/"+tc.mode, func(t *testing.T) {
				f, err := lithops.CallAsync(ctx, e, failWith, tc.mode)
				if err != nil {
					t.Fatal(err)
				}
				_, err = f.Result(ctx)
				if !errors.Is(err, tc.kind) {
					t.Fatalf("error %v is not %v", err, tc.kind)
				}
				for _, want := range tc.is {
					if !errors.Is(err, want) {
						t.Errorf("errors.Is(%v, %v) is false", err, want)
					}
				}
				for _, not := range tc.isNot {
					if errors.Is(err, not) {
						t.Errorf("errors.Is(%v, %v) is true", err, not)
					}
				}
				var re *rangeError
				if got := errors.As(err, &re); got != (tc.asRange != nil) {
					t.Errorf("errors.As(%v, *rangeError) = %v", err, got)
				} else if got && *re != *tc.asRange {
					t.Errorf("rebuilt %+v, want %+v", *re, *tc.asRange)
				}
				if tc.msg != "" && !strings.HasSuffix(err.Error(), tc.msg) {
					t.Errorf("message %q, want it to end with %q", err, tc.msg)
				}
				var ce *lithops.CallError
				if !errors.As(err, &ce) {
					t.Fatalf("%T is not a *CallError", err)
				}
				if tc.typeName != "" && ce.Type != tc.typeName {
					t.Errorf("type %q, want %q", ce.Type, tc.typeName)
				}
				// Attempts read from 0 in the error, as in Stats.
				s, _ := f.Stats()
				if !strings.Contains(err.Error(), fmt.Sprintf("(attempt %d", s.Attempt)) || ce.Attempt != s.Attempt {
					t.Errorf("error %q, attempt %d; stats attempt %d", err, ce.Attempt, s.Attempt)
				}
			})
		}
	}
}

func TestRegisterErrorRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"nil", func() { lithops.RegisterError(nil) }},
		{"same message and type", func() { lithops.RegisterError(errors.New("odd number")) }},
		{"interface type", func() { lithops.RegisterErrorType[error]() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.f()
		})
	}
	lithops.RegisterError(errOdd) // the same value again is fine
}
