// Command pi estimates π by Monte Carlo over N map calls, then reduces.
//
//	go run ./examples/pi -calls 8 -samples 5000000
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/lithops-go/lithops"
)

// Task is one map call's share of the work.
type Task struct {
	Seed    uint64
	Samples int
}

// countInside counts the random points of the unit square inside the
// quarter circle.
var countInside = lithops.Func("pi_count_inside", func(ctx context.Context, t Task) (int, error) {
	r := rand.New(rand.NewPCG(t.Seed, t.Seed^0x9e3779b97f4a7c15))
	in := 0
	for i := 0; i < t.Samples; i++ {
		if i%1_000_000 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		x, y := r.Float64(), r.Float64()
		if x*x+y*y <= 1 {
			in++
		}
	}
	return in, nil
})

var sum = lithops.Func("pi_sum", func(ctx context.Context, counts []int) (int, error) {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n, nil
})

func main() {
	calls := flag.Int("calls", 8, "number of map calls")
	samples := flag.Int("samples", 5_000_000, "samples per call")
	flag.Parse()
	lithops.Main(func(ctx context.Context) error {
		if *calls < 1 || *samples < 1 {
			return fmt.Errorf("-calls and -samples must be ≥ 1")
		}
		fexec, err := lithops.NewExecutor(ctx)
		if err != nil {
			return err
		}
		defer fexec.Close()
		start := time.Now()
		tasks := make([]Task, *calls)
		for i := range tasks {
			tasks[i] = Task{Seed: uint64(i + 1), Samples: *samples}
		}
		fut, err := lithops.MapReduce(ctx, fexec, countInside, tasks, sum)
		if err != nil {
			return err
		}
		inside, err := fut.Result(ctx)
		if err != nil {
			return err
		}
		pi := 4 * float64(inside) / float64(*calls**samples)
		fmt.Printf("π ≈ %.6f (error %.2g) from %d samples in %d calls, %v\n",
			pi, math.Abs(pi-math.Pi), *calls**samples, *calls, time.Since(start).Round(time.Millisecond))
		return nil
	})
}
