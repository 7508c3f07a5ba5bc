package lithops_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
	_ "github.com/lithops-go/lithops/azure" // azure_storage for this package's tests
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/runtimetest"
)

// azuriteConfig returns a config whose storage is a fresh container in
// Azurite, or skips the test when Azurite is not running.
func azuriteConfig(t *testing.T) *config.Config {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:10000", 500*time.Millisecond)
	if err != nil {
		t.Skip("Azurite not running on 127.0.0.1:10000: start it with scripts/azurite.sh start")
	}
	c.Close()
	cfg := config.Default()
	cfg.Localhost.StorageRoot = t.TempDir()
	cfg.Lithops.Storage = "azure_storage"
	cfg.AzureStorage.ConnectionString = runtimetest.AzuriteConn
	cfg.AzureStorage.StorageBucket = fmt.Sprintf("lithops-test-%08x", rand.Uint32())
	return cfg
}

// TestLocalhostWithAzureStorage runs the executor with localhost compute and
// Azure Blob storage (Azurite): jobs, inputs and results live in Azurite.
func TestLocalhostWithAzureStorage(t *testing.T) {
	cfg := azuriteConfig(t)
	ctx := ctxT(t)
	var logs runtimetest.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg), lithops.WithLogger(logger), lithops.WithWorkerOutput(&logs))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	st := e.Storage()
	if st.Backend() != "azure_storage" {
		t.Fatalf("storage backend %s", st.Backend())
	}
	fs, err := lithops.Map(ctx, e, sumPair, pairs)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fs.Results(ctx); err != nil || fmt.Sprint(got) != "[2 4 6 8]" {
		t.Fatalf("map: %v, %v", got, err)
	}
	big, err := lithops.CallAsync(ctx, e, bigResult, 50_000)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := big.Result(ctx); err != nil || len(v) != 50_000 {
		t.Fatalf("big result: %d, %v", len(v), err)
	}
	// The records are in Azurite.
	infos, err := st.List(ctx, st.Bucket(), "lithops.jobs/"+e.ID()+"/")
	if err != nil {
		t.Fatal(err)
	}
	var statuses, results int
	for _, o := range infos {
		k, _ := protocol.ParseKey(o.Key)
		switch k.Kind {
		case protocol.KindStatus:
			statuses++
		case protocol.KindResult:
			results++
		}
	}
	if statuses != 5 || results != 1 {
		t.Fatalf("Azurite holds %d statuses and %d results, want 5 and 1", statuses, results)
	}

	// Lithops' test_storage_handler, reading through StorageFrom(ctx).
	st.PutBytes(ctx, st.Bucket(), "__lithops.test/storage/test0", []byte("test storage handler"))
	st.PutBytes(ctx, st.Bucket(), "__lithops.test/storage/test1", []byte("test storage"))
	in := [][2]string{{"__lithops.test/storage/test0", st.Bucket()}, {"__lithops.test/storage/test1", st.Bucket()}}
	f, err := lithops.MapReduce(ctx, e, wordsOfKey, in, sumInts)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.Result(ctx); err != nil || n != 5 {
		t.Fatalf("storage handler: %d, %v", n, err)
	}

	// Map-reduce over chunks of objects in Azurite.
	_, _, truth := dataset(t, e, "__lithops.test/dataset/")
	chunks, err := e.Partition(ctx, []string{"azure_storage://" + st.Bucket() + "/__lithops.test/dataset/"}, lithops.ChunkSize(640000))
	if err != nil {
		t.Fatal(err)
	}
	wc, err := lithops.MapReduce(ctx, e, countWords, chunks, sumInts)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := wc.Result(ctx); err != nil || n != truth {
		t.Fatalf("word count: %d, %v; want %d", n, err, truth)
	}
	// No secret in anything the jobs wrote, nor in a log line.
	secret := "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq"
	all, err := st.List(ctx, st.Bucket(), "lithops.jobs/"+e.ID()+"/")
	if err != nil || len(all) == 0 {
		t.Fatalf("list: %d, %v", len(all), err)
	}
	for _, o := range all {
		b, _ := st.GetBytes(ctx, st.Bucket(), o.Key)
		if strings.Contains(string(b), secret) || strings.Contains(string(b), "AccountKey") {
			t.Fatalf("%s holds the storage key", o.Key)
		}
	}
	if logs.Len() == 0 || strings.Contains(logs.String(), secret) {
		t.Fatalf("debug logs (%d bytes) are empty or hold the storage key", logs.Len())
	}
	st.DeletePrefix(context.Background(), st.Bucket(), "__lithops.test/")
}
