package azure

import (
	"reflect"
	"runtime"
	"testing"

	"github.com/lithops-go/lithops/compute/azurefunctions"
)

// CheckHandler recognises a runtime host by this function's name.
func TestHostFuncName(t *testing.T) {
	if got := runtime.FuncForPC(reflect.ValueOf(serveRuntimeHost).Pointer()).Name(); got != azurefunctions.HostFunc {
		t.Fatalf("serveRuntimeHost is %s, azurefunctions.HostFunc says %s", got, azurefunctions.HostFunc)
	}
}
