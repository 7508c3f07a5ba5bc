package lithops_test

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/lithops-go/lithops"
)

// Registered at package level: a mapper that emits (word, 1) and a reducer
// that sums a word's counts.
var (
	exampleWords = lithops.MapperFunc("example_words", func(ctx context.Context, line string, emit func(string, int)) error {
		for _, w := range strings.Fields(line) {
			emit(w, 1)
		}
		return nil
	})
	exampleSum = lithops.ReducerFunc("example_sum", func(ctx context.Context, w string, counts iter.Seq[int]) (int, error) {
		n := 0
		for c := range counts {
			n += c
		}
		return n, nil
	})
)

func ExampleMapShuffle() {
	ctx := context.Background()
	fexec, err := lithops.NewExecutor(ctx)
	if err != nil {
		panic(err)
	}
	defer fexec.Close()
	lines := []string{"to be or not to be", "to see or not to see"}
	sh, err := lithops.MapShuffle(ctx, fexec, exampleWords, lines, exampleSum, lithops.Reducers(2))
	if err != nil {
		panic(err)
	}
	for w, n := range sh.All(ctx) { // in key order across the reducers
		fmt.Println(w, n)
	}
	fmt.Println(sh.Err())
	// Output:
	// be 2
	// not 2
	// or 2
	// see 2
	// to 4
	// <nil>
}
