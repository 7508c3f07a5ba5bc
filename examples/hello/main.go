// Command hello is the smallest lithops-go program: one function, one call.
//
//	go run ./examples/hello
package main

import (
	"context"
	"fmt"

	"github.com/lithops-go/lithops"
)

// Functions are registered at package level, by a stable name.
var addSeven = lithops.Func("add_seven", func(ctx context.Context, x int) (int, error) {
	return x + 7, nil
})

func main() {
	// In a worker process Main serves the call and exits; otherwise it runs the program.
	lithops.Main(func(ctx context.Context) error {
		fexec, err := lithops.NewExecutor(ctx) // config file / env / options; default: localhost
		if err != nil {
			return err
		}
		defer fexec.Close()

		fut, err := lithops.CallAsync(ctx, fexec, addSeven, 3)
		if err != nil {
			return err
		}
		v, err := fut.Result(ctx)
		if err != nil {
			return err
		}
		fmt.Println(v) // 10
		return nil
	})
}
