package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/compute/azurefunctions"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/host"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/spf13/cobra"
)

func newRuntimeCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "runtime", Short: "Build, deploy and manage runtimes"}
	cmd.AddCommand(newServeCmd())
	addRuntimeManagement(cmd, g)
	return cmd
}

// hostConfig is the runtime host's configuration, from its app settings:
// LITHOPS_CONFIG_JSON (a whole config) or AzureWebJobsStorage plus
// LITHOPS_STORAGE_BUCKET.
func hostConfig() (*config.Config, error) {
	if raw := os.Getenv("LITHOPS_CONFIG_JSON"); raw != "" {
		cfg, err := config.Parse("LITHOPS_CONFIG_JSON", []byte(raw))
		if err != nil {
			return nil, err
		}
		return cfg, nil
	}
	conn := os.Getenv("AzureWebJobsStorage")
	if conn == "" {
		return nil, errors.New("runtime host: neither LITHOPS_CONFIG_JSON nor AzureWebJobsStorage is set")
	}
	cfg := config.Default()
	cfg.Lithops.Backend = "azure_functions"
	cfg.Lithops.Storage = "azure_storage"
	cfg.AzureStorage.ConnectionString = conn
	if b := os.Getenv("LITHOPS_STORAGE_BUCKET"); b != "" {
		cfg.AzureStorage.StorageBucket = b
	}
	return cfg, cfg.Validate()
}

func hasNextTier(mb int) bool {
	if mb == 0 {
		return false
	}
	_, ok := azurefunctions.NextTier(mb)
	return ok
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func newServeCmd() *cobra.Command {
	var port string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the runtime host (the Azure Functions custom handler)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if port == "" {
				port = os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
			}
			if port == "" {
				port = os.Getenv("FUNCTIONS_HTTPWORKER_PORT")
			}
			if port == "" {
				return errors.New("runtime serve: FUNCTIONS_CUSTOMHANDLER_PORT is not set (or pass --port)")
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			cfg, err := hostConfig()
			if err != nil {
				return err
			}
			st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
			if err != nil {
				return err
			}
			defer st.Close()
			wcfg, _ := json.Marshal(cfg)
			workers := envInt("LITHOPS_WORKER_PROCESSES", runtime.NumCPU())
			// Each worker gets its share of the instance's memory, less
			// headroom for the host, so a call over it fails as out of memory
			// instead of the platform killing the whole instance.
			memMB := envInt("LITHOPS_WORKER_MEMORY_MB", envInt("LITHOPS_RUNTIME_MEMORY", 0)*85/100/workers)
			wenv := []string{"LITHOPS_WORKER_CONFIG=" + string(wcfg)}
			// The runtime spec's env (app settings named in LITHOPS_USER_ENV)
			// is the user's; the rest of the host's settings are not.
			for _, k := range strings.Split(os.Getenv("LITHOPS_USER_ENV"), ",") {
				if v, ok := os.LookupEnv(k); ok && k != "" {
					wenv = append(wenv, k+"="+v)
				}
			}
			opts := host.Options{
				Storage:   st,
				WorkerEnv: wenv,
				Workers:   workers,
				MemoryMB:  memMB,
				// A bigger instance size exists: out-of-memory attempts go there.
				EscalateOOM: hasNextTier(envInt("LITHOPS_RUNTIME_MEMORY", 0)),
				// The host.json that runtime build writes sets this.
				MaxDeliveries: azurefunctions.MaxDequeue,
				Meta: protocol.RuntimeMeta{
					Runtime:        os.Getenv("LITHOPS_RUNTIME_NAME"),
					Backend:        "azure_functions",
					LithopsVersion: lithops.Version,
					MemoryMB:       envInt("LITHOPS_RUNTIME_MEMORY", 0),
					TimeoutS:       envInt("LITHOPS_RUNTIME_TIMEOUT", 0),
					Trigger:        os.Getenv("LITHOPS_TRIGGER"),
				},
				Logger: logger,
			}
			if cfg.Lithops.Storage == "azure_storage" {
				svc, err := azurefunctions.NewQueueService(cfg.AzureStorage)
				if err != nil {
					return err
				}
				opts.Pusher = azurefunctions.QueuePusher{Svc: svc}
			}
			// A custom runtime ships the user program beside the host.
			if exe, err := os.Executable(); err == nil {
				compiled := filepath.Join(filepath.Dir(exe), "program")
				if _, err := os.Stat(compiled); err == nil {
					sha, err := azurefunctions.FileSHA256(compiled)
					if err != nil {
						return fmt.Errorf("runtime serve: compiled program: %w", err)
					}
					opts.CompiledPath, opts.CompiledSHA = compiled, sha
				}
			}
			h, err := host.New(opts)
			if err != nil {
				return err
			}
			return h.Serve(ctx, port)
		},
	}
	cmd.Flags().StringVar(&port, "port", "", "port to listen on (default $FUNCTIONS_CUSTOMHANDLER_PORT)")
	return cmd
}
