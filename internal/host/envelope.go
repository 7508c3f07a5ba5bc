// The Functions custom-handler envelope: invocation requests from the
// Functions host (queue and HTTP triggers), their decoding and answers.

package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lithops-go/lithops/internal/protocol"
)

// Serve listens on 127.0.0.1:port (FUNCTIONS_CUSTOMHANDLER_PORT) until ctx
// ends.
func (h *Host) Serve(ctx context.Context, port string) error {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return fmt.Errorf("host: listen: %w", err)
	}
	srv := &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	h.opts.Logger.Info("runtime host listening", "addr", ln.Addr().String())
	err = srv.Serve(ln)
	h.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Handler returns the custom-handler HTTP interface: GET / answers the
// readiness probe; POST /lithops_handler serves queue- and HTTP-triggered
// invocations.
func (h *Host) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("lithops runtime host ready\n"))
	})
	mux.HandleFunc("POST /"+FunctionName, h.serveInvocation)
	return mux
}

// invocationRequest is what the Functions host POSTs.
type invocationRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

type invocationResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (h *Host) serveInvocation(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, invocationResponse{Logs: []string{"read request: " + err.Error()}})
		return
	}
	var req invocationRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, invocationResponse{Logs: []string{"request is not the Functions host's JSON: " + err.Error()}})
		return
	}
	if raw, ok := req.Data["req"]; ok {
		h.serveHTTPTrigger(w, r, raw)
		return
	}
	raw, ok := req.Data["msgIn"]
	if !ok {
		writeJSON(w, http.StatusBadRequest, invocationResponse{Logs: []string{"request has neither Data.msgIn (queue trigger) nor Data.req (HTTP trigger)"}})
		return
	}
	inv, err := DecodeMessage(raw)
	if err != nil {
		// A malformed message cannot succeed later either; failing lets the
		// platform move it to the poison queue, where it can be inspected.
		writeJSON(w, http.StatusBadRequest, invocationResponse{Logs: []string{err.Error()}})
		return
	}
	if dequeueCount(req.Metadata) > 1 {
		// A redelivery: earlier attempts may have been recorded before the
		// host that ran them died; attempt numbers go on from there.
		if err := h.resumeAttempts(r.Context(), inv); err != nil {
			writeJSON(w, http.StatusInternalServerError, invocationResponse{Logs: []string{err.Error()}})
			return
		}
	}
	settled := map[string]*protocol.Status{}
	// A first delivery needs no duplicate check (see run); a count the
	// platform did not send (0) is taken as a redelivery.
	logs, err := h.run(r.Context(), inv, settled, dequeueCount(req.Metadata) != 1)
	if n := dequeueCount(req.Metadata); err != nil && h.opts.MaxDeliveries > 0 && n >= h.opts.MaxDeliveries {
		// The platform will not deliver it again (it goes to the poison
		// queue): fail its calls for good rather than leave them pending.
		if gerr := h.giveUp(r.Context(), inv, settled, fmt.Sprintf("the runtime failed this call's invocation %d times, the last with: %v", n, err)); gerr == nil {
			writeJSON(w, http.StatusOK, invocationResponse{Outputs: map[string]any{}, Logs: append(logs, err.Error(), "gave up after the last delivery")})
			return
		}
	}
	if err != nil {
		h.opts.Logger.Warn("invocation not recorded; asking for redelivery", "job", inv.JobID, "err", err)
		writeJSON(w, http.StatusInternalServerError, invocationResponse{Logs: append(logs, err.Error())})
		return
	}
	writeJSON(w, http.StatusOK, invocationResponse{Outputs: map[string]any{}, Logs: logs})
}

// HTTPLimit is how long the platform lets an HTTP-triggered function take
// to answer (Azure's front end drops the request after 230 s).
const HTTPLimit = 230 * time.Second

// httpMargin is kept free below HTTPLimit: for recording the calls left
// unsettled and answering.
const httpMargin = 20 * time.Second

// HTTPCallBound is the longest an HTTP-triggered invocation runs: clients
// cap the timeout of calls sent over HTTPS at it.
const HTTPCallBound = HTTPLimit - httpMargin

// httpBound is how long an HTTP-triggered invocation may run before it must
// answer: HTTPLimit less a margin, the function timeout less TimeoutMargin,
// and what remains of the request's own deadline, whichever is least.
func (h *Host) httpBound(r *http.Request) time.Duration {
	bound := HTTPCallBound
	if c := CallTimeoutCap(h.opts.Meta.TimeoutS); c > 0 {
		bound = min(bound, c)
	}
	if dl, ok := r.Context().Deadline(); ok {
		bound = min(bound, time.Until(dl)-httpMargin)
	}
	return max(bound, time.Second)
}

// httpNeed is the longest the calls of inv may take to settle on this host:
// its job's (capped) timeout, for every attempt, times the rounds of calls
// per worker. ok is false when that has no bound (no timeout).
func (h *Host) httpNeed(job *protocol.Job, calls int) (need time.Duration, ok bool) {
	job = h.capTimeout(job)
	if job.Timeout <= 0 {
		return 0, false
	}
	rounds := (calls + h.opts.Workers - 1) / h.opts.Workers
	return time.Duration(job.Timeout*float64(time.Second)) * time.Duration(rounds*(job.Retries+1)), true
}

// serveHTTPTrigger serves an invocation in an HTTP request body. The
// platform does not track work left running after the answer, so the calls
// run before it: the answer (200) comes when every call is settled, within
// httpBound. An invocation whose calls may need longer (decided up front
// from its job's timeout) is handed to the runtime's trigger queue
// (Options.HandOff) and answered 202 once enqueued; without HandOff it runs
// anyway, and calls still unsettled at the bound are recorded as failed.
// Metadata requests are answered in the response.
func (h *Host) serveHTTPTrigger(w http.ResponseWriter, r *http.Request, raw json.RawMessage) {
	var req struct {
		Body json.RawMessage `json:"Body"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		writeJSON(w, http.StatusOK, httpOut(400, "malformed request: "+err.Error()))
		return
	}
	inv, err := DecodeMessage(req.Body)
	if err != nil {
		writeJSON(w, http.StatusOK, httpOut(400, err.Error()))
		return
	}
	if inv.Op == protocol.OpMetadata {
		if _, err := h.Run(r.Context(), inv); err != nil {
			writeJSON(w, http.StatusOK, httpOut(500, err.Error()))
			return
		}
		meta, _ := json.Marshal(h.meta())
		writeJSON(w, http.StatusOK, httpOut(200, string(meta)))
		return
	}
	bound := h.httpBound(r)
	// The calls are settled (or recorded as failed) before the answer even
	// if the caller goes away; the bound keeps that short.
	base := context.WithoutCancel(r.Context())
	ctx, cancel := context.WithTimeout(base, bound)
	defer cancel()
	if h.opts.HandOff != nil {
		// A manifest that cannot be read fails the run below, and is
		// recorded there.
		if job, err := h.job(ctx, inv); err == nil {
			if need, ok := h.httpNeed(job, len(inv.Calls)); !ok || need > bound {
				if err := h.opts.HandOff(ctx, inv); err != nil {
					h.opts.Logger.Warn("HTTP-triggered invocation could not be queued", "job", inv.JobID, "err", err)
					// 5xx: the client posts it again.
					writeJSON(w, http.StatusOK, httpOut(503, "the runtime could not queue this invocation: "+err.Error()))
					return
				}
				h.opts.Logger.Debug("HTTP-triggered invocation queued: its calls may outlast the HTTP limit", "job", inv.JobID, "calls", len(inv.Calls), "need", need, "bound", bound)
				writeJSON(w, http.StatusOK, httpOut(202, "queued"))
				return
			}
		}
	}
	settled := map[string]*protocol.Status{}
	_, err = h.run(ctx, inv, settled, true)
	if err != nil {
		why := "the runtime could not run this call: " + err.Error()
		if ctx.Err() != nil {
			why = fmt.Sprintf("the call was not finished within %v, the longest an HTTP-triggered invocation of %d call(s) may run before it answers", bound.Round(time.Second), len(inv.Calls))
		}
		// Nothing delivers an HTTP request again: fail the calls now
		// rather than leave them pending.
		h.opts.Logger.Warn("HTTP-triggered invocation failed", "job", inv.JobID, "err", err)
		gctx, gcancel := context.WithTimeout(base, httpMargin*3/4)
		defer gcancel()
		if gerr := h.giveUp(gctx, inv, settled, why); gerr != nil {
			h.opts.Logger.Warn("HTTP-triggered invocation not recorded", "job", inv.JobID, "err", gerr)
			// 5xx: the client posts it again; recorded calls are not rerun.
			writeJSON(w, http.StatusOK, httpOut(500, "the runtime could not record this invocation's calls: "+gerr.Error()))
			return
		}
	}
	writeJSON(w, http.StatusOK, httpOut(200, "settled"))
}

func httpOut(code int, body string) invocationResponse {
	return invocationResponse{Outputs: map[string]any{"res": map[string]any{
		"statusCode": fmt.Sprint(code), "body": body, "headers": map[string]string{"Content-Type": "application/json"},
	}}}
}

// dequeueCount reads Metadata.DequeueCount, which the host sends as a string
// (or a number).
func dequeueCount(md map[string]json.RawMessage) int {
	raw := md["DequeueCount"]
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		n, _ = strconv.Atoi(strings.Trim(s, `"`))
	}
	return n
}

// DecodeMessage extracts the invocation from a trigger value: the Functions
// host hands message text over JSON-quoted, possibly more than once.
func DecodeMessage(raw json.RawMessage) (*protocol.Invocation, error) {
	for i := 0; i < 4; i++ {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			break
		}
		raw = json.RawMessage(s)
	}
	var inv protocol.Invocation
	if err := json.Unmarshal(raw, &inv); err != nil {
		return nil, fmt.Errorf("message is not a lithops invocation: %w", err)
	}
	if err := inv.Validate(); err != nil {
		return nil, err
	}
	return &inv, nil
}
