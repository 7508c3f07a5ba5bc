package azurefunctions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/lithops-go/lithops/compute/localhost"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/internal/azure/build"
	"github.com/lithops-go/lithops/internal/azure/naming"
	"github.com/lithops-go/lithops/internal/azure/queues"
	"github.com/lithops-go/lithops/internal/host"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	azblobdriver "github.com/lithops-go/lithops/storage/azblob"
)

// ServeOptions configure Serve.
type ServeOptions struct {
	// Port to listen on, on 127.0.0.1; "" means $FUNCTIONS_CUSTOMHANDLER_PORT
	// (appsettings.CustomHandlerPort).
	Port string
	// OpenStorage opens the configured storage (the root package's opener,
	// so that every registered driver is available).
	OpenStorage func(ctx context.Context, cfg *config.Config) (*storage.Storage, error)
	// Logger receives the host's logs (default: text on stderr, INFO).
	Logger *slog.Logger
}

// Serve runs the runtime host, the Azure Functions custom handler, until
// ctx ends. It answers the Functions host's readiness probe (GET /) at once,
// before it opens storage, so that a slow storage endpoint cannot make the
// handler miss the platform's start-up limit; invocations wait until the
// host is ready. A host that cannot start returns the error (the Functions
// host restarts the handler).
//
// Settings come from the environment (the function app's settings):
// LITHOPS_CONFIG_JSON, or AzureWebJobsStorage (a connection string) or its
// identity-based AzureWebJobsStorage__* settings (the managed identity
// opens blobs and queues) with LITHOPS_STORAGE_BUCKET, and the LITHOPS_*
// names written by deploy.AppSettings.
func Serve(ctx context.Context, o ServeOptions) error {
	port := o.Port
	if port == "" {
		port = os.Getenv(appsettings.CustomHandlerPort)
	}
	if port == "" {
		port = os.Getenv(appsettings.HTTPWorkerPort)
	}
	if port == "" {
		return fmt.Errorf("runtime host: %s is not set", appsettings.CustomHandlerPort)
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if o.OpenStorage == nil {
		return errors.New("runtime host: no storage opener")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return fmt.Errorf("runtime host: listen: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	ready := make(chan struct{})
	var h *host.Host
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("lithops runtime host\n"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-ready:
		case <-r.Context().Done():
			return
		}
		if h == nil {
			http.Error(w, "runtime host failed to start", http.StatusServiceUnavailable)
			return
		}
		h.Handler().ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		hh, st, err := newHost(ctx, o.OpenStorage, logger)
		if err != nil {
			cancel(err)
		} else {
			h = hh
			context.AfterFunc(ctx, func() { st.Close() })
		}
		close(ready)
	}()
	go func() {
		<-ctx.Done()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
	}()
	logger.Info("runtime host listening", "addr", ln.Addr().String())
	err = srv.Serve(ln)
	<-ready
	if h != nil {
		h.Close()
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return fmt.Errorf("runtime host: %w", cause)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// hostConfig is the runtime host's configuration, from its app settings:
// LITHOPS_CONFIG_JSON (a whole config), or AzureWebJobsStorage (a
// connection string) or its identity-based settings (account name or
// service URIs, opened with the app's managed identity) plus
// LITHOPS_STORAGE_BUCKET.
func hostConfig() (*config.Config, error) {
	if raw := os.Getenv(appsettings.LithopsConfigJSON); raw != "" {
		return config.Parse(appsettings.LithopsConfigJSON, []byte(raw))
	}
	cfg := config.Default()
	cfg.Lithops.Backend = "azure_functions"
	cfg.Lithops.Storage = "azure_storage"
	a := &cfg.AzureStorage
	if conn := os.Getenv(appsettings.HostStorage); conn != "" {
		a.ConnectionString = conn
	} else {
		a.StorageAccountName = appsettings.Lookup(appsettings.HostStorageAccountName)
		a.Endpoint = appsettings.Lookup(appsettings.HostStorageBlobURI)
		a.QueueEndpoint = appsettings.Lookup(appsettings.HostStorageQueueURI)
		if a.StorageAccountName == "" && (a.Endpoint == "" || a.QueueEndpoint == "") {
			return nil, fmt.Errorf("neither %s nor %s is set, nor %s (or both %s and %s)",
				appsettings.LithopsConfigJSON, appsettings.HostStorage,
				appsettings.HostStorageAccountName, appsettings.HostStorageBlobURI, appsettings.HostStorageQueueURI)
		}
		// On Azure an identity-based connection is the app's managed
		// identity, whatever __credential says.
		if c := appsettings.Lookup(appsettings.HostStorageCredential); c != "" && !strings.EqualFold(c, azblobdriver.CredentialManagedIdentity) {
			return nil, fmt.Errorf("%s is %q: the runtime host supports %q", appsettings.HostStorageCredential, c, azblobdriver.CredentialManagedIdentity)
		}
		a.Credential = azblobdriver.CredentialManagedIdentity
		a.ClientID = appsettings.Lookup(appsettings.HostStorageClientID)
	}
	if b := os.Getenv(appsettings.StorageBucket); b != "" {
		cfg.AzureStorage.StorageBucket = b
	}
	return cfg, cfg.Validate()
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// newHost opens storage and builds the host from the environment.
func newHost(ctx context.Context, open func(context.Context, *config.Config) (*storage.Storage, error), logger *slog.Logger) (*host.Host, *storage.Storage, error) {
	cfg, err := hostConfig()
	if err != nil {
		return nil, nil, err
	}
	st, err := open(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	opts, err := hostOptions(cfg, st, logger)
	if err == nil {
		var h *host.Host
		if h, err = host.New(opts); err == nil {
			return h, st, nil
		}
	}
	st.Close()
	return nil, nil, err
}

// hostOptions derives the host's options from its configuration and
// settings.
func hostOptions(cfg *config.Config, st *storage.Storage, logger *slog.Logger) (host.Options, error) {
	// Workers get only what opens storage, on a pipe (not in their
	// environment, which subprocesses inherit).
	wcfg, err := json.Marshal(&config.Config{Lithops: cfg.Lithops, AzureStorage: cfg.AzureStorage})
	if err != nil {
		return host.Options{}, err
	}
	workers := envInt(appsettings.WorkerProcesses, runtime.NumCPU())
	memory := envInt(appsettings.RuntimeMemory, 0)
	// Each worker gets its share of the instance's memory, less headroom
	// for the host, so a call over it fails as out of memory instead of the
	// platform killing the whole instance.
	memMB := envInt(appsettings.WorkerMemoryMB, memory*85/100/workers)
	wenv := []string{"LITHOPS_WORKER_CONFIG_FD=" + strconv.Itoa(localhost.ConfigFD)}
	if strings.EqualFold(cfg.AzureStorage.Credential, azblobdriver.CredentialManagedIdentity) {
		// Workers open storage with the same managed identity: they need
		// the platform's token endpoint, which their clean environment
		// lacks.
		for _, k := range appsettings.ManagedIdentityEnv {
			if v, ok := os.LookupEnv(k); ok {
				wenv = append(wenv, k+"="+v)
			}
		}
	}
	// The runtime spec's env (app settings named in LITHOPS_USER_ENV) is
	// the user's; the rest of the host's settings are not.
	for _, k := range strings.Split(os.Getenv(appsettings.UserEnv), ",") {
		if v, ok := os.LookupEnv(k); ok && k != "" {
			wenv = append(wenv, k+"="+v)
		}
	}
	_, bigger := naming.NextTier(memory)
	opts := host.Options{
		Storage:      st,
		WorkerEnv:    wenv,
		WorkerConfig: wcfg,
		Workers:      workers,
		MemoryMB:     memMB,
		// A bigger instance size exists: out-of-memory attempts go there.
		EscalateOOM: memory > 0 && bigger,
		// The host.json that build.App writes sets this.
		MaxDeliveries: build.MaxDequeue,
		Meta: protocol.RuntimeMeta{
			Runtime:        os.Getenv(appsettings.RuntimeName),
			Backend:        "azure_functions",
			LithopsVersion: protocol.LithopsVersion,
			MemoryMB:       memory,
			TimeoutS:       envInt(appsettings.RuntimeTimeout, 0),
			Trigger:        os.Getenv(appsettings.Trigger),
			Queue:          os.Getenv(appsettings.Queue),
		},
		Logger: logger,
	}
	if cfg.Lithops.Storage == "azure_storage" {
		svc, err := queues.NewService(cfg.AzureStorage)
		if err != nil {
			return opts, err
		}
		opts.Pusher = queues.Pusher{Svc: svc}
	}
	// A custom runtime's handler is the user's program, compiled in: its
	// calls need no fetch. The package's manifest says so.
	if exe, err := os.Executable(); err == nil {
		if sha, ok := compiledProgram(exe); ok {
			opts.CompiledPath, opts.CompiledSHA = exe, sha
		}
	}
	return opts, nil
}

// compiledProgram reports whether the app package that holds exe declares
// exe as its compiled-in program (build.ManifestFile beside it) and its hash.
func compiledProgram(exe string) (string, bool) {
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(exe), build.ManifestFile))
	if err != nil {
		return "", false
	}
	var m build.Manifest
	if json.Unmarshal(raw, &m) != nil || m.ProgramSHA == "" {
		return "", false
	}
	sha, err := build.FileSHA256(exe)
	if err != nil || sha != m.ProgramSHA {
		return "", false
	}
	return sha, true
}
