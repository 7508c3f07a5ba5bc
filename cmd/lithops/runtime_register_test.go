package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/compute/azurefunctions"
	"github.com/lithops-go/lithops/internal/azure/naming"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/runtimetest"
)

// A function app that runs the runtime host but whose metadata is unknown
// (deployed by other means, or by an earlier CLI) is registered through its
// queue, without Resource Manager; clients then use it by name.
func TestRuntimeRegister(t *testing.T) {
	if !runtimetest.AzuriteRunning() {
		t.Skip("Azurite not running on 127.0.0.1:10000/10001: start it with scripts/azurite.sh start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := runtimetest.Config("reg")
	// The app listens on a queue of its own choosing.
	r, err := runtimetest.Start(ctx, cfg, runtimetest.Options{Workers: 2, Queue: "byhand-" + cfg.AzureFunctions.Runtime})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	name := cfg.AzureFunctions.Runtime
	st, err := lithops.OpenStorage(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Forget the runtime: clients cannot find it.
	key := protocol.RuntimeMetaKey("azure_functions", naming.Key(name, cfg.AzureFunctions.RuntimeMemory))
	if err := st.Delete(ctx, st.Bucket(), key); err != nil {
		t.Fatal(err)
	}
	if _, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg)); !errors.Is(err, azurefunctions.ErrNotDeployed) {
		t.Fatalf("executor on an unknown runtime: %v", err)
	}
	file := writeConfig(t, fmt.Sprintf("lithops:\n  backend: azure_functions\n  storage: azure_storage\nazure_storage:\n  connection_string: %q\n  storage_bucket: %s\nazure_functions:\n  runtime_memory: %d\n",
		cfg.AzureStorage.ConnectionString, cfg.AzureStorage.StorageBucket, cfg.AzureFunctions.RuntimeMemory))

	// A wrong queue: nothing answers, and the error says how to name it.
	if _, err := run(t, "runtime", "register", "-c", file, "--queue", "no-such-app-queue", "--wait", "2s", name); err == nil || !strings.Contains(err.Error(), "--queue") {
		t.Fatalf("register through a queue nobody reads: %v", err)
	}
	out, err := run(t, "runtime", "register", "-c", file, "--queue", r.Names.Queue, name)
	if err != nil || !strings.Contains(out, "runtime "+name+" registered") || !strings.Contains(out, "queue "+r.Names.Queue) {
		t.Fatalf("register: %q, %v", out, err)
	}
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
	if err != nil {
		t.Fatalf("executor after register: %v", err)
	}
	defer e.Close()
	f, err := lithops.CallAsync(ctx, e, hello, "register")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(ctx); err != nil || v == "" {
		t.Fatalf("call on the registered runtime: %q, %v", v, err)
	}
}
