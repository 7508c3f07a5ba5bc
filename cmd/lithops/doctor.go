package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/compute/azurefunctions"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/deploy"
	"github.com/lithops-go/lithops/internal/azure/deploy/armdeploy"
	"github.com/lithops-go/lithops/internal/azure/naming"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/spf13/cobra"
)

// doctorEnv is what the checks of `lithops doctor` work on; tests replace
// the storage opener.
type doctorEnv struct {
	w    io.Writer
	open func(ctx context.Context, cfg *config.Config) (*storage.Storage, error)
	// queue checks that the named trigger queue exists; nil means the
	// Azure queue service of cfg.
	queue func(ctx context.Context, cfg *config.Config, name string) error
}

// loadDoctorConfig loads the config as the other commands do, with -b/-s.
func loadDoctorConfig(g *globalFlags) (*config.Config, error) {
	cfg, err := config.Load(g.config)
	if err != nil {
		return nil, err
	}
	if g.backend != "" {
		if g.storage == "" && g.backend != "localhost" && cfg.Lithops.Storage == "localhost" {
			cfg.Lithops.Storage = "azure_storage"
		}
		cfg.Lithops.Backend = g.backend
	}
	if g.storage != "" {
		cfg.Lithops.Storage = g.storage
	}
	return cfg, cfg.Validate()
}

// runDoctor runs every check on cfg (cfgErr: why it is not valid) and
// returns an error when one failed.
func runDoctor(ctx context.Context, env doctorEnv, cfg *config.Config, cfgErr error) error {
	r := &reporter{w: env.w}
	defer func() { r.total() }()
	fail := func() error { return fmt.Errorf("doctor: %d check(s) failed", r.fail) }

	// config
	if cfgErr != nil {
		r.line("FAIL", "config", 0, oneLine(cfgErr.Error()))
		for _, n := range []string{"storage", "backend", "runtime"} {
			r.line("SKIP", n, 0, "no valid configuration")
		}
		return fail()
	}
	src := cfg.Source
	if src == "" {
		src = "none (embedded localhost defaults)"
	}
	detail := fmt.Sprintf("file %s: backend %s, storage %s", src, cfg.Lithops.Backend, cfg.Lithops.Storage)
	if len(cfg.Warnings) > 0 {
		detail += "; warning: " + strings.Join(cfg.Warnings, "; ")
	}
	r.line("PASS", "config", 0, detail)

	// storage: a probe object put, read back and deleted.
	start := time.Now()
	st, err := env.open(ctx, cfg)
	if err == nil {
		defer st.Close()
		var where string
		where, err = probeStorage(ctx, st)
		if err == nil {
			r.line("PASS", "storage", time.Since(start), "put, get and delete of "+where)
		}
	}
	if err != nil {
		r.line("FAIL", "storage", time.Since(start), oneLine(err.Error())+roleHint(err, "Storage Blob Data Contributor"))
		st = nil
	}

	switch cfg.Lithops.Backend {
	case "localhost":
		doctorLocalhost(r, cfg)
	case "azure_functions":
		doctorAzure(ctx, r, env, cfg, st)
	default:
		r.line("SKIP", "backend", 0, "no checks for backend "+cfg.Lithops.Backend)
	}
	if r.fail > 0 {
		return fail()
	}
	return nil
}

// probeStorage writes, reads and deletes a small object in st's bucket.
func probeStorage(ctx context.Context, st *storage.Storage) (string, error) {
	nonce := make([]byte, 6)
	rand.Read(nonce)
	key := "lithops.doctor/probe-" + hex.EncodeToString(nonce)
	where := fmt.Sprintf("%s://%s/%s", st.Backend(), st.Bucket(), key)
	payload := []byte("lithops doctor " + key)
	if err := st.PutBytes(ctx, st.Bucket(), key, payload); err != nil {
		return where, fmt.Errorf("put %s: %w", where, err)
	}
	got, err := st.GetBytes(ctx, st.Bucket(), key)
	if err != nil {
		st.Delete(context.WithoutCancel(ctx), st.Bucket(), key)
		return where, fmt.Errorf("get %s: %w", where, err)
	}
	if !bytes.Equal(got, payload) {
		st.Delete(context.WithoutCancel(ctx), st.Bucket(), key)
		return where, fmt.Errorf("get %s: read %d bytes that differ from the %d written", where, len(got), len(payload))
	}
	if err := st.Delete(ctx, st.Bucket(), key); err != nil {
		return where, fmt.Errorf("delete %s: %w", where, err)
	}
	if _, err := st.Head(ctx, st.Bucket(), key); !errors.Is(err, storage.ErrNotFound) {
		return where, fmt.Errorf("delete %s: the object is still there (head: %v)", where, err)
	}
	return where, nil
}

func doctorLocalhost(r *reporter, cfg *config.Config) {
	r.line("PASS", "backend", 0, fmt.Sprintf("localhost: %d worker processes on this machine", cfg.Localhost.WorkerProcesses))
	rt := cfg.Localhost.Runtime
	if rt == "" {
		r.line("PASS", "runtime", 0, "the workers run the calling program itself")
		return
	}
	fi, err := os.Stat(rt)
	switch {
	case err != nil:
		r.line("FAIL", "runtime", 0, fmt.Sprintf("localhost.runtime %s: %v", rt, err))
	case fi.IsDir() || fi.Mode().Perm()&0o111 == 0:
		r.line("FAIL", "runtime", 0, fmt.Sprintf("localhost.runtime %s is not an executable file (mode %v)", rt, fi.Mode()))
	default:
		r.line("PASS", "runtime", 0, "localhost.runtime "+rt)
	}
}

func doctorAzure(ctx context.Context, r *reporter, env doctorEnv, cfg *config.Config, st *storage.Storage) {
	af := cfg.AzureFunctions
	rt := af.Runtime
	if rt == "" {
		rt = azurefunctions.DefaultRuntime
	}

	// credentials the runtime and the client use: storage, then ARM.
	as := cfg.AzureStorage
	switch {
	case as.ConnectionString != "":
		r.line("PASS", "credentials", 0, "azure_storage.connection_string set")
	case as.StorageAccountName != "" && (as.StorageAccountKey != "" || as.SASToken != ""):
		r.line("PASS", "credentials", 0, "azure_storage account "+as.StorageAccountName+" with a key or SAS token")
	case as.StorageAccountKey == "" && as.SASToken == "" && (as.StorageAccountName != "" || as.Endpoint != "" && as.QueueEndpoint != ""):
		// No key: the client signs in with Entra ID and runtimes deploy
		// keyless, so say which identity needs which roles.
		who, how := as.StorageAccountName, "default credential chain"
		if who == "" {
			who = as.Endpoint
		}
		if strings.EqualFold(as.Credential, "managedidentity") {
			how = "managed identity " + cmpOr(as.ClientID, "(system-assigned)")
		}
		r.line("PASS", "credentials", 0, "azure_storage account "+who+" through Entra ID ("+how+"), no key: runtimes deploy keyless "+
			"(a managed identity with Storage Blob Data Owner and Storage Queue Data Contributor on the account); the signed-in identity needs the same data roles")
	case as.Endpoint != "" && as.StorageAccountKey == "" && as.SASToken == "":
		r.line("FAIL", "credentials", 0, "azure_storage.endpoint without a key needs azure_storage.queue_endpoint too (or storage_account_name)")
	default:
		r.line("FAIL", "credentials", 0, "azure_storage needs storage_account_name (with storage_account_key, sas_token or Entra ID) or connection_string")
	}

	var meta *protocol.RuntimeMeta
	var metaErr error = errors.New("storage unreachable")
	if st != nil {
		meta, metaErr = deploy.ReadMeta(ctx, st, rt, cfg.AzureFunctions.RuntimeMemory)
	}

	// ARM: a token for Resource Manager, then the resource group's
	// function apps, read with it.
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	dep, armErr := armDeployer(actx, cfg)
	var apps []armdeploy.App
	if armErr == nil {
		apps, armErr = dep.List(actx, af.ResourceGroup)
	}
	cancel()
	switch {
	case armErr == nil:
		how := "default credential chain"
		if cfg.Azure.ClientSecret != "" {
			how = "client secret of " + cfg.Azure.ClientID
		}
		r.line("PASS", "arm", time.Since(start), fmt.Sprintf("subscription %s, resource group %s (%d lithops runtime(s)), region %s; credential: %s",
			af.SubscriptionID, af.ResourceGroup, len(apps), af.Region, how))
	case errors.Is(armErr, deploy.ErrNoARM) && metaErr == nil:
		r.line("SKIP", "arm", 0, "no ARM settings: runtimes cannot be deployed from here, but "+rt+" is deployed")
	default:
		r.line("FAIL", "arm", time.Since(start), oneLine(armErr.Error())+"; needed to deploy runtimes (the default one deploys itself on first use)")
	}

	// runtime: metadata present and of this version, trigger queue there.
	start = time.Now()
	switch {
	case st == nil:
		r.line("SKIP", "runtime", 0, "storage unreachable")
	case metaErr != nil:
		r.line("FAIL", "runtime", time.Since(start), oneLine(metaErr.Error()))
	case meta.Version != protocol.Version || meta.LithopsVersion != protocol.LithopsVersion:
		r.line("FAIL", "runtime", time.Since(start), fmt.Sprintf("runtime %s is lithops-go %s (protocol %d), this client is %s (protocol %d): run `lithops runtime deploy -b azure_functions -s azure_storage %s`",
			rt, meta.LithopsVersion, meta.Version, protocol.LithopsVersion, protocol.Version, rt))
	default:
		r.line("PASS", "runtime", time.Since(start), fmt.Sprintf("%s: lithops-go %s, protocol %d, %d MB, trigger %s", rt, meta.LithopsVersion, meta.Version, meta.MemoryMB, cmpOr(meta.Trigger, "pub/sub")))
	}

	names := naming.Runtime(naming.Account(cfg.AzureStorage), rt, cfg.AzureFunctions.RuntimeMemory, protocol.LithopsVersion)
	queue := env.queue
	if queue == nil {
		queue = azureQueueExists
	}
	start = time.Now()
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := queue(qctx, cfg, names.Queue); err != nil {
		r.line("FAIL", "queue", time.Since(start), fmt.Sprintf("trigger queue %s of runtime %s: %s", names.Queue, rt, oneLine(err.Error()))+roleHint(err, "Storage Queue Data Contributor"))
	} else {
		r.line("PASS", "queue", time.Since(start), "trigger queue "+names.Queue+" reachable")
	}
}

// roleHint names the data role that a request refused with 403
// AuthorizationPermissionMismatch lacks: signed in with Entra ID, the
// identity can reach the account but has no role on its data.
func roleHint(err error, role string) string {
	var re *azcore.ResponseError
	if (errors.As(err, &re) && re.ErrorCode == "AuthorizationPermissionMismatch") || strings.Contains(err.Error(), "AuthorizationPermissionMismatch") {
		return fmt.Sprintf(" (the signed-in identity has no data role here: assign it %s on the storage account)", role)
	}
	return ""
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// azureQueueExists asks the storage account's queue service for the queue.
func azureQueueExists(ctx context.Context, cfg *config.Config, name string) error {
	svc, err := queueService(ctx, cfg)
	if err != nil {
		return err
	}
	_, err = svc.NewQueueClient(name).GetProperties(ctx, nil)
	return err
}

func newDoctorCmd(g *globalFlags) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the setup: config, storage, credentials, runtime",
		Long: "Check the setup before a big run: the configuration is valid; storage is reachable (a probe\n" +
			"object is put, read and deleted); on azure_functions the storage credentials are present,\n" +
			"Resource Manager accepts the ARM credential (a token, then the resource group's function\n" +
			"apps are listed), the runtime is deployed and of this version, and its trigger queue is\n" +
			"reachable.\n" +
			"One PASS, FAIL or SKIP line per check with the reason; non-zero exit status on a failure.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			cfg, err := loadDoctorConfig(g)
			env := doctorEnv{
				w: cmd.OutOrStdout(),
				open: func(ctx context.Context, cfg *config.Config) (*storage.Storage, error) {
					return lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
				},
			}
			return runDoctor(ctx, env, cfg, err)
		},
	}
	cmd.Flags().StringVarP(&g.backend, "backend", "b", "", "compute backend")
	cmd.Flags().StringVarP(&g.storage, "storage", "s", "", "storage backend")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "time limit for all checks")
	return cmd
}
