package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	armfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v5/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/compute/azurefunctions"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/deploy"
	"github.com/lithops-go/lithops/internal/azure/deploy/armdeploy"
	"github.com/lithops-go/lithops/internal/azure/naming"
	"github.com/lithops-go/lithops/internal/azure/queues"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/runtimetest"
)

// useDeployer makes the commands deploy with a deployer of credential cred
// against the SDK's fake Resource Manager srv.
func useDeployer(t *testing.T, cred azcore.TokenCredential, srv *armfake.ServerFactory) {
	t.Helper()
	prev := newDeployer
	t.Cleanup(func() { newDeployer = prev })
	newDeployer = func(cfg *config.Config, _ *slog.Logger) (*armdeploy.Deployer, error) {
		if _, err := prev(cfg, nil); err != nil {
			return nil, err // the configuration's own errors (ErrNoARM)
		}
		return armdeploy.New(cfg.AzureFunctions.SubscriptionID, cred, armdeploy.WithClientOptions(&arm.ClientOptions{
			ClientOptions: azcore.ClientOptions{Transport: armfake.NewServerFactoryTransport(srv)},
		}))
	}
}

// noSignIn is a credential of a machine where nobody signed in.
func noSignIn() azcore.TokenCredential {
	cred := &azfake.TokenCredential{}
	cred.SetError(errors.New("DefaultAzureCredential: failed to acquire a token (test)"))
	return cred
}

// TestARMAuthFailureChangesNothing: runtime deploy, update, delete and clean
// fail on an ARM credential that gives no token before they create or
// delete any queue, record or job.
func TestARMAuthFailureChangesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	az, err := runtimetest.StartAzurite(ctx, t.TempDir())
	if errors.Is(err, runtimetest.ErrNoAzurite) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer az.Close()
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // no built runtimes
	useDeployer(t, noSignIn(), &armfake.ServerFactory{})
	bucket := fmt.Sprintf("lithops-armauth-%08x", rand.Uint32())
	cfgPath := writeConfig(t, "lithops:\n  backend: azure_functions\n  storage: azure_storage\n"+
		"azure_storage:\n  connection_string: \""+az.Conn()+"\"\n  storage_bucket: "+bucket+"\n"+
		"azure_functions:\n  subscription_id: sub\n  resource_group: rg\n  region: westeurope\n  runtime_memory: 512\n")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := queues.NewService(cfg.AzureStorage)
	if err != nil {
		t.Fatal(err)
	}
	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}

	// A deployed runtime and a job: what delete and clean must leave alone.
	names := naming.Runtime(naming.Account(cfg.AzureStorage), "mine", 512, protocol.LithopsVersion)
	if err := queues.Ensure(ctx, svc, names.Queue); err != nil {
		t.Fatal(err)
	}
	metaKey := protocol.RuntimeMetaKey("azure_functions", naming.Key("mine", 512))
	jobKey := protocol.JobKey("exec-1", "M000")
	for _, k := range []string{metaKey, jobKey} {
		if err := st.PutBytes(ctx, bucket, k, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	queues := func() []string {
		var out []string
		pager := svc.NewListQueuesPager(&azqueue.ListQueuesOptions{})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range page.Queues {
				out = append(out, *q.Name)
			}
		}
		return out
	}
	objects := func() []string {
		infos, err := st.List(ctx, bucket, "")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range infos {
			out = append(out, o.Key)
		}
		return out
	}
	qBefore, oBefore := queues(), objects()

	for _, args := range [][]string{
		{"runtime", "deploy", azurefunctions.DefaultRuntime},
		{"runtime", "update", azurefunctions.DefaultRuntime},
		{"runtime", "delete", "mine"},
		{"runtime", "list"},
		{"clean", "-b", "azure_functions"},
		{"clean", "-b", "azure_functions", "--all"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			start := time.Now()
			_, err := run(t, append(args, "-c", cfgPath)...)
			if !errors.Is(err, deploy.ErrARMAuth) {
				t.Fatalf("err = %v, want an ARM authentication error", err)
			}
			if first, rest, _ := strings.Cut(err.Error(), "\n"); first != deploy.ARMAuthHint || !strings.Contains(rest, "failed to acquire a token (test)") {
				t.Errorf("error %q: want the hint alone on the first line, then the credential's error", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v to fail", d)
			}
			if q := queues(); !slices.Equal(q, qBefore) {
				t.Errorf("queues %q before, %q after", qBefore, q)
			}
			if o := objects(); !slices.Equal(o, oBefore) {
				t.Errorf("objects %q before, %q after", oBefore, o)
			}
		})
	}
}

// TestRuntimeDeployChecks: deploying a runtime never built says to build
// it; an invalid --memory blames the flag. Both before any ARM request.
func TestRuntimeDeployChecks(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // no built runtimes
	useDeployer(t, noSignIn(), &armfake.ServerFactory{})
	cfgPath := writeConfig(t, "lithops:\n  backend: azure_functions\n  storage: azure_storage\n"+
		"azure_storage:\n  storage_account_name: acct\n  storage_account_key: a2V5\n  storage_bucket: b\n"+
		"azure_functions:\n  subscription_id: sub\n  resource_group: rg\n  region: westeurope\n")
	for _, verb := range []string{"deploy", "update"} {
		_, err := run(t, "runtime", verb, "-c", cfgPath, "mine")
		if err == nil || !strings.Contains(err.Error(), "runtime mine is not built") || !strings.Contains(err.Error(), "run `lithops runtime build -b azure_functions -f ") ||
			!strings.Contains(err.Error(), " mine` first") {
			t.Errorf("%s of a runtime never built: %v", verb, err)
		}
	}
	for _, args := range [][]string{
		{"runtime", "deploy", "--memory", "1000", azurefunctions.DefaultRuntime},
		{"runtime", "update", "--memory", "1000", "mine"},
		{"runtime", "delete", "--memory", "1000", "mine"},
	} {
		_, err := run(t, append(args, "-c", cfgPath)...)
		if err == nil || err.Error() != "--memory 1000: Flex Consumption offers 512, 2048 or 4096 MB" {
			t.Errorf("%q: %v", args, err)
		}
	}
}

// TestDoctorNoSuchAccount: a wrong storage account name fails the storage
// and queue checks at once, naming the hosts.
func TestDoctorNoSuchAccount(t *testing.T) {
	cfgPath := writeConfig(t, "lithops:\n  backend: azure_functions\n  storage: azure_storage\n"+
		"azure_storage:\n  storage_account_name: nosuchaccount\n  storage_account_key: a2V5\n  storage_bucket: b\n"+
		"  endpoint: https://nosuchaccount.blob.core.invalid\n  queue_endpoint: https://nosuchaccount.queue.core.invalid/\n")
	start := time.Now()
	out, err := run(t, "doctor", "-c", cfgPath)
	if err == nil {
		t.Fatalf("doctor passed:\n%s", out)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("doctor took %v", took)
	}
	matchLines(t, out,
		`^FAIL  storage .*host nosuchaccount\.blob\.core\.invalid does not exist .*check azure_storage\.storage_account_name`,
		`^FAIL  queue .*host nosuchaccount\.queue\.core\.invalid does not exist .*check azure_storage\.storage_account_name`)
}
