package azure_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	_ "github.com/lithops-go/lithops/azure"
	"github.com/lithops-go/lithops/compute"
	"github.com/lithops-go/lithops/storage"
)

func TestImportRegisters(t *testing.T) {
	if !slices.Contains(compute.Backends(), "azure_functions") {
		t.Errorf("compute backends %v lack azure_functions", compute.Backends())
	}
	if !slices.Contains(storage.Backends(), "azure_storage") {
		t.Errorf("storage backends %v lack azure_storage", storage.Backends())
	}
}

// TestHelloLinksNoAzure keeps the smallest program small: without the
// import, neither the Azure SDK nor gonum/plot is linked in.
func TestHelloLinksNoAzure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/lithops-go/lithops/examples/hello").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, heavy := range []string{"github.com/Azure/", "github.com/AzureAD/", "gonum.org/", "github.com/lithops-go/lithops/azure", "github.com/lithops-go/lithops/compute/azurefunctions", "github.com/lithops-go/lithops/storage/azblob"} {
			if strings.HasPrefix(pkg, heavy) {
				t.Errorf("examples/hello links %s", pkg)
			}
		}
	}
}
