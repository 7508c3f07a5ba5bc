package lithops

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/worker"
)

// runWorker serves calls in worker mode: "localhost" reads calls from file
// descriptor 3 and answers on 4 (see compute/localhost).
func runWorker(ctx context.Context, mode string, logger *slog.Logger) error {
	if mode != "localhost" {
		return fmt.Errorf("unknown worker mode %s=%q", workerEnv, mode)
	}
	cfg := config.Default()
	if raw := os.Getenv(workerConfigEnv); raw != "" {
		cfg = &config.Config{}
		if err := json.Unmarshal([]byte(raw), cfg); err != nil {
			return fmt.Errorf("%s is not a valid configuration: %w", workerConfigEnv, err)
		}
	}
	if mb, _ := strconv.Atoi(os.Getenv("LITHOPS_WORKER_MEMORY_MB")); mb > 0 {
		debug.SetMemoryLimit(int64(mb) << 20)
	}
	st, err := openStorage(ctx, cfg, cfg.Lithops.Storage, false)
	if err != nil {
		return err
	}
	defer st.Close()
	funcs, _ := registrySnapshot()
	w := worker.New(os.Getenv("LITHOPS_WORKER_ID"), st, funcs, logger)
	if c, err := captureOutput(); err == nil {
		w.Capture = c
	}
	in := os.NewFile(3, "lithops-requests")
	out := os.NewFile(4, "lithops-responses")
	if in == nil || out == nil {
		return fmt.Errorf("worker mode needs the request and response pipes on file descriptors 3 and 4")
	}
	return worker.ServePipe(ctx, w, in, out)
}

// captureOutput points os.Stdout, os.Stderr and the log package at a pipe
// whose bytes are forwarded to the real stderr and kept per call. The file
// descriptors stay as they are, so the runtime's own crash reports and
// subprocesses still reach the real streams.
func captureOutput() (*worker.Capture, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	real := os.Stderr
	os.Stdout, os.Stderr = w, w
	log.SetOutput(w)
	return worker.NewCapture(r, real, 1<<20, func(m []byte) error { _, err := w.Write(m); return err }), nil
}
