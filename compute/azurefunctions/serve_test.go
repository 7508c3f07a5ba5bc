package azurefunctions

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/memory"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func get(url string) (int, error) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitReady polls GET / until it answers (at most 5 s).
func waitReady(t *testing.T, base string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if code, err := get(base + "/"); err == nil && code == http.StatusOK {
			return
		}
	}
	t.Fatal("GET / never answered")
}

// The readiness probe is answered before storage is open: a slow storage
// endpoint cannot make the handler miss the platform's start-up limit.
// Invocations wait for the host.
func TestServeAnswersBeforeStorage(t *testing.T) {
	t.Setenv(appsettings.HostStorage, "")
	t.Setenv(appsettings.LithopsConfigJSON, `{"lithops":{"backend":"localhost","storage":"memory"}}`)
	release := make(chan struct{})
	opened := make(chan struct{})
	open := func(ctx context.Context, cfg *config.Config) (*storage.Storage, error) {
		close(opened)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return storage.New(memory.New(), "memory", "lithops"), nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	port := freePort(t)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ServeOptions{Port: port, OpenStorage: open}) }()
	base := "http://127.0.0.1:" + port
	waitReady(t, base)
	<-opened
	// An invocation while storage is still opening waits for it.
	posted := make(chan int, 1)
	go func() {
		resp, err := http.Post(base+"/lithops_handler", "application/json", strings.NewReader(`{"Data":{},"Metadata":{}}`))
		if err != nil {
			posted <- -1
			return
		}
		resp.Body.Close()
		posted <- resp.StatusCode
	}()
	select {
	case code := <-posted:
		t.Fatalf("invocation answered %d before the host was ready", code)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case code := <-posted:
		if code == -1 {
			t.Fatal("invocation failed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("invocation still waiting after the host became ready")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// A host that cannot open its storage stops with the reason (the
// Functions host restarts the handler).
func TestServeFailsWhenStorageFails(t *testing.T) {
	t.Setenv(appsettings.HostStorage, "")
	t.Setenv(appsettings.LithopsConfigJSON, `{"lithops":{"backend":"localhost","storage":"memory"}}`)
	boom := errors.New("storage endpoint unreachable")
	open := func(context.Context, *config.Config) (*storage.Storage, error) { return nil, boom }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Serve(ctx, ServeOptions{Port: freePort(t), OpenStorage: open})
	if !errors.Is(err, boom) {
		t.Fatalf("Serve: %v, want %v", err, boom)
	}
}

// Without settings the host says which are missing.
func TestServeNeedsSettings(t *testing.T) {
	t.Setenv(appsettings.HostStorage, "")
	t.Setenv(appsettings.LithopsConfigJSON, "")
	t.Setenv(appsettings.CustomHandlerPort, "")
	t.Setenv(appsettings.HTTPWorkerPort, "")
	if err := Serve(context.Background(), ServeOptions{OpenStorage: func(context.Context, *config.Config) (*storage.Storage, error) { return nil, nil }}); err == nil || !strings.Contains(err.Error(), appsettings.CustomHandlerPort) {
		t.Fatalf("no port: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Serve(ctx, ServeOptions{Port: freePort(t), OpenStorage: func(context.Context, *config.Config) (*storage.Storage, error) { return nil, nil }})
	if err == nil || !strings.Contains(err.Error(), appsettings.HostStorage) {
		t.Fatalf("no storage settings: %v", err)
	}
}
