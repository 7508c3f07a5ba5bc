package memory_test

import (
	"testing"

	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/memory"
	"github.com/lithops-go/lithops/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.RunConformance(t, func(t *testing.T) *storage.Storage {
		s := storage.New(memory.New(), "memory", "lithops-test")
		t.Cleanup(func() { s.Close() })
		return s
	}, storagetest.HeapBacked())
}
