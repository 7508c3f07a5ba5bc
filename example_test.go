package lithops_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/lithops-go/lithops"
)

// Registered at package level, as in any lithops program.
var addSeven = lithops.Func("add_seven", func(ctx context.Context, x int) (int, error) {
	return x + 7, nil
})

var sumAll = lithops.Func("sum_all", func(ctx context.Context, xs []int) (int, error) {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n, nil
})

var mustBePositive = lithops.Func("must_be_positive", func(ctx context.Context, x int) (int, error) {
	if x <= 0 {
		return 0, fmt.Errorf("%d is not positive", x)
	}
	return x, nil
})

func ExampleCallAsync() {
	ctx := context.Background()
	fexec, err := lithops.NewExecutor(ctx) // localhost: no config needed
	if err != nil {
		panic(err)
	}
	defer fexec.Close()
	fut, err := lithops.CallAsync(ctx, fexec, addSeven, 3)
	if err != nil {
		panic(err)
	}
	fmt.Println(fut.Result(ctx))
	// Output: 10 <nil>
}

func ExampleMap() {
	ctx := context.Background()
	fexec, err := lithops.NewExecutor(ctx)
	if err != nil {
		panic(err)
	}
	defer fexec.Close()
	futs, err := lithops.Map(ctx, fexec, addSeven, []int{1, 2, 3, 4})
	if err != nil {
		panic(err)
	}
	fmt.Println(futs.Results(ctx)) // always in input order
	// Output: [8 9 10 11] <nil>
}

func ExampleMapReduce() {
	ctx := context.Background()
	fexec, err := lithops.NewExecutor(ctx)
	if err != nil {
		panic(err)
	}
	defer fexec.Close()
	// The reducer receives every map result, in input order.
	fut, err := lithops.MapReduce(ctx, fexec, addSeven, []int{1, 2, 3}, sumAll)
	if err != nil {
		panic(err)
	}
	fmt.Println(fut.Result(ctx))
	// Output: 27 <nil>
}

func ExampleWait() {
	ctx := context.Background()
	fexec, err := lithops.NewExecutor(ctx)
	if err != nil {
		panic(err)
	}
	defer fexec.Close()
	futs, err := lithops.Map(ctx, fexec, mustBePositive, []int{1, -2, 3})
	if err != nil {
		panic(err)
	}
	p, err := lithops.Wait(ctx, futs, lithops.AllCompleted)
	fmt.Printf("%d done, %d failed, %v\n", p.Done, p.Failed, err)
	_, err = futs.At(1).Result(ctx)
	var ce *lithops.CallError
	fmt.Println(errors.Is(err, lithops.ErrUser), errors.As(err, &ce) && ce.Message == "-2 is not positive")
	// Output:
	// 3 done, 1 failed, <nil>
	// true true
}

// ExampleInProcess tests registered functions with the same API, in this
// process: no workers, no storage setup.
func ExampleInProcess() {
	ctx := context.Background()
	fexec, err := lithops.NewExecutor(ctx, lithops.InProcess())
	if err != nil {
		panic(err)
	}
	defer fexec.Close()
	futs, err := lithops.Map(ctx, fexec, mustBePositive, []int{3, -1})
	if err != nil {
		panic(err)
	}
	v, err := futs.At(0).Result(ctx)
	fmt.Println(v, err)
	_, err = futs.At(1).Result(ctx)
	fmt.Println(errors.Is(err, lithops.ErrUser))
	// Output:
	// 3 <nil>
	// true
}

// A long-running client cleans each job once it has its results, so that
// neither storage nor the executor's memory grows with the jobs it ran.
func ExampleExecutor_Clean() {
	ctx := context.Background()
	fexec, err := lithops.NewExecutor(ctx)
	if err != nil {
		panic(err)
	}
	defer fexec.Close()
	for batch := 0; batch < 3; batch++ {
		futs, err := lithops.Map(ctx, fexec, addSeven, []int{batch, batch + 1})
		if err != nil {
			panic(err)
		}
		got, err := futs.Results(ctx)
		if err != nil {
			panic(err)
		}
		if err := fexec.Clean(ctx, futs.At(0).JobID()); err != nil {
			panic(err)
		}
		fmt.Println(got, len(fexec.Jobs()))
	}
	// Output:
	// [7 8] 0
	// [8 9] 0
	// [9 10] 0
}
