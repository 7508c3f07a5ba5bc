// Package azblob is the azure_storage driver: Azure Blob Storage through the
// official SDK (github.com/Azure/azure-sdk-for-go/sdk/storage/azblob). A
// bucket is a container, a key a block blob name. Importing the package
// registers it as the azure_storage backend (storage.Register).
//
// Invariants the driver keeps (beyond package driver's contract):
//
//   - Memory is bounded per call: a Put holds at most one block in the Go
//     heap plus the SDK's upload buffers (Concurrency × BlockSize, mapped
//     outside the heap); a Get streams the HTTP body.
//   - An object of at most BlockSize bytes goes up in a single Put Blob
//     request; a larger one is staged in blocks and committed with one Put
//     Block List. Either way the object changes atomically.
//   - Concurrent Puts of one key: the last commit wins. Azure discards
//     uncommitted blocks when a block list is committed, so a large Put whose
//     blocks were discarded by another writer's commit cannot commit; as the
//     key did change during the Put, the driver reports it as a Put that
//     happened and was at once replaced (which is a valid order of the two
//     writes), not as an error.
//   - PutIfAbsent is an If-None-Match: * condition on the request that
//     creates the blob, so it is atomic on the server.
//   - Transient failures (408, 429, 5xx, connection resets, timeouts) are
//     retried with exponential backoff by the SDK's retry policy; every try
//     has its own timeout, and an interrupted download resumes from where it
//     stopped, pinned to the blob's ETag so it cannot mix two versions. A
//     DNS "no such host" is not transient (a wrong account name or
//     endpoint): the first request fails at once with ErrNoSuchHost, naming
//     the host.
//   - Error messages contain no secrets: the SDK prints no query strings in
//     its response errors, SAS signatures in transport errors are redacted,
//     and this package never prints the configuration.
package azblob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	sdk "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"golang.org/x/sync/errgroup"

	"github.com/lithops-go/lithops/storage/driver"
)

// Defaults of the knobs that Options change.
const (
	// DefaultBlockSize is the size of the blocks a large object is staged
	// in, and the largest object sent in one request.
	DefaultBlockSize = 4 << 20
	// DefaultConcurrency is how many blocks of one Put are in flight.
	DefaultConcurrency = 4
	// deleteConcurrency bounds the parallel requests of one Delete.
	deleteConcurrency = 16
	// downloadResumes is how often a download may reconnect for one Read.
	downloadResumes = 5
)

// DefaultRetry is the retry policy: up to 5 retries, backoff from 0.5 s
// doubling to at most 30 s (with the SDK's jitter), and 60 s per try. A try
// of a download covers the body too, but an interrupted download resumes
// from its offset, so a long download is not limited to one try's time.
var DefaultRetry = policy.RetryOptions{
	MaxRetries:    5,
	TryTimeout:    60 * time.Second,
	RetryDelay:    500 * time.Millisecond,
	MaxRetryDelay: 30 * time.Second,
}

// Option adjusts a Driver.
type Option func(*options)

type options struct {
	cred        azcore.TokenCredential
	blockSize   int64
	concurrency int
	retry       policy.RetryOptions
	transport   policy.Transporter
	pageSize    int32
	apiVersion  string
}

// WithCredential authenticates with cred (Entra ID) instead of the
// credential Config.EntraCredential selects, when the Config selects Entra
// ID.
func WithCredential(cred azcore.TokenCredential) Option {
	return func(o *options) { o.cred = cred }
}

// WithBlockSize sets the upload block size (default DefaultBlockSize; Azure
// allows up to 4000 MiB, and 50,000 blocks per blob).
func WithBlockSize(n int64) Option { return func(o *options) { o.blockSize = n } }

// WithConcurrency sets how many blocks of one Put are uploaded in parallel
// (default DefaultConcurrency).
func WithConcurrency(n int) Option { return func(o *options) { o.concurrency = n } }

// WithRetry replaces DefaultRetry.
func WithRetry(r policy.RetryOptions) Option { return func(o *options) { o.retry = r } }

// WithTransport sends the HTTP requests through t (an *http.Client, or a
// test double) instead of the SDK's shared client.
func WithTransport(t policy.Transporter) Option { return func(o *options) { o.transport = t } }

// WithListPageSize sets how many keys one List request asks for (the
// service's maximum and default is 5000).
func WithListPageSize(n int32) Option { return func(o *options) { o.pageSize = n } }

// WithAPIVersion forces the x-ms-version header, for emulators that refuse
// the SDK's newer version and cannot be started with --skipApiVersionCheck.
func WithAPIVersion(v string) Option { return func(o *options) { o.apiVersion = v } }

// Driver is the Azure Blob storage driver. It is safe for concurrent use.
type Driver struct {
	client      *sdk.Client
	auth        AuthMethod
	serviceURL  string
	blockSize   int64
	concurrency int
	pageSize    int32
	bufs        sync.Pool // *[]byte of blockSize, for the first block of a Put
}

// smallBufs hold the first bytes of every Put; objects that fit are sent
// from there without touching a block-sized buffer.
var smallBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// New returns a driver for the account cfg describes. It checks the
// configuration but does not contact the service; ctx is reserved for
// credential set-up that may need it.
func New(ctx context.Context, cfg Config, opts ...Option) (*Driver, error) {
	o := options{blockSize: DefaultBlockSize, concurrency: DefaultConcurrency, retry: DefaultRetry}
	for _, opt := range opts {
		opt(&o)
	}
	if o.blockSize < 1 || o.blockSize > blockblob.MaxStageBlockBytes {
		return nil, fmt.Errorf("azure_storage: block size %d out of range 1..%d", o.blockSize, int64(blockblob.MaxStageBlockBytes))
	}
	if o.concurrency < 1 {
		return nil, fmt.Errorf("azure_storage: upload concurrency %d must be at least 1", o.concurrency)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	serviceURL, _ := cfg.ServiceURL() // checked by Validate
	copts := &sdk.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: o.retry, Transport: o.transport,
		PerRetryPolicies: []policy.Policy{FailFastDNS(blobSettings)}}}
	if o.apiVersion != "" {
		copts.PerCallPolicies = append(copts.PerCallPolicies, apiVersionPolicy(o.apiVersion))
	}
	d := &Driver{
		auth:        cfg.Auth(),
		serviceURL:  serviceURL,
		blockSize:   o.blockSize,
		concurrency: o.concurrency,
		pageSize:    o.pageSize,
	}
	d.bufs.New = func() any { b := make([]byte, d.blockSize); return &b }
	var err error
	switch d.auth {
	case AuthConnectionString:
		d.client, err = sdk.NewClientFromConnectionString(cfg.connectionString(), copts)
	case AuthSharedKey:
		var cred *sdk.SharedKeyCredential
		cred, err = sdk.NewSharedKeyCredential(cfg.StorageAccountName, cfg.StorageAccountKey)
		if err != nil {
			// The SDK's message would quote nothing secret, but be sure.
			return nil, errors.New("azure_storage: storage_account_key is not a valid base64 account key")
		}
		d.client, err = sdk.NewClientWithSharedKeyCredential(serviceURL, cred, copts)
	case AuthSAS:
		d.client, err = sdk.NewClientWithNoCredential(serviceURL+"?"+strings.TrimPrefix(cfg.SASToken, "?"), copts)
	case AuthEntraID:
		cred := o.cred
		if cred == nil {
			if cred, err = cfg.EntraCredential(); err != nil {
				return nil, err
			}
		}
		d.client, err = sdk.NewClient(serviceURL, cred, copts)
	}
	if err != nil {
		return nil, fmt.Errorf("azure_storage: %s client: %w", d.auth, err)
	}
	return d, nil
}

// Auth returns how the driver authenticates.
func (d *Driver) Auth() AuthMethod { return d.auth }

// ServiceURL returns the blob service URL, without credentials.
func (d *Driver) ServiceURL() string { return d.serviceURL }

// Client returns the SDK client, for what the driver interface does not
// cover (e.g. deleting containers).
func (d *Driver) Client() *sdk.Client { return d.client }

func (d *Driver) container(bucket string) *container.Client {
	return d.client.ServiceClient().NewContainerClient(bucket)
}

// CreateBucket implements driver.Driver.
func (d *Driver) CreateBucket(ctx context.Context, bucket string) error {
	_, err := d.container(bucket).Create(ctx, nil)
	if err == nil || bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return nil
	}
	return classify(err)
}

// Put implements driver.Driver.
func (d *Driver) Put(ctx context.Context, bucket, key string, r io.Reader, opts driver.PutOptions) error {
	bb := d.container(bucket).NewBlockBlobClient(key)
	var cond *blob.AccessConditions
	if opts.IfNotExist {
		cond = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)}}
	}
	// Read up to one block to learn whether the object fits in one request.
	// Most objects are small: try a small buffer before taking a block.
	sp := smallBufs.Get().(*[]byte)
	defer smallBufs.Put(sp)
	buf := *sp
	n, err := io.ReadFull(r, buf)
	if err == nil && d.blockSize > int64(len(buf)) {
		bp := d.bufs.Get().(*[]byte)
		defer d.bufs.Put(bp)
		copy(*bp, buf)
		buf = *bp
		var m int
		m, err = io.ReadFull(r, buf[n:])
		n += m
	}
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		// The whole object is in buf: one request, retried from the buffer.
		_, err = bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(buf[:n])), &blockblob.UploadOptions{AccessConditions: cond})
	case err != nil:
		return fmt.Errorf("read object data: %w", err)
	default:
		// Larger than one block: stream it in blocks, the first from buf.
		before, herr := d.Head(ctx, bucket, key)
		if herr != nil && !errors.Is(herr, driver.ErrNotFound) {
			return herr
		}
		_, err = bb.UploadStream(ctx, io.MultiReader(bytes.NewReader(buf[:n]), r), &blockblob.UploadStreamOptions{
			BlockSize:        d.blockSize,
			Concurrency:      d.concurrency,
			AccessConditions: cond,
		})
		if bloberror.HasCode(err, bloberror.InvalidBlockList) {
			err = d.lostCommitRace(ctx, bucket, key, before.ETag, opts.IfNotExist, err)
		}
	}
	switch {
	case err == nil:
		return nil
	case opts.IfNotExist && bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet):
		return &codeError{sentinel: driver.ErrExists, err: err}
	}
	return classify(err)
}

// lostCommitRace decides what a failed block list commit means. Committing
// a block list discards every uncommitted block of the blob, so when another
// writer commits while this Put stages its blocks, this Put's commit fails
// with InvalidBlockList. If the blob did change since the Put began, the Put
// overlapped a newer write, and "this Put, then immediately the other one"
// is a valid order of the two: the Put has succeeded and been replaced
// (or, for IfNotExist, found the key taken). Otherwise the error stands.
func (d *Driver) lostCommitRace(ctx context.Context, bucket, key, etagBefore string, ifNotExist bool, err error) error {
	now, herr := d.Head(ctx, bucket, key)
	if herr != nil || now.ETag == etagBefore {
		return err
	}
	if ifNotExist {
		return &codeError{sentinel: driver.ErrExists, err: err}
	}
	return nil
}

// GetRange implements driver.Driver.
func (d *Driver) GetRange(ctx context.Context, bucket, key string, offset, length int64) (io.ReadCloser, error) {
	if length == 0 {
		return d.emptyRange(ctx, bucket, key, offset)
	}
	if length > 0 && length > math.MaxInt64-offset {
		length = -1 // to the end; also keeps offset+length from overflowing
	}
	var rng blob.HTTPRange // zero: the whole blob, without a Range header
	if offset > 0 || length > 0 {
		rng = blob.HTTPRange{Offset: offset, Count: max(length, 0)} // Count 0: to the end
	}
	bc := d.container(bucket).NewBlobClient(key)
	resp, err := bc.DownloadStream(ctx, &blob.DownloadStreamOptions{Range: rng})
	if err != nil {
		if bloberror.HasCode(err, bloberror.InvalidRange) {
			// Azure answers 416 for a range starting at the size, which the
			// contract reads as empty; only the size tells the two apart.
			return d.emptyRange(ctx, bucket, key, offset)
		}
		return nil, classify(err)
	}
	return classifyingReader{resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: downloadResumes})}, nil
}

// classifyingReader passes read errors (a failed resume, say) through
// classify, like the errors of every other call.
type classifyingReader struct{ io.ReadCloser }

func (r classifyingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = classify(err)
	}
	return n, err
}

// emptyRange answers a read that yields no bytes: empty when offset is
// within or at the end of the object, ErrInvalidRange past it.
func (d *Driver) emptyRange(ctx context.Context, bucket, key string, offset int64) (io.ReadCloser, error) {
	info, err := d.Head(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	if offset > info.Size {
		return nil, fmt.Errorf("offset %d past size %d: %w", offset, info.Size, driver.ErrInvalidRange)
	}
	return io.NopCloser(strings.NewReader("")), nil
}

// Head implements driver.Driver.
func (d *Driver) Head(ctx context.Context, bucket, key string) (driver.ObjectInfo, error) {
	p, err := d.container(bucket).NewBlobClient(key).GetProperties(ctx, nil)
	if err != nil {
		return driver.ObjectInfo{}, classify(err)
	}
	return driver.ObjectInfo{
		Key:     key,
		Size:    deref(p.ContentLength),
		ModTime: deref(p.LastModified),
		ETag:    string(deref(p.ETag)),
	}, nil
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context, bucket, prefix string) ([]driver.ObjectInfo, error) {
	lo := &container.ListBlobsFlatOptions{}
	if prefix != "" {
		lo.Prefix = &prefix
	}
	if d.pageSize > 0 {
		lo.MaxResults = &d.pageSize
	}
	pager := d.container(bucket).NewListBlobsFlatPager(lo)
	var out []driver.ObjectInfo
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, classify(err)
		}
		for _, it := range page.Segment.BlobItems {
			if it == nil || it.Name == nil {
				continue
			}
			info := driver.ObjectInfo{Key: *it.Name}
			if p := it.Properties; p != nil {
				info.Size = deref(p.ContentLength)
				info.ModTime = deref(p.LastModified)
				info.ETag = string(deref(p.ETag))
			}
			out = append(out, info)
		}
	}
	return out, nil
}

// Delete implements driver.Driver. Keys are deleted in parallel; a missing
// key or container is not an error.
func (d *Driver) Delete(ctx context.Context, bucket string, keys []string) error {
	cc := d.container(bucket)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteConcurrency)
	for _, k := range keys {
		g.Go(func() error {
			_, err := cc.NewBlobClient(k).Delete(ctx, &blob.DeleteOptions{
				DeleteSnapshots: to.Ptr(blob.DeleteSnapshotsOptionTypeInclude),
			})
			if err == nil || bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
				return nil
			}
			return fmt.Errorf("delete %q: %w", k, classify(err))
		})
	}
	return g.Wait()
}

// Close implements driver.Driver. The HTTP connections are shared and
// idle ones close by themselves.
func (d *Driver) Close() error { return nil }

var _ driver.Driver = (*Driver)(nil)

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// codeError is an Azure error classified for the portable layer: it
// matches its sentinel (driver.ErrNotFound, …) with errors.Is and the SDK's
// *azcore.ResponseError with errors.As, and prints in one line.
type codeError struct {
	sentinel error // nil: unclassified
	err      error
}

func (e *codeError) Error() string {
	var re *azcore.ResponseError
	if !errors.As(e.err, &re) {
		return e.err.Error()
	}
	// The status line of Azure Storage carries its message.
	msg := fmt.Sprintf("azure storage: HTTP %d %s", re.StatusCode, re.ErrorCode)
	if re.RawResponse != nil {
		if _, text, ok := strings.Cut(re.RawResponse.Status, " "); ok && text != "" && text != http.StatusText(re.StatusCode) {
			msg += ": " + text
		}
	}
	if e.sentinel != nil {
		return e.sentinel.Error() + " (" + msg + ")"
	}
	return msg
}

func (e *codeError) Unwrap() []error {
	if e.sentinel == nil {
		return []error{e.err}
	}
	return []error{e.sentinel, e.err}
}

// classify maps an SDK error to the driver's sentinels, shortens the SDK's
// multi-line message, and hides SAS signatures.
func classify(err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return redactURL(err) // transport or context error: already one line
	}
	switch {
	case bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound, bloberror.ResourceNotFound),
		re.StatusCode == http.StatusNotFound:
		return &codeError{sentinel: driver.ErrNotFound, err: err}
	}
	return &codeError{err: err}
}

// redactURL hides the signature of a SAS in the URL that net/http quotes
// in its transport errors ("Get \"https://…?sig=…\": dial tcp …").
func redactURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	msg := err.Error()
	for _, part := range strings.Split(ue.URL[strings.Index(ue.URL, "?")+1:], "&") {
		if sig, ok := strings.CutPrefix(part, "sig="); ok && sig != "" {
			msg = strings.ReplaceAll(msg, sig, "REDACTED")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// redactedError is err with a message that names no secret.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// apiVersionPolicy overrides x-ms-version. The generated code sets the
// header under its lower-case name, so Header.Set would add a second one.
type apiVersionPolicy string

func (v apiVersionPolicy) Do(req *policy.Request) (*http.Response, error) {
	req.Raw().Header["x-ms-version"] = []string{string(v)}
	return req.Next()
}
