package lithops

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/lithops-go/lithops/compute/localhost"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/quietsys"
	"github.com/lithops-go/lithops/internal/worker"
)

// runWorker serves calls in worker mode: "localhost" reads calls from file
// descriptor 3 and answers on 4 (see compute/localhost).
func runWorker(ctx context.Context, mode string, logger *slog.Logger) error {
	if mode != "localhost" {
		return fmt.Errorf("unknown worker mode %s=%q", workerEnv, mode)
	}
	cfg := config.Default()
	raw := []byte(os.Getenv(workerConfigEnv))
	if fd := os.Getenv(workerConfigFDEnv); fd != "" {
		// The configuration comes on a pipe, not in the environment.
		f := os.NewFile(uintptr(localhost.ConfigFD), "lithops-config")
		if f == nil {
			return fmt.Errorf("%s=%s but file descriptor %d is not open", workerConfigFDEnv, fd, localhost.ConfigFD)
		}
		b, err := io.ReadAll(io.LimitReader(f, 1<<20))
		f.Close()
		if err != nil {
			return fmt.Errorf("read the worker configuration: %w", err)
		}
		raw = b
	}
	if len(raw) > 0 {
		cfg = &config.Config{}
		if err := json.Unmarshal(raw, cfg); err != nil {
			return fmt.Errorf("the worker configuration is not valid: %w", err)
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
	// The pipes become the poller's, read and written by raw system calls
	// (quietsys), and no process a function starts inherits them.
	in := quietsys.Pipe(3, "lithops-requests")
	out := quietsys.Pipe(4, "lithops-responses")
	if in == nil || out == nil {
		return fmt.Errorf("worker mode needs the request and response pipes on file descriptors 3 and 4")
	}
	return worker.ServePipe(ctx, w, quietsys.Reader(in), quietsys.Writer(out))
}

// workerConfigFDEnv tells a worker that its configuration waits on
// localhost.ConfigFD.
const workerConfigFDEnv = "LITHOPS_WORKER_CONFIG_FD"

// workerConfig encodes what a worker needs of cfg (config.ForWorker).
func workerConfig(cfg *config.Config) ([]byte, error) {
	return json.Marshal(cfg.ForWorker())
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
	return worker.NewCapture(r, w, real, 1<<20), nil
}
