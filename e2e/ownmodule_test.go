package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops/compute/azurefunctions"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azuredouble"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/runtimetest"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/azblob"
)

// jobMain is the user's program: results of a Map on the runtime named by
// its first argument (none: the default runtime, deployed on first use).
const jobMain = `package main

import (
	"context"
	"fmt"
	"os"

	"github.com/lithops-go/lithops"
)

var double = lithops.Func("double", func(ctx context.Context, x int) (int, error) { return 2 * x, nil })

func main() {
	lithops.Main(func(ctx context.Context) error {
		var opts []lithops.Option
		if len(os.Args) > 1 {
			opts = append(opts, lithops.WithRuntime(os.Args[1]))
		}
		fexec, err := lithops.NewExecutor(ctx, opts...)
		if err != nil {
			return err
		}
		defer fexec.Close()
		futs, err := lithops.Map(ctx, fexec, double, []int{1, 2, 3, 4, 5})
		if err != nil {
			return err
		}
		res, err := futs.Results(ctx)
		if err != nil {
			return err
		}
		fmt.Println("results:", res)
		return nil
	})
}
`

// repoRoot is the checkout this test belongs to.
func repoRoot(t *testing.T) string {
	abs, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// command runs name in dir with env and returns its combined output.
func command(t *testing.T, ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("$ %s %s (%.1fs)\n%s", filepath.Base(name), strings.Join(args, " "), time.Since(start).Seconds(), out.String())
	return out.String(), err
}

// baseEnv is a user's shell: PATH, Go's settings and a home of its own, no
// AZURE_* or LITHOPS_* variables of the test's.
func baseEnv(home string) []string {
	env := []string{"HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, ".cache")}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "PATH" || k == "TMPDIR" || strings.HasPrefix(k, "GO") && k != "GOFLAGS" && k != "GOOS" && k != "GOARCH" {
			env = append(env, kv)
		}
	}
	// Module and build caches stay the test's own (a fresh one would
	// download and compile everything again).
	for _, k := range []string{"GOMODCACHE", "GOCACHE", "GOPATH"} {
		if out, err := exec.Command("go", "env", k).Output(); err == nil {
			env = append(env, k+"="+strings.TrimSpace(string(out)))
		}
	}
	return env
}

// TestOwnModuleAzure is issue 8's user: their own module, the CLI built
// without CGO_ENABLED=0, `runtime build -f ./cmd/job` and `runtime deploy`
// against Resource Manager (the platform double), then their client runs
// calls on that runtime and, with no runtime named, deploys the default
// runtime itself on first use and runs on it.
func TestOwnModuleAzure(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module and deploys twice")
	}
	if !runtimetest.AzuriteRunning() {
		t.Skip("Azurite not running on 127.0.0.1:10000/10001: start it with scripts/azurite.sh start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	repo := repoRoot(t)
	tmp := t.TempDir()
	home := filepath.Join(tmp, "home")
	mod := filepath.Join(tmp, "job")
	bin := filepath.Join(tmp, "bin")
	for _, d := range []string{home, filepath.Join(mod, "cmd", "job"), bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := baseEnv(home)

	// The user's module.
	gomod := fmt.Sprintf("module example.com/job\n\ngo 1.26\n\nrequire github.com/lithops-go/lithops v0.0.0\n\nreplace github.com/lithops-go/lithops => %s\n", repo)
	os.WriteFile(filepath.Join(mod, "go.mod"), []byte(gomod), 0o644)
	os.WriteFile(filepath.Join(mod, "cmd", "job", "main.go"), []byte(jobMain), 0o644)
	if _, err := command(t, ctx, mod, env, "go", "mod", "tidy"); err != nil {
		t.Fatalf("go mod tidy: %v", err)
	}
	// The CLI as `go install` builds it: cgo left on (dynamically linked).
	cli := filepath.Join(bin, "lithops")
	if _, err := command(t, ctx, repo, env, "go", "build", "-o", cli, "./cmd/lithops"); err != nil {
		t.Fatalf("build the CLI: %v", err)
	}
	if azurefunctions.IsStaticLinuxAMD64(cli) {
		t.Log("note: the CLI came out static (no cgo toolchain here)")
	}

	hostLog := &runtimetest.Buffer{}
	defer func() {
		if t.Failed() {
			t.Logf("handlers' output:\n%s", hostLog.String())
		}
	}()
	plat, err := azuredouble.Start(azuredouble.Options{
		Instances: 2, Lease: 20 * time.Second, Output: hostLog,
		Env: []string{"LITHOPS_HOST_CACHE=" + filepath.Join(tmp, "host-cache")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer plat.Close()
	env = append(env, plat.ClientEnv()...)

	id := fmt.Sprintf("%08x", rand.Uint32())
	rt := "job-" + id
	bucket := "lithops-own-" + id
	cfgYAML := fmt.Sprintf(`lithops:
  backend: azure_functions
  storage: azure_storage
azure_storage:
  connection_string: "%s"
  storage_bucket: %s
azure_functions:
  subscription_id: 00000000-0000-0000-0000-000000000000
  resource_group: rg-%s
  region: westeurope
  runtime_memory: 2048
  max_workers: 1
  worker_processes: 2
azure:
  resource_manager_endpoint: %s
`, runtimetest.AzuriteConn, bucket, id, plat.URL())
	os.WriteFile(filepath.Join(mod, ".lithops_config"), []byte(cfgYAML), 0o644)
	cfg, err := config.Parse("test", []byte(cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	defer cleanupAzurite(cfg, rt, azurefunctions.DefaultRuntime)

	// A custom runtime with the user's program compiled in.
	out, err := command(t, ctx, mod, env, cli, "runtime", "build", "-b", "azure_functions", "-f", "./cmd/job", rt)
	if err != nil || !strings.Contains(out, "runtime "+rt+" built") {
		t.Fatalf("runtime build: %v", err)
	}
	out, err = command(t, ctx, mod, env, cli, "runtime", "deploy", "-b", "azure_functions", "-s", "azure_storage", rt)
	if err != nil || !strings.Contains(out, "runtime "+rt+" deployed") {
		t.Fatalf("runtime deploy: %v\nplatform: %v", err, plat.Errors())
	}

	// The user's client, built in their module.
	job := filepath.Join(bin, "job")
	if _, err := command(t, ctx, mod, env, "go", "build", "-o", job, "./cmd/job"); err != nil {
		t.Fatalf("build the client: %v", err)
	}
	out, err = command(t, ctx, mod, env, job, rt)
	if err != nil || !strings.Contains(out, "results: [2 4 6 8 10]") {
		t.Fatalf("calls on %s: %v", rt, err)
	}
	// No runtime named: the first executor deploys the default runtime,
	// whose handler is this very program, cross-built in the user's module.
	out, err = command(t, ctx, mod, env, job)
	if err != nil || !strings.Contains(out, "results: [2 4 6 8 10]") {
		t.Fatalf("calls on the default runtime: %v\nplatform: %v", err, plat.Errors())
	}

	sites := plat.Sites()
	if len(sites) != 2 {
		t.Errorf("sites %v, want the custom and the default runtime", slices.Collect(mapsKeys(sites)))
	}
	// OneDeploy asked for App Service tokens, never the ARM audience.
	auds := plat.TokenAudiences()
	if !slices.Contains(auds, "https://appservice.azure.com") {
		t.Errorf("token audiences %v: no App Service token for OneDeploy", auds)
	}
	if errs := plat.Errors(); len(errs) > 0 {
		t.Errorf("platform errors: %v", errs)
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// cleanupAzurite deletes what the test left in Azurite: the bucket and the
// runtimes' queues.
func cleanupAzurite(cfg *config.Config, runtimes ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if d, err := azblob.New(ctx, azblob.Config{ConnectionString: cfg.AzureStorage.ConnectionString}); err == nil {
		st := storage.New(d, "azure_storage", cfg.AzureStorage.StorageBucket)
		st.DeletePrefix(ctx, st.Bucket(), "")
		st.Close()
	}
	svc, err := azurefunctions.NewQueueService(cfg.AzureStorage)
	if err != nil {
		return
	}
	for _, rt := range runtimes {
		names := azurefunctions.RuntimeNames(azurefunctions.AccountName(cfg.AzureStorage), rt, cfg.AzureFunctions.RuntimeMemory, protocol.LithopsVersion)
		svc.DeleteQueue(ctx, names.Queue, nil)
		svc.DeleteQueue(ctx, names.Queue+"-poison", nil)
	}
}
