package localfs

import (
	"testing"

	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/storagetest"
)

// TestConformanceEachLink: the conformance suite with each way of linking
// an O_TMPFILE file into place: by descriptor (AT_EMPTY_PATH, a process
// with CAP_DAC_READ_SEARCH) and by its /proc/self/fd name (any other).
func TestConformanceEachLink(t *testing.T) {
	if !haveProcFD() {
		t.Skip("no /proc/self/fd: Put takes the portable path")
	}
	defer emptyPathLink.Store(emptyPathLink.Load())
	for _, mode := range []struct {
		name string
		v    int32
	}{{"by name", emptyPathNo}, {"unknown", emptyPathUnknown}} {
		t.Run(mode.name, func(t *testing.T) {
			emptyPathLink.Store(mode.v)
			storagetest.RunConformance(t, func(t *testing.T) *storage.Storage {
				d, err := New(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				return storage.New(d, "localhost", "b")
			})
			if mode.v == emptyPathNo && emptyPathLink.Load() != emptyPathNo {
				t.Fatal("a process told to link by name linked by descriptor")
			}
		})
	}
}
