package localhost

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/memory"
)

// TestNew: the options a backend cannot work with are refused with the
// setting to fix; a backend closed refuses calls.
func TestNew(t *testing.T) {
	st := storage.New(memory.New(), "memory", "b")
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no workers", Options{Storage: st}, "worker_processes must be ≥ 1"},
		{"no storage", Options{Workers: 1}, "no storage"},
		{"missing runtime", Options{Workers: 1, Storage: st, Program: filepath.Join(t.TempDir(), "none")}, "runtime program"},
		{"negative idle timeout", Options{Workers: 1, Storage: st, IdleTimeout: -1}, "idle timeout"},
		{"own program", Options{Workers: 1, Storage: st, CleanEnv: true, EscalateOOM: true}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(tc.opts)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want an error containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Name() != "localhost" {
				t.Fatalf("name %q", b.Name())
			}
			b.Close()
			inv := protocol.Invocation{Calls: []protocol.Call{{ID: "00000"}}}
			if err := b.Invoke(context.Background(), &protocol.Job{}, inv); err == nil || !strings.Contains(err.Error(), "closed") {
				t.Fatalf("Invoke after Close: %v", err)
			}
		})
	}
}
