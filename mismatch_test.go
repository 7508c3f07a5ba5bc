package lithops_test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lithops-go/lithops"
)

func TestRegistryMismatch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	prog := filepath.Join(t.TempDir(), "otherprog")
	out, err := exec.Command("go", "build", "-o", prog, "./testdata/otherprog").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx := ctxT(t)
	e := newExecutor(t, lithops.WithRuntime(prog))
	f, err := lithops.CallAsync(ctx, e, sumPair, [2]int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Result(ctx)
	if !errors.Is(err, lithops.ErrMismatch) {
		t.Fatalf("got %v, want ErrMismatch", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`function "simple_map_function" is func(context.Context, [2]int) (int, error) in the client but func(context.Context, []int) (int, error) in the worker`,
		`function "hello_world" is registered in the client but not in the worker`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q:\n%s", want, msg)
		}
	}
}
