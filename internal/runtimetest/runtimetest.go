// Package runtimetest starts an Azure Functions runtime of lithops on this
// machine for tests and benchmarks: Azurite for blobs and queues, the
// runtime host built from this repository (cmd/lithops), and the
// Functions-host double (internal/hostdouble) driving it.
package runtimetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lithops-go/lithops"
	_ "github.com/lithops-go/lithops/azure" // programs that use Azurite run as runtime hosts
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/internal/azure/deploy"
	"github.com/lithops-go/lithops/internal/azure/naming"
	"github.com/lithops-go/lithops/internal/azure/queues"
	"github.com/lithops-go/lithops/internal/host"
	"github.com/lithops-go/lithops/internal/hostdouble"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/azblob"
)

// AzuriteConn is the connection string of Azurite's well-known account.
const AzuriteConn = "DefaultEndpointsProtocol=http;AccountName=" + azblob.DevAccountName + ";AccountKey=" + azblob.DevAccountKey +
	";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"

// AzuriteRunning reports whether Azurite answers on its blob and queue ports.
func AzuriteRunning() bool {
	_, ok := endpointsAnswer(AzuriteConn)
	return ok
}

// endpointsAnswer dials the blob and queue endpoints of an Azurite
// connection string.
func endpointsAnswer(conn string) ([]string, bool) {
	var addrs []string
	for _, part := range strings.Split(conn, ";") {
		k, v, _ := strings.Cut(part, "=")
		if k == "BlobEndpoint" || k == "QueueEndpoint" {
			if u, err := url.Parse(v); err == nil {
				addrs = append(addrs, u.Host)
			}
		}
	}
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, 500*time.Millisecond)
		if err != nil {
			return addrs, false
		}
		c.Close()
	}
	return addrs, len(addrs) > 0
}

// Config returns a config for azure_functions on Azurite with a fresh
// bucket and runtime name (prefix-<random>).
func Config(prefix string) *config.Config {
	id := fmt.Sprintf("%08x", rand.Uint32())
	cfg := config.Default()
	cfg.Lithops.Backend, cfg.Lithops.Storage = "azure_functions", "azure_storage"
	cfg.AzureStorage.ConnectionString = AzuriteConn
	cfg.AzureStorage.StorageBucket = "lithops-" + prefix + "-" + id
	cfg.AzureFunctions.Runtime = prefix + "-" + id
	return cfg
}

var (
	buildOnce sync.Once
	hostBin   string
	buildErr  error
)

// HostBinary builds cmd/lithops once per process. Builds are kept in one
// directory under the OS temp dir, named by content hash, so test runs
// share them instead of leaving a copy each; copies unused for a day go.
func HostBinary(ctx context.Context) (string, error) {
	buildOnce.Do(func() { hostBin, buildErr = buildHost(ctx) })
	return hostBin, buildErr
}

func buildHost(ctx context.Context) (string, error) {
	dir := filepath.Join(os.TempDir(), "lithops-test-hosts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if old, err := os.ReadDir(dir); err == nil {
		for _, o := range old {
			if info, err := o.Info(); err == nil && time.Since(info.ModTime()) > 24*time.Hour {
				os.Remove(filepath.Join(dir, o.Name()))
			}
		}
	}
	tmp := filepath.Join(dir, fmt.Sprintf("build-%d-%08x", os.Getpid(), rand.Uint32()))
	defer os.Remove(tmp)
	out, err := exec.CommandContext(ctx, "go", "build", "-o", tmp, "github.com/lithops-go/lithops/cmd/lithops").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build the runtime host: %v\n%s", err, out)
	}
	f, err := os.Open(tmp)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", err
	}
	// Rename is atomic: a process running an identical earlier copy keeps it.
	bin := filepath.Join(dir, "lithops-"+hex.EncodeToString(h.Sum(nil))[:16])
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	now := time.Now()
	os.Chtimes(bin, now, now)
	return bin, nil
}

// Options configure Start.
type Options struct {
	Instances int           // host double instances (default 1)
	Workers   int           // worker processes per host (default 2)
	Lease     time.Duration // queue lease of a running message (default 10 s)
	Env       []string      // more app settings
	Output    io.Writer     // hosts' stdout and stderr (default os.Stderr)
	// FunctionTimeout is the double's function timeout (host.json
	// functionTimeout; default the double's, 5 min): match it to an
	// LITHOPS_RUNTIME_TIMEOUT set in Env.
	FunctionTimeout time.Duration
	// Queue is the trigger queue (default: the name lithops derives), as
	// for an app deployed by other means.
	Queue string
}

// Env is a running runtime.
type Env struct {
	Config *config.Config
	Names  naming.Names
	Double *hostdouble.Double
	Meta   *protocol.RuntimeMeta
	st     *storage.Storage
	cache  string // the hosts' program cache
}

// Start creates the runtime's queue, starts the double with the host, and
// waits until the runtime answers a metadata probe (deployment's last
// step). cfg comes from Config.
func Start(ctx context.Context, cfg *config.Config, o Options) (*Env, error) {
	if addrs, ok := endpointsAnswer(cfg.AzureStorage.ConnectionString); !ok {
		return nil, fmt.Errorf("Azurite not answering on %v: start it with scripts/azurite.sh start", addrs)
	}
	if o.Instances < 1 {
		o.Instances = 1
	}
	if o.Workers < 1 {
		o.Workers = 2
	}
	if o.Lease <= 0 {
		o.Lease = 10 * time.Second
	}
	bin, err := HostBinary(ctx)
	if err != nil {
		return nil, err
	}
	svc, err := queues.NewService(cfg.AzureStorage)
	if err != nil {
		return nil, err
	}
	names := naming.Runtime(naming.Account(cfg.AzureStorage), cfg.AzureFunctions.Runtime, cfg.AzureFunctions.RuntimeMemory, protocol.LithopsVersion)
	if o.Queue != "" {
		names.Queue = o.Queue
	}
	if err := queues.Ensure(ctx, svc, names.Queue); err != nil {
		return nil, err
	}
	// Programs the hosts fetch go to a cache of this runtime's own, removed
	// by Close (the hosts' default, under the temp dir, outlives tests).
	cache, err := os.MkdirTemp("", "lithops-host-cache-")
	if err != nil {
		return nil, err
	}
	d, err := hostdouble.Start(ctx, hostdouble.Options{
		Command: []string{bin, "runtime", "serve"},
		Env: append([]string{
			appsettings.HostCache + "=" + cache,
			appsettings.HostStorage + "=" + cfg.AzureStorage.ConnectionString,
			appsettings.StorageBucket + "=" + cfg.AzureStorage.StorageBucket,
			appsettings.RuntimeName + "=" + cfg.AzureFunctions.Runtime,
			appsettings.Queue + "=" + names.Queue,
			fmt.Sprintf("%s=%d", appsettings.WorkerProcesses, o.Workers),
			fmt.Sprintf("%s=%d", appsettings.RuntimeMemory, cfg.AzureFunctions.RuntimeMemory),
		}, o.Env...),
		Queues: svc, Queue: names.Queue, Function: host.FunctionName,
		Instances: o.Instances, MaxDequeueCount: 5, RetryDelay: time.Second, Lease: o.Lease, Output: o.Output,
		FunctionTimeout: o.FunctionTimeout,
	})
	if err != nil {
		os.RemoveAll(cache)
		return nil, err
	}
	e := &Env{Config: cfg, Names: names, Double: d, cache: cache}
	if e.st, err = lithops.OpenStorage(ctx, lithops.WithConfig(cfg)); err != nil {
		e.Close()
		return nil, err
	}
	if e.Meta, err = deploy.Probe(ctx, e.st, svc, names, cfg.AzureFunctions.Runtime, cfg.AzureFunctions.RuntimeMemory, time.Minute); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Close stops the double and deletes the runtime's queues and data.
func (e *Env) Close() {
	e.Double.Close()
	os.RemoveAll(e.cache)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if svc, err := queues.NewService(e.Config.AzureStorage); err == nil {
		svc.DeleteQueue(ctx, e.Names.Queue, nil)
		svc.DeleteQueue(ctx, e.Names.Queue+"-poison", nil)
	}
	if e.st != nil {
		e.st.DeletePrefix(ctx, e.st.Bucket(), "")
		e.st.Close()
	}
}
