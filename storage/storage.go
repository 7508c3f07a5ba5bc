// Package storage is the portable object store that lithops-go keeps
// everything in: job manifests, call inputs, statuses, results, user data and
// runtime metadata. It is also what user code calls, from the client
// (Executor.Storage) and from inside functions (lithops.StorageFrom).
//
// A *Storage wraps one driver (package driver): localfs for a directory tree,
// memory for tests, azblob for Azure Blob. Every driver passes the same
// conformance suite (package storagetest), so code written against Storage
// behaves the same on all of them:
//
//   - Put replaces an object atomically; readers never see a torn object.
//   - Get and GetRange stream; nothing is buffered whole in memory.
//   - List returns every key with the prefix (plain prefix, paging hidden),
//     sorted by key.
//   - A missing bucket or key is an error for which errors.Is(err, ErrNotFound).
//
// Locations are written as URIs "<backend>://<bucket>/<key or prefix>"
// (see ParseURI); a location without a scheme means the executor's storage.
//
// Backends are opened by configuration name through a registry (Register,
// Open) that drivers join from their package's init: package lithops
// registers localhost (localfs) and memory, and azblob registers
// azure_storage when imported (github.com/lithops-go/lithops/azure does).
package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/lithops-go/lithops/storage/driver"
)

// ObjectInfo describes a stored object: its key, size, modification time and
// entity tag.
type ObjectInfo = driver.ObjectInfo

// Errors that storage operations wrap; test with errors.Is.
var (
	// ErrNotFound reports a missing bucket or key (Lithops' StorageNoSuchKeyError).
	ErrNotFound = driver.ErrNotFound
	// ErrExists reports that PutIfAbsent found the key already written.
	ErrExists = driver.ErrExists
	// ErrInvalidRange reports a GetRange offset past the end of the object.
	ErrInvalidRange = driver.ErrInvalidRange
	// ErrInvalidArgument reports a malformed bucket name, key or range.
	ErrInvalidArgument = errors.New("invalid argument")
)

// Storage is a portable object store over one driver. It is safe for
// concurrent use.
type Storage struct {
	d       driver.Driver
	backend string
	bucket  string
}

// New returns a Storage over d. backend names it in URIs and messages
// ("localhost", "azure_storage", "memory"); bucket is the default bucket that
// lithops keeps its own records in.
func New(d driver.Driver, backend, bucket string) *Storage {
	return &Storage{d: d, backend: backend, bucket: bucket}
}

// Backend returns the storage backend name, e.g. "localhost".
func (s *Storage) Backend() string { return s.backend }

// Bucket returns the default bucket.
func (s *Storage) Bucket() string { return s.bucket }

// Driver returns the underlying driver.
func (s *Storage) Driver() driver.Driver { return s.d }

// Close releases the driver.
func (s *Storage) Close() error { return s.d.Close() }

// CreateBucket makes the bucket exist; an existing bucket is not an error.
func (s *Storage) CreateBucket(ctx context.Context, bucket string) error {
	if err := checkBucket(bucket); err != nil {
		return s.wrap("create bucket", bucket, "", err)
	}
	return s.wrap("create bucket", bucket, "", s.d.CreateBucket(ctx, bucket))
}

// Put stores the bytes of r under bucket/key, replacing any object there.
func (s *Storage) Put(ctx context.Context, bucket, key string, r io.Reader) error {
	if err := checkKey(bucket, key); err != nil {
		return s.wrap("put", bucket, key, err)
	}
	return s.wrap("put", bucket, key, s.d.Put(ctx, bucket, key, r, driver.PutOptions{}))
}

// PutIfAbsent stores r under bucket/key only if no object is there; otherwise
// it fails with an error wrapping ErrExists. It is atomic across writers.
func (s *Storage) PutIfAbsent(ctx context.Context, bucket, key string, r io.Reader) error {
	if err := checkKey(bucket, key); err != nil {
		return s.wrap("put", bucket, key, err)
	}
	return s.wrap("put", bucket, key, s.d.Put(ctx, bucket, key, r, driver.PutOptions{IfNotExist: true}))
}

// PutBytes is Put of an in-memory value.
func (s *Storage) PutBytes(ctx context.Context, bucket, key string, b []byte) error {
	return s.Put(ctx, bucket, key, bytes.NewReader(b))
}

// Get opens the whole object for streaming. The caller closes the reader.
func (s *Storage) Get(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	return s.GetRange(ctx, bucket, key, 0, -1)
}

// GetBytes reads a whole object into memory.
func (s *Storage) GetBytes(ctx context.Context, bucket, key string) ([]byte, error) {
	rc, err := s.Get(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, s.wrap("get", bucket, key, err)
	}
	return b, nil
}

// GetRange opens length bytes of the object starting at offset; length < 0
// reads to the end. A range that runs past the end is cut short; an offset
// past the end fails with ErrInvalidRange.
func (s *Storage) GetRange(ctx context.Context, bucket, key string, offset, length int64) (io.ReadCloser, error) {
	if err := checkKey(bucket, key); err != nil {
		return nil, s.wrap("get", bucket, key, err)
	}
	if offset < 0 {
		return nil, s.wrap("get", bucket, key, fmt.Errorf("%w: negative offset %d", ErrInvalidArgument, offset))
	}
	if length == 0 {
		info, err := s.d.Head(ctx, bucket, key)
		if err != nil {
			return nil, s.wrap("get", bucket, key, err)
		}
		if offset > info.Size {
			return nil, s.wrap("get", bucket, key, fmt.Errorf("offset %d past size %d: %w", offset, info.Size, ErrInvalidRange))
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	rc, err := s.d.GetRange(ctx, bucket, key, offset, length)
	if err != nil {
		return nil, s.wrap("get", bucket, key, err)
	}
	return rc, nil
}

// Head describes one object.
func (s *Storage) Head(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	if err := checkKey(bucket, key); err != nil {
		return ObjectInfo{}, s.wrap("head", bucket, key, err)
	}
	info, err := s.d.Head(ctx, bucket, key)
	return info, s.wrap("head", bucket, key, err)
}

// List returns every object whose key starts with prefix, sorted by key.
// An unknown prefix gives an empty list; a missing bucket gives ErrNotFound.
func (s *Storage) List(ctx context.Context, bucket, prefix string) ([]ObjectInfo, error) {
	if err := checkBucket(bucket); err != nil {
		return nil, s.wrap("list", bucket, prefix, err)
	}
	infos, err := s.d.List(ctx, bucket, prefix)
	if err != nil {
		return nil, s.wrap("list", bucket, prefix, err)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	return infos, nil
}

// Delete removes the keys from bucket. Missing keys are not an error.
func (s *Storage) Delete(ctx context.Context, bucket string, keys ...string) error {
	for _, k := range keys {
		if err := checkKey(bucket, k); err != nil {
			return s.wrap("delete", bucket, k, err)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	return s.wrap("delete", bucket, "", s.d.Delete(ctx, bucket, keys))
}

// DeletePrefix removes every object whose key starts with prefix and
// returns how many it removed.
func (s *Storage) DeletePrefix(ctx context.Context, bucket, prefix string) (int, error) {
	infos, err := s.List(ctx, bucket, prefix)
	if err != nil {
		return 0, err
	}
	keys := make([]string, len(infos))
	for i, o := range infos {
		keys[i] = o.Key
	}
	const batch = 256
	for i := 0; i < len(keys); i += batch {
		if err := s.Delete(ctx, bucket, keys[i:min(i+batch, len(keys))]...); err != nil {
			return i, err
		}
	}
	return len(keys), nil
}

// Prepare tells the storage that keys under prefix (which ends with "/")
// will be written soon: a driver that keeps directories (localhost) makes
// the prefix's now, off the writes' way; others do nothing. A prepared
// prefix holds no object: List never shows it.
func (s *Storage) Prepare(ctx context.Context, bucket, prefix string) error {
	p, ok := s.d.(driver.Preparer)
	if !ok {
		return nil
	}
	if err := checkPrefix(bucket, prefix); err != nil {
		return s.wrap("prepare", bucket, prefix, err)
	}
	return s.wrap("prepare", bucket, prefix, p.Prepare(ctx, bucket, prefix))
}

// Unprepare undoes Prepare where nothing was written: it removes what a
// driver that keeps directories has under prefix that holds no object.
// Objects are never touched.
func (s *Storage) Unprepare(ctx context.Context, bucket, prefix string) error {
	p, ok := s.d.(driver.Preparer)
	if !ok {
		return nil
	}
	if err := checkPrefix(bucket, prefix); err != nil {
		return s.wrap("unprepare", bucket, prefix, err)
	}
	return s.wrap("unprepare", bucket, prefix, p.Unprepare(ctx, bucket, prefix))
}

func checkPrefix(bucket, prefix string) error {
	if !strings.HasSuffix(prefix, "/") {
		return fmt.Errorf("%w: prefix %q does not end with \"/\"", ErrInvalidArgument, prefix)
	}
	return checkKey(bucket, prefix)
}

func (s *Storage) wrap(op, bucket, key string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Backend: s.backend, Bucket: bucket, Key: key, Err: err}
}

// Error is a failed storage operation. It names the operation and the
// location, and unwraps to the cause (ErrNotFound, ErrExists, ...).
type Error struct {
	Op      string
	Backend string
	Bucket  string
	Key     string
	Err     error
}

// Error formats the operation, the location and the cause.
func (e *Error) Error() string {
	loc := e.Backend + "://" + e.Bucket
	if e.Key != "" {
		loc += "/" + e.Key
	}
	return fmt.Sprintf("storage: %s %s: %v", e.Op, loc, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func checkBucket(bucket string) error {
	switch {
	case bucket == "":
		return fmt.Errorf("%w: empty bucket name", ErrInvalidArgument)
	case strings.ContainsAny(bucket, "/\\\x00"), bucket == ".", bucket == "..", strings.HasPrefix(bucket, "."):
		return fmt.Errorf("%w: bucket name %q must not contain '/' or '\\' or start with '.'", ErrInvalidArgument, bucket)
	}
	return nil
}

func checkKey(bucket, key string) error {
	if err := checkBucket(bucket); err != nil {
		return err
	}
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidArgument)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key %q is not valid UTF-8", ErrInvalidArgument, key)
	case strings.ContainsRune(key, 0):
		return fmt.Errorf("%w: key %q contains a NUL byte", ErrInvalidArgument, key)
	case len(key) > 1024:
		return fmt.Errorf("%w: key of %d bytes is longer than 1024", ErrInvalidArgument, len(key))
	}
	return nil
}

// URI is a parsed storage location "<backend>://<bucket>/<key>".
type URI struct {
	Backend string // "" when the location had no scheme
	Bucket  string
	Key     string // a key, a prefix (ending in "/"), or "" for the whole bucket
}

// String formats the URI back; without a backend it is "bucket/key".
func (u URI) String() string {
	s := u.Bucket
	if u.Key != "" {
		s += "/" + u.Key
	}
	if u.Backend != "" {
		s = u.Backend + "://" + s
	}
	return s
}

// ParseURI parses "<backend>://<bucket>[/<key or prefix>]" or, without a
// scheme, "<bucket>[/<key or prefix>]".
func ParseURI(s string) (URI, error) {
	var u URI
	rest := s
	if i := strings.Index(s, "://"); i >= 0 {
		u.Backend, rest = s[:i], s[i+3:]
		if u.Backend == "" {
			return URI{}, fmt.Errorf("%w: storage location %q has an empty scheme", ErrInvalidArgument, s)
		}
	}
	u.Bucket, u.Key, _ = strings.Cut(rest, "/")
	if err := checkBucket(u.Bucket); err != nil {
		return URI{}, fmt.Errorf("storage location %q: %w", s, err)
	}
	return u, nil
}
