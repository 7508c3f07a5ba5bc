// Command otherprog is a user program whose registry differs from the test
// binary's: the mismatch test runs it as the localhost runtime, and the
// CLI's runtime build test compiles it into a runtime (hence package azure).
package main

import (
	"context"

	"github.com/lithops-go/lithops"
	_ "github.com/lithops-go/lithops/azure"
)

// Same name as in the tests, different input type.
var _ = lithops.Func("simple_map_function", func(ctx context.Context, xs []int) (int, error) {
	return len(xs), nil
})

func main() {
	lithops.Init()
}
