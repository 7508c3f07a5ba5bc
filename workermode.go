package lithops

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"

	"github.com/lithops-go/lithops/compute/azurefunctions"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/worker"
	"github.com/lithops-go/lithops/storage"
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

// runtimeHostMode reports whether the Functions host started this program
// as a custom handler.
func runtimeHostMode() bool { return os.Getenv(azurefunctions.PortSetting) != "" }

// serveRuntimeHost runs this program as the runtime host of an Azure
// Functions app (the Functions host started it as its custom handler) and
// returns the exit status. Any lithops program can be a runtime's handler:
// the host's code is in the library, so the default runtime needs no build
// of its own.
func serveRuntimeHost() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := azurefunctions.Serve(ctx, azurefunctions.ServeOptions{
		OpenStorage: func(ctx context.Context, cfg *config.Config) (*storage.Storage, error) {
			return openStorage(ctx, cfg, cfg.Lithops.Storage, false)
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "lithops runtime host:", err)
		return 1
	}
	return 0
}
