// Package httptrigger is the client of a runtime's HTTPS trigger: it posts
// invocations to the function's URL with its function key, and retries
// what the platform answers while it scales or throttles.
package httptrigger

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
)

// Is reports whether trigger names the HTTPS trigger.
func Is(trigger string) bool { return trigger == "https" || trigger == "http" }

// Post sends one invocation to the runtime's HTTPS endpoint and returns
// the response body and status code. 429 and 5xx answers are retried with backoff
// and jitter; the function key travels in a header, never in storage.
func Post(ctx context.Context, hc *http.Client, url, key string, inv protocol.Invocation) ([]byte, int, error) {
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
