package lithops_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/lithops-go/lithops"
)

// ErrNegative is a sentinel a function wraps; registered so that callers
// can test for it.
var ErrNegative = errors.New("negative input")

func init() { lithops.RegisterError(ErrNegative) }

var sqrtInt = lithops.Func("example_sqrt_int", func(ctx context.Context, x int) (int, error) {
	if x < 0 {
		return 0, fmt.Errorf("sqrt of %d: %w", x, ErrNegative)
	}
	r := 0
	for (r+1)*(r+1) <= x {
		r++
	}
	return r, nil
})

func ExampleRegisterError() {
	ctx := context.Background()
	fexec, err := lithops.NewExecutor(ctx)
	if err != nil {
		panic(err)
	}
	defer fexec.Close()
	fut, err := lithops.CallAsync(ctx, fexec, sqrtInt, -4)
	if err != nil {
		panic(err)
	}
	_, err = fut.Result(ctx)
	fmt.Println(errors.Is(err, ErrNegative), errors.Is(err, lithops.ErrUser))
	// Output: true true
}

var greeting = lithops.Func("example_greeting", func(ctx context.Context, name string) (string, error) {
	return os.Getenv("GREETING") + ", " + name, nil
})

func ExampleWithExtraEnv() {
	ctx := context.Background()
	fexec, err := lithops.NewExecutor(ctx)
	if err != nil {
		panic(err)
	}
	defer fexec.Close()
	futs, err := lithops.Map(ctx, fexec, greeting, []string{"Ada", "Alan"},
		lithops.WithExtraEnv(map[string]string{"GREETING": "Hello"}))
	if err != nil {
		panic(err)
	}
	fmt.Println(futs.Results(ctx))
	// Output: [Hello, Ada Hello, Alan] <nil>
}

var countRecords = lithops.Func("example_count_records", func(ctx context.Context, c lithops.ObjectChunk) (int, error) {
	r, err := c.Open(ctx)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	return strings.Count(string(b), ";"), nil
})

func ExampleObjNewline() {
	ctx := context.Background()
	fexec, err := lithops.NewExecutor(ctx)
	if err != nil {
		panic(err)
	}
	defer fexec.Close()
	st := fexec.Storage()
	data := strings.Repeat("a record;", 1000)
	if err := st.PutBytes(ctx, st.Bucket(), "example/records.txt", []byte(data)); err != nil {
		panic(err)
	}
	chunks, err := fexec.Partition(ctx, []string{st.Bucket() + "/example/records.txt"},
		lithops.ChunkSize(1000), lithops.ObjNewline(";"))
	if err != nil {
		panic(err)
	}
	total, err := lithops.MapReduce(ctx, fexec, countRecords, chunks, sumAll)
	if err != nil {
		panic(err)
	}
	fmt.Println(total.Result(ctx))
	// Output: 1000 <nil>
}

type Circle struct{ R float64 }
type Square struct{ Side float64 }

// shape returns one of two types in an any; it declares both so that the
// default gob codec can carry them.
var shape = lithops.Func("example_shape", func(ctx context.Context, n int) (any, error) {
	if n%2 == 0 {
		return Square{float64(n)}, nil
	}
	return Circle{float64(n)}, nil
}, lithops.Returns(Circle{}, Square{}))

func ExampleReturns() {
	ctx := context.Background()
	fexec, err := lithops.NewExecutor(ctx)
	if err != nil {
		panic(err)
	}
	defer fexec.Close()
	futs, err := lithops.Map(ctx, fexec, shape, []int{1, 2})
	if err != nil {
		panic(err)
	}
	fmt.Println(futs.Results(ctx))
	// Output: [{1} {2}] <nil>
}
