package lithops

import (
	"context"

	"github.com/lithops-go/lithops/internal/worker"
	"github.com/lithops-go/lithops/storage"
)

// StorageFrom returns, inside a function, the storage of the executor that
// submitted the call (Lithops' storage parameter). It returns nil outside a
// call.
func StorageFrom(ctx context.Context) *storage.Storage { return worker.StorageFrom(ctx) }

// CallIDFrom returns, inside a function, the call's id ("00000", "00001", …;
// Lithops' id parameter). It returns "" outside a call.
func CallIDFrom(ctx context.Context) string { return worker.CallIDFrom(ctx) }
