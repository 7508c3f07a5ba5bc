// Command lithops-handler is the handler of a default runtime built by the
// CLI: a lithops program with no functions of its own. Started by the Azure
// Functions host (FUNCTIONS_CUSTOMHANDLER_PORT set) it is the runtime host,
// which fetches the user programs that invocations name by hash and runs
// their calls. It imports only the root package and package azure, so it
// cross-builds in any module that builds a lithops program for Azure.
package main

import (
	"context"
	"errors"

	"github.com/lithops-go/lithops"
	_ "github.com/lithops-go/lithops/azure" // the runtime host
)

func main() {
	lithops.Main(func(context.Context) error {
		return errors.New("lithops-handler is a runtime's handler: the Azure Functions host starts it with FUNCTIONS_CUSTOMHANDLER_PORT set")
	})
}
