package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/lithops-go/lithops/internal/protocol"
)

// PipeRequest is one call sent to a resident localhost worker.
type PipeRequest struct {
	Invocation protocol.Invocation `json:"inv"`
}

// PipeResponse answers a PipeRequest.
type PipeResponse struct {
	Status *protocol.Status `json:"status,omitempty"`
	// Error is set when the status could not be recorded in storage.
	Error string `json:"error,omitempty"`
}

// ServePipe serves requests read from in (one JSON object per line), one at a
// time, writing one response per request to out. It returns when in is
// closed (the client went away) or ctx ends.
func ServePipe(ctx context.Context, w *Worker, in io.Reader, out io.Writer) error {
	w.ownProcess = true // one call at a time: a job's extra_env can be set
	dec := json.NewDecoder(bufio.NewReaderSize(in, 64<<10))
	bw := bufio.NewWriter(out)
	enc := json.NewEncoder(bw)
	for ctx.Err() == nil {
		var req PipeRequest
		if err := dec.Decode(&req); err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("worker: read request: %w", err)
		}
		var resp PipeResponse
		if err := req.Invocation.Validate(); err != nil {
			resp.Error = err.Error()
		} else {
			st, err := w.Run(ctx, &req.Invocation, req.Invocation.Calls[0])
			resp.Status = st
			if err != nil {
				resp.Error = err.Error()
			}
		}
		if err := enc.Encode(&resp); err != nil {
			return fmt.Errorf("worker: write response: %w", err)
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("worker: write response: %w", err)
		}
	}
	return ctx.Err()
}
