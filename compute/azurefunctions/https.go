package azurefunctions

import (
	"context"
	"time"

	"github.com/lithops-go/lithops/internal/azure/httptrigger"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
)

// postAsync sends HTTPS invocations in the background: the runtime answers
// a POST only once its calls are settled (the platform does not track work
// after the answer), so Invoke does not wait for them. A POST that fails
// for good records its calls as failed, create-if-absent (an outcome the
// runtime recorded first stays), and notifies the executor.
func (b *Backend) postAsync(ctx context.Context, job *protocol.Job, parts []protocol.Invocation) {
	sem := make(chan struct{}, max(b.cfg.AzureFunctions.InvokePoolThreads, 1))
	go func() {
		for _, part := range parts {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			case <-b.stop:
				return
			}
			go func() {
				defer func() { <-sem }()
				_, _, err := httptrigger.Post(ctx, b.http, b.endpoint, b.key, part)
				if err == nil || ctx.Err() != nil {
					return
				}
				b.opts.Logger.Warn("azure_functions: HTTPS invocation failed", "job", job.JobID, "calls", len(part.Calls), "err", err)
				rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				for _, c := range part.Calls {
					st := protocol.Failed(part.ExecutorID, part.JobID, c, protocol.KindHandler, "invoke", "the runtime could not be invoked: "+err.Error())
					got, rerr := worker.RecordFinal(rctx, b.st, part.Bucket, job.Block, st)
					if rerr != nil {
						b.opts.Logger.Warn("azure_functions: failed call not recorded", "call", c.ID, "err", rerr)
						continue // the executor's poll and lease checks still see it
					}
					if b.opts.Notify != nil {
						b.opts.Notify(got)
					}
				}
			}()
		}
	}()
}
