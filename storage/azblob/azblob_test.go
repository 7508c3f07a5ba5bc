package azblob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	sdk "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/azblob"
	"github.com/lithops-go/lithops/storage/storagetest"
)

const azuriteAddr = "127.0.0.1:10000"

// needAzurite skips the test unless Azurite's blob service answers.
func needAzurite(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", azuriteAddr, 300*time.Millisecond)
	if err != nil {
		t.Skip("Azurite not running on 127.0.0.1:10000: start it with scripts/azurite.sh start")
	}
	c.Close()
}

var azuriteConfig = azblob.Config{
	StorageAccountName: azblob.DevAccountName,
	StorageAccountKey:  azblob.DevAccountKey,
	Endpoint:           azblob.AzuriteBlobEndpoint,
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// freshContainer returns a new container name, deleted when t ends.
func freshContainer(t *testing.T, d *azblob.Driver) string {
	t.Helper()
	name := "lithops-test-" + randomHex(8)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := d.Client().DeleteContainer(ctx, name, nil); err != nil {
			t.Logf("cleanup: delete container %s: %v", name, err)
		}
	})
	return name
}

func newAzurite(t *testing.T, cfg azblob.Config, opts ...azblob.Option) *azblob.Driver {
	t.Helper()
	d, err := azblob.New(t.Context(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) {
	needAzurite(t)
	// Small list pages so that List's paging is exercised.
	d := newAzurite(t, azuriteConfig, azblob.WithListPageSize(100))
	bucket := freshContainer(t, d)
	storagetest.RunConformance(t, func(t *testing.T) *storage.Storage {
		return storage.New(d, "azure_storage", bucket)
	})
}

// Every way of authenticating works against Azurite.
func TestAuthMethods(t *testing.T) {
	needAzurite(t)
	admin := newAzurite(t, azuriteConfig)
	bucket := freshContainer(t, admin)
	if err := admin.CreateBucket(t.Context(), bucket); err != nil {
		t.Fatal(err)
	}
	cred, err := sdk.NewSharedKeyCredential(azblob.DevAccountName, azblob.DevAccountKey)
	if err != nil {
		t.Fatal(err)
	}
	qp, err := sas.AccountSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		ExpiryTime:    time.Now().Add(time.Hour).UTC(),
		Permissions:   to.Ptr(sas.AccountPermissions{Read: true, Write: true, Delete: true, List: true, Create: true, Add: true}).String(),
		ResourceTypes: to.Ptr(sas.AccountResourceTypes{Service: true, Container: true, Object: true}).String(),
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  azblob.Config
		want azblob.AuthMethod
	}{
		{"connection string", azblob.Config{ConnectionString: azblob.AzuriteConnectionString}, azblob.AuthConnectionString},
		{"development shorthand", azblob.Config{ConnectionString: "UseDevelopmentStorage=true"}, azblob.AuthConnectionString},
		{"shared key", azuriteConfig, azblob.AuthSharedKey},
		{"sas", azblob.Config{Endpoint: azblob.AzuriteBlobEndpoint, SASToken: "?" + qp.Encode()}, azblob.AuthSAS},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			d := newAzurite(t, c.cfg)
			if d.Auth() != c.want {
				t.Errorf("Auth() = %s, want %s", d.Auth(), c.want)
			}
			s := storage.New(d, "azure_storage", bucket)
			key := "auth/" + strings.ReplaceAll(c.name, " ", "-")
			if err := s.PutBytes(ctx, bucket, key, []byte(c.name)); err != nil {
				t.Fatal(err)
			}
			if got, err := s.GetBytes(ctx, bucket, key); err != nil || string(got) != c.name {
				t.Errorf("Get = %q, %v", got, err)
			}
			if infos, err := s.List(ctx, bucket, key); err != nil || len(infos) != 1 {
				t.Errorf("List = %v, %v", infos, err)
			}
			if err := s.Delete(ctx, bucket, key); err != nil {
				t.Error(err)
			}
		})
	}
	// A wrong key is refused with a one-line error that names the cause.
	bad := azuriteConfig
	bad.StorageAccountKey = "d3Jvbmcga2V5"
	_, err = storage.New(newAzurite(t, bad), "azure_storage", bucket).Head(t.Context(), bucket, "x")
	if err == nil || errors.Is(err, storage.ErrNotFound) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "403") {
		t.Errorf("wrong key: err = %v; want a one-line 403 error", err)
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Errorf("wrong key: %v does not unwrap to *azcore.ResponseError", err)
	}
}

// flaky fails requests before they reach Azurite and cuts download bodies
// short, as a bad network or a throttling service would.
type flaky struct {
	next      policy.Transporter
	calls     atomic.Int64
	failEvery int64 // every n-th request fails (with a 503, a 429 or a reset)
	cutBodies atomic.Int64
}

func (f *flaky) Do(req *http.Request) (*http.Response, error) {
	n := f.calls.Add(1)
	if f.failEvery > 0 && n%f.failEvery == 0 {
		switch (n / f.failEvery) % 3 {
		case 0:
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
		case 1:
			return status(req, http.StatusServiceUnavailable, "ServerBusy"), nil
		default:
			return status(req, http.StatusTooManyRequests, "ServerBusy"), nil
		}
	}
	resp, err := f.next.Do(req)
	if err == nil && req.Method == http.MethodGet && resp.ContentLength > 1<<20 {
		// Drop the connection halfway through the body.
		f.cutBodies.Add(1)
		resp.Body = &cutBody{ReadCloser: resp.Body, left: resp.ContentLength / 2}
	}
	return resp, err
}

func status(req *http.Request, code int, errCode string) *http.Response {
	h := http.Header{}
	h.Set("x-ms-error-code", errCode)
	return &http.Response{
		StatusCode: code, Status: fmt.Sprintf("%d %s", code, http.StatusText(code)),
		Header: h, Body: io.NopCloser(strings.NewReader("")), Request: req,
	}
}

type cutBody struct {
	io.ReadCloser
	left int64
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

var fastRetry = policy.RetryOptions{MaxRetries: 5, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond, TryTimeout: 30 * time.Second}

// Throttling, server errors, resets and broken downloads are retried, and
// the data still arrives intact.
func TestRetriesAgainstAzurite(t *testing.T) {
	needAzurite(t)
	ctx := t.Context()
	tr := &flaky{next: http.DefaultClient, failEvery: 3}
	d := newAzurite(t, azuriteConfig, azblob.WithTransport(tr), azblob.WithRetry(fastRetry), azblob.WithBlockSize(1<<20))
	bucket := freshContainer(t, d)
	s := storage.New(d, "azure_storage", bucket)
	if err := s.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 5<<16) // 5 MiB: several blocks
	for i := range 3 {
		key := fmt.Sprintf("obj-%d", i)
		if err := s.PutBytes(ctx, bucket, key, data); err != nil {
			t.Fatalf("Put through a flaky network: %v", err)
		}
		got, err := s.GetBytes(ctx, bucket, key)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Get through a flaky network: %d bytes, %v", len(got), err)
		}
		if _, err := s.Head(ctx, bucket, key); err != nil {
			t.Fatalf("Head: %v", err)
		}
	}
	if tr.cutBodies.Load() == 0 {
		t.Error("no download was interrupted; the test did not test resuming")
	}
	t.Logf("%d requests, every 3rd failed; %d downloads cut halfway and resumed", tr.calls.Load(), tr.cutBodies.Load())
}

// A download that outlives the per-try timeout resumes instead of failing.
func TestSlowReaderOutlivesTryTimeout(t *testing.T) {
	needAzurite(t)
	ctx := t.Context()
	retry := fastRetry
	retry.TryTimeout = 300 * time.Millisecond
	d := newAzurite(t, azuriteConfig, azblob.WithRetry(retry))
	bucket := freshContainer(t, d)
	s := storage.New(d, "azure_storage", bucket)
	if err := s.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("slow reader "), 1<<18) // 3 MiB
	if err := s.PutBytes(ctx, bucket, "slow", data); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(ctx, bucket, "slow")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got bytes.Buffer
	buf := make([]byte, 256<<10)
	start := time.Now()
	for {
		n, err := rc.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes and %v: %v", got.Len(), time.Since(start), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Errorf("slow read returned %d bytes, want %d intact", got.Len(), len(data))
	}
	if el := time.Since(start); el < 3*retry.TryTimeout {
		t.Logf("read took only %v; the per-try timeout was not reached", el)
	}
}

// Concurrent writers of objects larger than a block: Azure fails the
// commit of a writer whose staged blocks another writer's commit discarded;
// the driver reports that writer as overwritten, not failed.
func TestConcurrentMultiBlockWriters(t *testing.T) {
	needAzurite(t)
	ctx := t.Context()
	d := newAzurite(t, azuriteConfig, azblob.WithBlockSize(256<<10))
	bucket := freshContainer(t, d)
	s := storage.New(d, "azure_storage", bucket)
	if err := s.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	const writers = 6
	payload := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 1<<20+i) }
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() { errs[i] = s.PutBytes(ctx, bucket, "k", payload(i)) })
	}
	wg.Wait()
	ok := map[int]bool{}
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
		ok[i] = true
	}
	got, err := s.GetBytes(ctx, bucket, "k")
	if err != nil {
		t.Fatal(err)
	}
	w := len(got) - 1<<20
	if w < 0 || w >= writers || !ok[w] || !bytes.Equal(got, payload(w)) {
		t.Errorf("final object (%d bytes) is not the payload of a successful writer", len(got))
	}
}

func TestAPIVersionOverride(t *testing.T) {
	needAzurite(t)
	d := newAzurite(t, azuriteConfig, azblob.WithAPIVersion("2025-11-05"))
	bucket := freshContainer(t, d)
	s := storage.New(d, "azure_storage", bucket)
	if err := s.CreateBucket(t.Context(), bucket); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBytes(t.Context(), bucket, "v", []byte("ok")); err != nil {
		t.Fatal(err)
	}
}

// A host that does not exist (a wrong account name) fails the first request
// at once, naming the host and what to check, instead of after minutes of
// retries. The .invalid TLD never resolves (RFC 6761).
func TestNoSuchHostFailsFast(t *testing.T) {
	const host = "nosuchaccount.blob.core.invalid"
	d, err := azblob.New(context.Background(), azblob.Config{
		StorageAccountName: "nosuchaccount", StorageAccountKey: "a2V5", Endpoint: "https://" + host,
	})
	if err != nil {
		t.Fatal(err)
	}
	st := storage.New(d, "azure_storage", "lithops")
	for name, op := range map[string]func(ctx context.Context) error{
		"create bucket": func(ctx context.Context) error { return st.CreateBucket(ctx, "lithops") },
		"get":           func(ctx context.Context) error { _, err := st.GetBytes(ctx, "lithops", "k"); return err },
		"put":           func(ctx context.Context) error { return st.PutBytes(ctx, "lithops", "k", []byte("v")) },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		err := op(ctx)
		cancel()
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s: took %v", name, took)
		}
		if !errors.Is(err, azblob.ErrNoSuchHost) || !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), "storage_account_name") {
			t.Errorf("%s: %v, want a no such host error naming %s and storage_account_name", name, err, host)
		}
	}
	if err := azblob.CheckHost(context.Background(), "https://"+host+"/", "queue_endpoint"); !errors.Is(err, azblob.ErrNoSuchHost) || !strings.Contains(err.Error(), host) {
		t.Errorf("CheckHost: %v", err)
	}
	if err := azblob.CheckHost(context.Background(), "http://127.0.0.1:10001/devstoreaccount1", "queue_endpoint"); err != nil {
		t.Errorf("CheckHost of an IP address: %v", err)
	}
}
