package lithops_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/lithops-go/lithops"
)

func TestFuncPanics(t *testing.T) {
	tests := []struct {
		name, want string
		register   func()
	}{
		{"duplicate", `a function is already registered under this name`, func() {
			lithops.Func("hello_world", func(ctx context.Context, s string) (string, error) { return s, nil })
		}},
		{"after Init", `registration after lithops.Main or lithops.Init started`, func() {
			lithops.Func("too_late", func(ctx context.Context, s string) (string, error) { return s, nil })
		}},
		{"empty name", `empty function name`, func() {
			lithops.Func("", func(ctx context.Context, s string) (string, error) { return s, nil })
		}},
		{"nil function", `nil function`, func() {
			lithops.Func[int, int]("nil_fn", nil)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), tc.want) {
					t.Fatalf("panic %v, want one containing %q", r, tc.want)
				}
			}()
			tc.register()
		})
	}
}

func TestFunctionIdentity(t *testing.T) {
	if sumStruct.Name() != "sum_struct" || sumStruct.Signature() != "func(context.Context, github.com/lithops-go/lithops_test.pair) (int, error)" {
		t.Fatalf("%s %s", sumStruct.Name(), sumStruct.Signature())
	}
	if v, err := sumStruct.Call(context.Background(), pair{1, 2}); err != nil || v != 3 {
		t.Fatalf("Call: %v, %v", v, err)
	}
}
