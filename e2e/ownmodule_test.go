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
	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/internal/azure/build"
	"github.com/lithops-go/lithops/internal/azure/deploy"
	"github.com/lithops-go/lithops/internal/azure/naming"
	"github.com/lithops-go/lithops/internal/azure/queues"
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
	_ "github.com/lithops-go/lithops/azure"
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

// userModule is a user's own module outside the checkout, with the CLI
// built as `go install` builds it (cgo left on: dynamically linked).
type userModule struct {
	dir, cli, home string
	env            []string
}

// newUserModule creates the module (a replace directive to this checkout)
// with jobMain as cmd/job, and builds the CLI.
func newUserModule(t *testing.T, ctx context.Context) *userModule {
	t.Helper()
	repo := repoRoot(t)
	tmp := t.TempDir()
	u := &userModule{dir: filepath.Join(tmp, "job"), home: filepath.Join(tmp, "home"), cli: filepath.Join(tmp, "bin", "lithops")}
	for _, d := range []string{u.home, filepath.Join(u.dir, "cmd", "job"), filepath.Dir(u.cli)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	u.env = baseEnv(u.home)
	gomod := fmt.Sprintf("module example.com/job\n\ngo 1.26\n\nrequire github.com/lithops-go/lithops v0.0.0\n\nreplace github.com/lithops-go/lithops => %s\n", repo)
	os.WriteFile(filepath.Join(u.dir, "go.mod"), []byte(gomod), 0o644)
	os.WriteFile(filepath.Join(u.dir, "cmd", "job", "main.go"), []byte(jobMain), 0o644)
	if _, err := command(t, ctx, u.dir, u.env, "go", "mod", "tidy"); err != nil {
		t.Fatalf("go mod tidy: %v", err)
	}
	if _, err := command(t, ctx, repo, u.env, "go", "build", "-o", u.cli, "./cmd/lithops"); err != nil {
		t.Fatalf("build the CLI: %v", err)
	}
	return u
}

// flow is what a user does from their module: build and deploy a runtime
// with their program compiled in, run calls on it from their client, then
// run with no runtime named (the default runtime, deployed on first use).
func (u *userModule) flow(t *testing.T, ctx context.Context, rt string) {
	t.Helper()
	out, err := command(t, ctx, u.dir, u.env, u.cli, "runtime", "build", "-b", "azure_functions", "-f", "./cmd/job", rt)
	if err != nil || !strings.Contains(out, "runtime "+rt+" built") {
		t.Fatalf("runtime build: %v", err)
	}
	out, err = command(t, ctx, u.dir, u.env, u.cli, "runtime", "deploy", "-b", "azure_functions", "-s", "azure_storage", rt)
	if err != nil || !strings.Contains(out, "runtime "+rt+" deployed") {
		t.Fatalf("runtime deploy: %v", err)
	}
	job := filepath.Join(filepath.Dir(u.cli), "job")
	if _, err := command(t, ctx, u.dir, u.env, "go", "build", "-o", job, "./cmd/job"); err != nil {
		t.Fatalf("build the client: %v", err)
	}
	out, err = command(t, ctx, u.dir, u.env, job, rt)
	if err != nil || !strings.Contains(out, "results: [2 4 6 8 10]") {
		t.Fatalf("calls on %s: %v", rt, err)
	}
	out, err = command(t, ctx, u.dir, u.env, job)
	if err != nil || !strings.Contains(out, "results: [2 4 6 8 10]") {
		t.Fatalf("calls on the default runtime: %v", err)
	}
}

// TestOwnModuleAzure is the user of issue 8: their own module, the CLI
// built without CGO_ENABLED=0, `runtime build -f ./cmd/job` and
// `runtime deploy` through Resource Manager (the platform double), then
// their client runs calls on that runtime and, with no runtime named,
// deploys the default runtime itself on first use and runs on it.
func TestOwnModuleAzure(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module and deploys twice")
	}
	if !runtimetest.AzuriteRunning() {
		t.Skip("Azurite not running on 127.0.0.1:10000/10001: start it with scripts/azurite.sh start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	u := newUserModule(t, ctx)
	if build.IsStaticLinuxAMD64(u.cli) {
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
		Env: []string{appsettings.HostCache + "=" + filepath.Join(u.home, "host-cache")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer plat.Close()
	u.env = append(u.env, plat.ClientEnv()...)

	id := fmt.Sprintf("%08x", rand.Uint32())
	rt := "job-" + id
	cfgYAML := fmt.Sprintf(`lithops:
  backend: azure_functions
  storage: azure_storage
azure_storage:
  connection_string: "%s"
  storage_bucket: lithops-own-%s
azure_functions:
  subscription_id: 00000000-0000-0000-0000-000000000000
  resource_group: rg-%s
  region: westeurope
  runtime_memory: 2048
  max_workers: 1
  worker_processes: 2
azure:
  resource_manager_endpoint: %s
`, runtimetest.AzuriteConn, id, id, plat.URL())
	os.WriteFile(filepath.Join(u.dir, ".lithops_config"), []byte(cfgYAML), 0o600)
	cfg, err := config.Parse("test", []byte(cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	defer cleanupAzurite(cfg, rt, azurefunctions.DefaultRuntime)

	u.flow(t, ctx, rt)

	sites := plat.Sites()
	if len(sites) != 2 {
		t.Errorf("sites %v, want the custom and the default runtime", slices.Collect(mapsKeys(sites)))
	}
	// Each function app has a deployment container of its own (Flex keeps
	// one released package per container).
	containers := map[string]bool{}
	for name, s := range sites {
		var c string
		if fc := s.Properties.FunctionAppConfig; fc != nil && fc.Deployment != nil && fc.Deployment.Storage != nil && fc.Deployment.Storage.Value != nil {
			c = *fc.Deployment.Storage.Value
		}
		if c == "" || containers[c] {
			t.Errorf("site %s: deployment container %q missing or shared", name, c)
		}
		containers[c] = true
	}
	// The custom runtime has the program compiled in; the default runtime
	// fetches programs by hash (its handler only hosts them).
	d, err := azblob.New(ctx, azblob.Config{ConnectionString: cfg.AzureStorage.ConnectionString})
	if err != nil {
		t.Fatal(err)
	}
	st := storage.New(d, "azure_storage", cfg.AzureStorage.StorageBucket)
	defer st.Close()
	for rtName, compiled := range map[string]bool{rt: true, azurefunctions.DefaultRuntime: false} {
		m, err := deploy.ReadMeta(ctx, st, rtName, cfg.AzureFunctions.RuntimeMemory)
		if err != nil {
			t.Fatalf("metadata of %s: %v", rtName, err)
		}
		if (m.Program != "") != compiled || m.Queue == "" {
			t.Errorf("metadata of %s: program %q, queue %q (compiled in: want %v)", rtName, m.Program, m.Queue, compiled)
		}
	}
	// OneDeploy asked for App Service tokens.
	if auds := plat.TokenAudiences(); !slices.Contains(auds, "https://appservice.azure.com") {
		t.Errorf("token audiences %v: no App Service token for OneDeploy", auds)
	}
	if errs := plat.Errors(); len(errs) > 0 {
		t.Errorf("platform errors: %v", errs)
	}
}

// TestOwnModuleLiveAzure is the same flow against real Azure, only when
// asked to:
//
//	LITHOPS_LIVE_AZURE=1 LITHOPS_CONFIG_FILE=~/.lithops/azure.yaml go test -run TestOwnModuleLiveAzure -timeout 60m ./e2e
//
// The config needs azure_storage and azure_functions (subscription_id,
// resource_group, region); ARM credentials come from the azure section or
// the default credential chain (az login). The runtimes it deploys are
// deleted at the end.
func TestOwnModuleLiveAzure(t *testing.T) {
	if os.Getenv("LITHOPS_LIVE_AZURE") == "" {
		t.Skip("live Azure test: set LITHOPS_LIVE_AZURE=1 and LITHOPS_CONFIG_FILE (see the README)")
	}
	raw, err := os.ReadFile(os.Getenv("LITHOPS_CONFIG_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	u := newUserModule(t, ctx)
	// The live test signs in as the developer running it (az login keeps
	// its tokens under the real home).
	for i, kv := range u.env {
		if strings.HasPrefix(kv, "HOME=") {
			u.env[i] = "HOME=" + os.Getenv("HOME")
		}
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AZURE_") || strings.HasPrefix(kv, "IDENTITY_") {
			u.env = append(u.env, kv)
		}
	}
	if err := os.WriteFile(filepath.Join(u.dir, ".lithops_config"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	rt := fmt.Sprintf("live-%06x", rand.Uint32()>>8)
	defer command(t, context.Background(), u.dir, u.env, u.cli, "runtime", "delete", "-b", "azure_functions", rt)
	u.flow(t, ctx, rt)
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
	svc, err := queues.NewService(cfg.AzureStorage)
	if err != nil {
		return
	}
	for _, rt := range runtimes {
		names := naming.Runtime(naming.Account(cfg.AzureStorage), rt, cfg.AzureFunctions.RuntimeMemory, protocol.LithopsVersion)
		svc.DeleteQueue(ctx, names.Queue, nil)
		svc.DeleteQueue(ctx, names.Queue+"-poison", nil)
	}
}
