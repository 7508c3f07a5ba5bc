package azurefunctions

import (
	"context"

	"github.com/lithops-go/lithops/compute"
)

// Importing the package links the azure_functions backend in.
func init() {
	compute.Register("azure_functions", func(ctx context.Context, p compute.Params) (compute.Backend, error) {
		b, err := New(ctx, Options{
			Config: p.Config, Storage: p.Storage, ExecutorID: p.ExecutorID, Notify: p.Notify, Logger: p.Logger,
		})
		if err != nil {
			return nil, err
		}
		return b, nil
	})
}
