package azurefunctions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/deploy"
	"github.com/lithops-go/lithops/internal/azure/queues"
	"github.com/lithops-go/lithops/internal/host"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/runtimetest"
)

// frontDoor plays the Functions front end for an HTTP-triggered custom
// handler: it checks the function key, wraps the request as the host does
// ({Data: {req: {…, Body}}}) and turns Outputs.res into the HTTP answer.
func frontDoor(t *testing.T, h http.Handler, key string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/"+host.FunctionName {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("x-functions-key") != key && r.URL.Query().Get("code") != key {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		payload, _ := json.Marshal(map[string]any{
			"Data":     map[string]any{"req": map[string]any{"Url": r.URL.String(), "Method": r.Method, "Body": string(body), "Headers": r.Header}},
			"Metadata": map[string]any{"sys": map[string]string{"MethodName": host.FunctionName}},
		})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/"+host.FunctionName, strings.NewReader(string(payload))))
		if rec.Code/100 != 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var out struct {
			Outputs struct {
				Res struct {
					StatusCode string `json:"statusCode"`
					Body       string `json:"body"`
				} `json:"res"`
			}
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		code, _ := strconv.Atoi(out.Outputs.Res.StatusCode)
		w.WriteHeader(code)
		io.WriteString(w, out.Outputs.Res.Body)
	}))
}

func TestHTTPSTrigger(t *testing.T) {
	requireAzurite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := fmt.Sprintf("%08x", rand.Uint32())
	cfg := config.Default()
	cfg.Lithops.Backend, cfg.Lithops.Storage = "azure_functions", "azure_storage"
	cfg.AzureStorage.ConnectionString = runtimetest.AzuriteConn
	cfg.AzureStorage.StorageBucket = "lithops-https-" + id
	cfg.AzureFunctions.Runtime = "https-" + id
	cfg.AzureFunctions.Trigger = "https"
	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, _ := queues.NewService(cfg.AzureStorage)
	wcfg, _ := json.Marshal(cfg)
	h, err := host.New(host.Options{
		Storage: st, WorkerEnv: []string{"LITHOPS_WORKER_CONFIG=" + string(wcfg)}, Workers: 2,
		Meta:   protocol.RuntimeMeta{Runtime: cfg.AzureFunctions.Runtime, Backend: "azure_functions", LithopsVersion: lithops.Version, Trigger: "https"},
		Pusher: queues.Pusher{Svc: svc}, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	fd := frontDoor(t, h.Handler(), "k3y")
	defer fd.Close()
	url := fd.URL + "/api/" + host.FunctionName

	if _, err := deploy.ProbeHTTP(ctx, st, nil, url, "wrong", cfg.AzureFunctions.Runtime, cfg.AzureFunctions.RuntimeMemory, 10*time.Second); err == nil || !strings.Contains(err.Error(), "function key") {
		t.Fatalf("wrong key: %v", err)
	}
	meta, err := deploy.ProbeHTTP(ctx, st, nil, url, "k3y", cfg.AzureFunctions.Runtime, cfg.AzureFunctions.RuntimeMemory, 30*time.Second)
	if err != nil || meta.Endpoint != url || meta.Trigger != "https" {
		t.Fatalf("probe: %+v, %v", meta, err)
	}
	cfg.AzureFunctions.FunctionKey = "k3y" // the endpoint comes from the metadata
	ex, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	mapAddSeven(ctx, t, ex, 50)
	f, err := lithops.CallAsync(ctx, ex, behave, "error")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Result(ctx); err == nil || !strings.Contains(err.Error(), "boom from azure") {
		t.Fatalf("user error over https: %v", err)
	}
	// The runtime answers when the calls are settled; submitting does not
	// wait for that.
	start := time.Now()
	nap, err := lithops.CallAsync(ctx, ex, behave, "nap")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("CallAsync over https took %v: it waited for the call", d)
	}
	if v, err := nap.Result(ctx); err != nil || v != "ok:nap" {
		t.Fatalf("nap: %q, %v", v, err)
	}
	// An endpoint that is gone: the call fails, recorded, with the reason.
	fd.Close()
	gone, err := lithops.CallAsync(ctx, ex, addSeven, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gone.Result(ctx); !errors.Is(err, lithops.ErrHandler) || !strings.Contains(err.Error(), "could not be invoked") {
		t.Fatalf("call to a gone endpoint: %v", err)
	}
	st.DeletePrefix(context.Background(), st.Bucket(), "")
}
