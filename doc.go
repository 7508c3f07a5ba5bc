// Package lithops runs Go functions at massive parallelism, locally or on
// serverless platforms, with the programming model of Lithops: CallAsync,
// Map, MapReduce, futures, Wait and results.
//
// Functions are registered at package level under a stable name, and the
// program calls Main (or Init) first thing in main:
//
//	var addSeven = lithops.Func("add_seven", func(ctx context.Context, x int) (int, error) {
//		return x + 7, nil
//	})
//
//	func main() {
//		lithops.Main(func(ctx context.Context) error {
//			fexec, err := lithops.NewExecutor(ctx)
//			if err != nil {
//				return err
//			}
//			defer fexec.Close()
//			fut, err := lithops.CallAsync(ctx, fexec, addSeven, 3)
//			if err != nil {
//				return err
//			}
//			v, err := fut.Result(ctx) // 10
//			fmt.Println(v, err)
//			return nil
//		})
//	}
//
// Go cannot ship closures, so a worker is the user's own program started in
// worker mode: Main serves calls there instead of running the program. A
// function's input carries everything it needs; inputs and results travel
// through a Codec (gob by default, JSON selectable).
//
// Invariants:
//   - Storage is the source of truth: every call ends with a status record in
//     storage, written by the worker or, when the worker died, by the backend.
//   - Results come back in input order; a call that returned a zero or nil
//     value yields that value, it is never dropped.
//   - A failed call yields a *CallError that errors.Is matches against
//     ErrUser, ErrPanic, ErrTimeout, ErrOOM, ErrCrashed, ErrLost, ErrMismatch.
//   - With no configuration at all everything runs on this machine: the
//     localhost backend (resident worker processes) and localhost storage (a
//     directory under the OS temp dir).
package lithops
