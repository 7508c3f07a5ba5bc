package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5"
	armfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5/fake"
	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/deploy"
	"github.com/lithops-go/lithops/internal/azure/deploy/armdeploy"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/memory"
)

// matchLines checks that out matches every regexp, each against a line.
func matchLines(t *testing.T, out string, res ...string) {
	t.Helper()
	for _, re := range res {
		if !regexp.MustCompile("(?m)" + re).MatchString(out) {
			t.Errorf("output lacks a line matching %s:\n%s", re, out)
		}
	}
}

func TestSelfTestCommand(t *testing.T) {
	cfg := writeConfig(t, "localhost:\n  storage_root: "+t.TempDir()+"\n")
	out, err := run(t, "test", "-c", cfg)
	if err != nil {
		t.Fatalf("lithops test: %v\n%s", err, out)
	}
	matchLines(t, out,
		`^lithops-go \S+ self-test: backend localhost, storage localhost://storage, executor \S+$`,
		`^PASS  call +\d\S* +3 \+ 4 = 7$`,
		`^PASS  map +\d\S* +20 calls, results in input order$`,
		`^PASS  map_reduce +\d\S* +20 map calls reduced to 2090$`,
		`^PASS  storage +\d\S* +localhost://storage/lithops\.selftest/[0-9a-f]{12}$`,
		`^PASS  error +\d\S* +"lithops self-test error" from \S+/A\d+ call 00000$`,
		`^5 passed, 0 failed$`)

	tests := []struct {
		name    string
		args    []string
		wantErr string
		want    []string
		notWant string
	}{
		{"subset", []string{"-t", "map,error"}, "", []string{`^PASS  map `, `^PASS  error `, `^2 passed, 0 failed$`}, "PASS  call"},
		{"help", []string{"-t", "help"}, "", []string{`^call +call_async +CallAsync of one function`, `^storage +storage +storage round trip`}, "passed"},
		{"groups, Lithops' -g", []string{"-g", "call_async"}, "", []string{`^PASS  call `, `^PASS  error `, `^2 passed, 0 failed$`}, "PASS  map"},
		{"unknown group", []string{"-g", "nosuch"}, `unknown test group "nosuch"`, nil, ""},
		{"fail_fast and keep_datasets, Lithops' -f -k", []string{"-f", "-k", "-t", "call"}, "", []string{`^keeping the test's job records under localhost://storage/lithops\.jobs/\S+/$`, `^1 passed, 0 failed$`}, ""},
		{"region, Lithops' -r (localhost has none)", []string{"-r", "westeurope", "-t", "call"}, "", []string{`^1 passed, 0 failed$`}, ""},
		{"unknown", []string{"-t", "nosuch"}, `unknown test "nosuch"`, nil, ""},
		{"no executor", []string{"-b", "nosuch"}, "cannot create an executor", []string{`^FAIL  executor +\S+ +.*unknown compute backend "nosuch"`, `^0 passed, 1 failed$`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, append([]string{"test", "-c", cfg}, tt.args...)...)
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q\n%s", err, tt.wantErr, out)
			}
			matchLines(t, out, tt.want...)
			if tt.notWant != "" && strings.Contains(out, tt.notWant) {
				t.Errorf("output has %q:\n%s", tt.notWant, out)
			}
		})
	}
}

func TestRunSelfTestFailures(t *testing.T) {
	ok := selfCheck{name: "fine", run: func(context.Context, *lithops.Executor) (string, error) { return "all good", nil }}
	bad := selfCheck{name: "broken", run: func(context.Context, *lithops.Executor) (string, error) {
		return "", errors.New("it broke\n  on two lines")
	}}
	tests := []struct {
		name      string
		checks    []selfCheck
		exitFirst bool
		want      []string
		wantErr   string
	}{
		{"all pass", []selfCheck{ok, ok}, false, []string{`^2 passed, 0 failed$`}, ""},
		{"one fails", []selfCheck{bad, ok}, false, []string{`^FAIL  broken +\S+  it broke on two lines$`, `^PASS  fine `, `^1 passed, 1 failed$`}, "self-test: 1 of 2 checks failed"},
		{"exit first", []selfCheck{bad, ok}, true, []string{`^FAIL  broken `, `^0 passed, 1 failed$`}, "self-test: 1 of 1 checks failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := runSelfTest(context.Background(), &buf, nil, tt.checks, tt.exitFirst)
			if (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			matchLines(t, buf.String(), tt.want...)
		})
	}
}

func TestDoctorLocalhost(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, []byte("x"), 0o644)
	notExec := filepath.Join(t.TempDir(), "prog")
	os.WriteFile(notExec, []byte("x"), 0o644)
	tests := []struct {
		name    string
		config  string
		args    []string
		want    []string
		wantErr string
	}{
		{"ok", "localhost:\n  storage_root: " + t.TempDir() + "\n  worker_processes: 3\n", nil, []string{
			`^PASS  config +file \S+config\.yaml: backend localhost, storage localhost$`,
			`^PASS  storage +\S+  put, get and delete of localhost://storage/lithops\.doctor/probe-[0-9a-f]{12}$`,
			`^PASS  backend +localhost: 3 worker processes on this machine$`,
			`^PASS  runtime +the workers run the calling program itself$`,
			`^4 passed, 0 failed$`}, ""},
		{"bad config", "lithops:\n  bakend: x\n", nil, []string{
			`^FAIL  config +.*lithops\.bakend: unknown key`,
			`^SKIP  storage +no valid configuration$`,
			`^0 passed, 1 failed, 3 skipped$`}, "doctor: 1 check(s) failed"},
		{"bad flag", "localhost:\n  storage_root: " + t.TempDir() + "\n", []string{"-s", "nosuch"}, []string{
			`^FAIL  config +.*unknown storage backend "nosuch"`}, "doctor: 1 check(s) failed"},
		{"storage unreachable", "localhost:\n  storage_root: " + notDir + "\n", nil, []string{
			`^PASS  config `,
			`^FAIL  storage +\S+  .*localhost\.storage_root`,
			`^PASS  backend `}, "doctor: 1 check(s) failed"},
		{"runtime not executable", "localhost:\n  storage_root: " + t.TempDir() + "\n  runtime: " + notExec + "\n", nil, []string{
			`^FAIL  runtime +localhost\.runtime \S+ is not an executable file`}, "doctor: 1 check(s) failed"},
		{"runtime missing", "localhost:\n  storage_root: " + t.TempDir() + "\n  runtime: /nonexistent/prog\n", nil, []string{
			`^FAIL  runtime +localhost\.runtime /nonexistent/prog: .*no such file`}, "doctor: 1 check(s) failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, append([]string{"doctor", "-c", writeConfig(t, tt.config)}, tt.args...)...)
			if (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) {
				t.Fatalf("err = %v, want %q\n%s", err, tt.wantErr, out)
			}
			matchLines(t, out, tt.want...)
		})
	}
}

func TestDoctorAzure(t *testing.T) {
	current := protocol.RuntimeMeta{Version: protocol.Version, Runtime: "lithops-default", Backend: "azure_functions",
		LithopsVersion: protocol.LithopsVersion, MemoryMB: 2048, Trigger: "pub/sub"}
	old := current
	old.LithopsVersion = "0.0.1"
	arm := func(c *config.Config) {
		c.AzureFunctions.SubscriptionID, c.AzureFunctions.ResourceGroup, c.AzureFunctions.Region = "sub", "rg", "westeurope"
	}
	key := func(c *config.Config) {
		c.AzureStorage.StorageAccountName, c.AzureStorage.StorageAccountKey = "acct", "a2V5"
	}
	tests := []struct {
		name     string
		setup    []func(*config.Config)
		meta     *protocol.RuntimeMeta
		queueErr error
		want     []string
		wantErr  bool
		cred     azcore.TokenCredential // nil: one that gives tokens
	}{
		{"ready", []func(*config.Config){arm, key}, &current, nil, []string{
			`^PASS  config +file none \(embedded localhost defaults\): backend azure_functions, storage memory$`,
			`^PASS  storage +\S+  put, get and delete of memory://lithops/lithops\.doctor/probe-`,
			`^PASS  credentials +azure_storage account acct with a key or SAS token$`,
			`^PASS  arm +\S+  subscription sub, resource group rg \(1 lithops runtime\(s\)\), region westeurope; credential: default credential chain$`,
			`^PASS  runtime +\S+  lithops-default: lithops-go ` + regexp.QuoteMeta(protocol.LithopsVersion) + `, protocol \d+, 2048 MB, trigger pub/sub$`,
			`^PASS  queue +\S+  trigger queue lithops-lithops-default-2048-[0-9a-f]{10}-in reachable$`,
			`^6 passed, 0 failed$`}, false, nil},
		{"deployed elsewhere, no ARM here", []func(*config.Config){key}, &current, nil, []string{
			`^SKIP  arm +no ARM settings: runtimes cannot be deployed from here, but lithops-default is deployed$`,
			`^5 passed, 0 failed, 1 skipped$`}, false, nil},
		{"nothing deployed, no ARM", []func(*config.Config){key}, nil, nil, []string{
			`^FAIL  arm +\S+  azure_functions: ARM deployment needs .*; needed to deploy runtimes`,
			`^FAIL  runtime +\S+  azure_functions: runtime not deployed: runtime "lithops-default" has no metadata`}, true, nil},
		{"old runtime", []func(*config.Config){arm, key}, &old, nil, []string{
			`^FAIL  runtime +\S+  runtime lithops-default is lithops-go 0\.0\.1 \(protocol \d+\), this client is .*lithops runtime deploy`}, true, nil},
		{"no credentials", []func(*config.Config){arm}, &current, nil, []string{
			`^FAIL  credentials +azure_storage needs storage_account_name`}, true, nil},
		{"no data role on the queue", []func(*config.Config){arm, key}, &current, &azcore.ResponseError{StatusCode: 403, ErrorCode: "AuthorizationPermissionMismatch"}, []string{
			`^FAIL  queue +\S+  trigger queue .*assign it Storage Queue Data Contributor on the storage account\)$`}, true, nil},
		{"queue missing", []func(*config.Config){arm, key}, &current, errors.New("QueueNotFound"), []string{
			`^FAIL  queue +\S+  trigger queue lithops-lithops-default-\S+ of runtime lithops-default: QueueNotFound$`}, true, nil},
		{"no ARM sign-in", []func(*config.Config){arm, key}, &current, nil, []string{
			`^FAIL  arm +\S+  ` + regexp.QuoteMeta(deploy.ARMAuthHint) + ` .*failed to acquire a token \(test\); needed to deploy runtimes`,
			`^PASS  runtime `}, true, noSignIn()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Lithops.Backend, cfg.Lithops.Storage = "azure_functions", "memory"
			for _, f := range tt.setup {
				f(cfg)
			}
			cred := tt.cred
			if cred == nil {
				cred = &azfake.TokenCredential{}
			}
			useDeployer(t, cred, oneApp("rg"))
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			st := storage.New(memory.New(), "memory", "lithops")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st.CreateBucket(ctx, "lithops")
			if tt.meta != nil {
				raw, _ := json.Marshal(tt.meta)
				if err := st.PutBytes(ctx, "lithops", protocol.RuntimeMetaKey("azure_functions", "lithops-default-2048mb"), raw); err != nil {
					t.Fatal(err)
				}
			}
			var buf bytes.Buffer
			var asked string
			env := doctorEnv{
				w:    &buf,
				open: func(context.Context, *config.Config) (*storage.Storage, error) { return st, nil },
				queue: func(_ context.Context, _ *config.Config, name string) error {
					asked = name
					return tt.queueErr
				},
			}
			err := runDoctor(ctx, env, cfg, nil)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v\n%s", err, buf.String())
			}
			matchLines(t, buf.String(), tt.want...)
			if asked == "" {
				t.Error("the trigger queue was not checked")
			}
		})
	}
}

// oneApp is a fake Resource Manager with one lithops runtime in resource
// group rg.
func oneApp(rg string) *armfake.ServerFactory {
	return &armfake.ServerFactory{WebAppsServer: armfake.WebAppsServer{
		NewListByResourceGroupPager: func(group string, _ *armappservice.WebAppsClientListByResourceGroupOptions) (resp azfake.PagerResponder[armappservice.WebAppsClientListByResourceGroupResponse]) {
			var sites []*armappservice.Site
			if group == rg {
				sites = append(sites, &armappservice.Site{Name: to.Ptr("lithops-x-2048-0123456789"), Kind: to.Ptr("functionapp,linux"),
					Tags: map[string]*string{armdeploy.TagType: to.Ptr(armdeploy.TagTypeRuntime)}})
			}
			resp.AddPage(http.StatusOK, armappservice.WebAppsClientListByResourceGroupResponse{WebAppCollection: armappservice.WebAppCollection{Value: sites}}, nil)
			return
		},
	}}
}

// TestDoctorNoCredentials: with ARM settings but no credential at all on
// the machine (nothing in the environment, no az login), doctor fails the
// ARM check with the hint, where it used to pass without asking for a
// token.
func TestDoctorNoCredentials(t *testing.T) {
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		if strings.HasPrefix(k, "AZURE_") || strings.HasPrefix(k, "IDENTITY_") || strings.HasPrefix(k, "MSI_") || strings.HasPrefix(k, "IMDS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	home := t.TempDir()
	t.Setenv("HOME", home) // no az or azd sign-in
	t.Setenv("AZURE_CONFIG_DIR", filepath.Join(home, ".azure"))
	os.Unsetenv("AZURE_CONFIG_DIR")
	t.Setenv("PATH", t.TempDir()) // no az, azd or pwsh
	cfg := config.Default()
	cfg.Lithops.Backend, cfg.Lithops.Storage = "azure_functions", "memory"
	cfg.AzureFunctions.SubscriptionID, cfg.AzureFunctions.ResourceGroup, cfg.AzureFunctions.Region = "sub", "rg", "westeurope"
	cfg.AzureStorage.StorageAccountName, cfg.AzureStorage.StorageAccountKey = "acct", "a2V5"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st := storage.New(memory.New(), "memory", "lithops")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st.CreateBucket(ctx, "lithops")
	var buf bytes.Buffer
	env := doctorEnv{
		w:     &buf,
		open:  func(context.Context, *config.Config) (*storage.Storage, error) { return st, nil },
		queue: func(context.Context, *config.Config, string) error { return nil },
	}
	start := time.Now()
	if err := runDoctor(ctx, env, cfg, nil); err == nil {
		t.Fatalf("doctor passed without credentials:\n%s", buf.String())
	}
	t.Logf("%v\n%s", time.Since(start), buf.String())
	matchLines(t, buf.String(), `^FAIL  arm +\S+  `+regexp.QuoteMeta(deploy.ARMAuthHint)+` .*DefaultAzureCredential`)
}

// Signed in with Entra ID but without a data role, storage refuses with
// 403 AuthorizationPermissionMismatch: doctor names the role to assign.
func TestDoctorNamesMissingBlobRole(t *testing.T) {
	cfg := config.Default()
	cfg.Lithops.Backend, cfg.Lithops.Storage = "azure_functions", "azure_storage"
	cfg.AzureStorage.StorageAccountName = "acct"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	env := doctorEnv{
		w: &buf,
		open: func(context.Context, *config.Config) (*storage.Storage, error) {
			return nil, fmt.Errorf("open azure_storage storage: %w", &azcore.ResponseError{StatusCode: 403, ErrorCode: "AuthorizationPermissionMismatch"})
		},
		queue: func(context.Context, *config.Config, string) error { return nil },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := runDoctor(ctx, env, cfg, nil); err == nil {
		t.Fatalf("doctor passed:\n%s", buf.String())
	}
	matchLines(t, buf.String(), `^FAIL  storage +\S+  .*assign it Storage Blob Data Contributor on the storage account\)$`)
}

// lithops test -k keeps the run's job records; without it they go.
func TestSelfTestKeepDatasets(t *testing.T) {
	for _, keep := range []bool{false, true} {
		root := t.TempDir()
		cfg := writeConfig(t, "localhost:\n  storage_root: "+root+"\n")
		args := []string{"test", "-c", cfg, "-t", "call"}
		if keep {
			args = append(args, "-k")
		}
		if out, err := run(t, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		entries, _ := os.ReadDir(filepath.Join(root, "storage", "lithops.jobs"))
		if kept := len(entries) > 0; kept != keep {
			t.Errorf("-k %v: job records kept = %v", keep, kept)
		}
	}
}
