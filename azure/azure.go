// Package azure links the Azure backends into a lithops program. A program
// that runs on Azure imports it for its side effects, in one line:
//
//	import _ "github.com/lithops-go/lithops/azure"
//
// The import registers the azure_functions compute backend (package
// compute/azurefunctions), the azure_storage storage backend (package
// storage/azblob) and the Azure Functions runtime host: a program the
// Functions host starts as its custom handler (FUNCTIONS_CUSTOMHANDLER_PORT
// set) serves as the runtime host from lithops.Main or lithops.Init, so
// that any lithops program can be the handler of the default runtime.
//
// Without the import, package lithops links only the localhost and
// inprocess compute backends and the localhost and memory storage, and a
// configuration that asks for azure_functions or azure_storage fails with
// an error that names this import (config.ErrNotLinked). Leaving Azure out
// keeps the Azure SDK, MSAL and their dependencies out of programs that
// never use them.
package azure

import (
	"context"
	"os"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/compute/azurefunctions"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/storage"
	_ "github.com/lithops-go/lithops/storage/azblob" // registers azure_storage
)

func init() {
	lithops.RegisterHostMode(lithops.HostMode{
		Name:   "runtime host",
		Detect: func() bool { return os.Getenv(appsettings.CustomHandlerPort) != "" },
		Serve:  serveRuntimeHost,
	})
}

// serveRuntimeHost runs this program as the runtime host of an Azure
// Functions app (the Functions host started it as its custom handler). The
// host's code is in the library, so the default runtime needs no build of
// its own.
func serveRuntimeHost(ctx context.Context) error {
	return azurefunctions.Serve(ctx, azurefunctions.ServeOptions{
		OpenStorage: func(ctx context.Context, cfg *config.Config) (*storage.Storage, error) {
			return storage.Open(ctx, cfg, cfg.Lithops.Storage)
		},
	})
}
