package lithops_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/lithops-go/lithops"
)

func ExampleMapFutures() {
	ctx := context.Background()
	fexec, err := lithops.NewExecutor(ctx)
	if err != nil {
		panic(err)
	}
	defer fexec.Close()
	first, err := lithops.Map(ctx, fexec, addSeven, []int{1, 2, 3})
	if err != nil {
		panic(err)
	}
	// Each call of the second stage starts when its own input call has
	// finished, and its worker reads that result from storage.
	second, err := lithops.MapFutures(ctx, fexec, addSeven, first)
	if err != nil {
		panic(err)
	}
	fmt.Println(second.Results(ctx))
	// Output: [15 16 17] <nil>
}

func ExampleThen() {
	ctx := context.Background()
	fexec, err := lithops.NewExecutor(ctx)
	if err != nil {
		panic(err)
	}
	defer fexec.Close()
	fut, err := lithops.CallAsync(ctx, fexec, mustBePositive, -1)
	if err != nil {
		panic(err)
	}
	next, err := lithops.Then(ctx, fexec, fut, addSeven)
	if err != nil {
		panic(err)
	}
	_, err = next.Result(ctx)
	fmt.Println(errors.Is(err, lithops.ErrUpstream), errors.Is(err, lithops.ErrUser))
	// Output: true true
}
