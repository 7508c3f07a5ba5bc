package azurefunctions

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
	"github.com/lithops-go/lithops/storage"
)

// isHTTPS reports whether trigger names the HTTPS trigger.
func isHTTPS(trigger string) bool { return trigger == "https" || trigger == "http" }

// KeyFetcher is the optional part of a RuntimeDeployer that reads a
// function app's key (armdeploy.Deployer has it).
type KeyFetcher interface {
	FunctionKey(ctx context.Context, resourceGroup, app string) (string, error)
}

// postInvocation sends one invocation to the runtime's HTTPS endpoint and
// returns the response body. 429 and 5xx answers are retried with backoff
// and jitter; the function key travels in a header, never in storage.
func postInvocation(ctx context.Context, hc *http.Client, url, key string, inv protocol.Invocation) ([]byte, int, error) {
	body, _ := json.Marshal(inv)
	var lastErr error
	for attempt := 0; attempt < 6; attempt++ {
		if attempt > 0 {
			d := time.Duration(100<<attempt)*time.Millisecond + time.Duration(rand.Int64N(int64(100*time.Millisecond)))
			select {
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			case <-time.After(d):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("x-functions-key", key)
		resp, err := hc.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			lastErr = fmt.Errorf("%s answered %s", url, resp.Status)
			continue
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			return nil, resp.StatusCode, fmt.Errorf("azure_functions: %s refused the function key (%s): check azure_functions.function_key", url, resp.Status)
		case resp.StatusCode/100 != 2:
			return nil, resp.StatusCode, fmt.Errorf("azure_functions: %s answered %s: %s", url, resp.Status, bytes.TrimSpace(out))
		}
		return out, resp.StatusCode, nil
	}
	return nil, 0, fmt.Errorf("azure_functions: invoke %s: %w", url, lastErr)
}

// ProbeMetadataHTTP asks an HTTPS-triggered runtime for its metadata and
// stores it, with its endpoint, at lithops.runtimes/azure_functions/<runtime>.meta.json.
func ProbeMetadataHTTP(ctx context.Context, st *storage.Storage, hc *http.Client, url, key, runtime string, memoryMB int, timeout time.Duration) (*protocol.RuntimeMeta, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	probe := protocol.RuntimesPrefix + "azure_functions/" + runtime + ".probe.json"
	inv := protocol.Invocation{Version: protocol.Version, Op: protocol.OpMetadata, Bucket: st.Bucket(), MetaKey: probe}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out []byte
	var err error
	for {
		// A new app may answer 404 until its host has started.
		var code int
		out, code, err = postInvocation(ctx, hc, url, key, inv)
		if err == nil || code != http.StatusNotFound {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("azure_functions: runtime %s at %s did not answer: %w", runtime, url, err)
		case <-time.After(2 * time.Second):
		}
	}
	if err != nil {
		return nil, err
	}
	st.Delete(ctx, st.Bucket(), probe)
	var m protocol.RuntimeMeta
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("azure_functions: runtime %s answered unreadable metadata: %w", runtime, err)
	}
	if m.Runtime == "" {
		m.Runtime = runtime
	}
	m.Endpoint, m.Created = url, time.Now().UTC()
	raw, _ := json.Marshal(m)
	if err := st.PutBytes(ctx, st.Bucket(), protocol.RuntimeMetaKey("azure_functions", RuntimeKey(runtime, memoryMB)), raw); err != nil {
		return nil, err
	}
	return &m, nil
}

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
				_, _, err := postInvocation(ctx, b.http, b.endpoint, b.key, part)
				if err == nil || ctx.Err() != nil {
					return
				}
				b.opts.Logger.Warn("azure_functions: HTTPS invocation failed", "job", job.JobID, "calls", len(part.Calls), "err", err)
				rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				for _, c := range part.Calls {
					st := protocol.Failed(part.ExecutorID, part.JobID, c, protocol.KindHandler, "invoke", "the runtime could not be invoked: "+err.Error())
					got, rerr := worker.Record(rctx, b.st, part.Bucket, protocol.StatusKey(part.ExecutorID, part.JobID, c.ID), st)
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
