// Package driver defines the interface that storage drivers implement.
//
// Users do not call drivers directly: they use the portable *storage.Storage,
// which adds argument checking, error context and sorting on top of a driver.
// A driver only has to move bytes. Its contract, checked by the conformance
// suite in package storagetest:
//
//   - Objects are immutable blobs addressed by (bucket, key). A Put replaces
//     the whole object atomically: a concurrent reader sees the old or the new
//     object, never a mix, and a failed Put leaves the old object in place.
//   - Errors for a missing bucket or key wrap ErrNotFound; a PutOptions.IfNotExist
//     write of an existing key wraps ErrExists.
//   - GetRange with length < 0 reads to the end; an offset equal to the object
//     size gives an empty reader; an offset past the end wraps ErrInvalidRange.
//   - List returns every object whose key starts with prefix (plain string
//     prefix, not delimiter based), in any order.
//   - Delete of a missing key is not an error.
//   - Every method is safe for concurrent use.
package driver

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors drivers wrap so the portable layer can classify failures.
var (
	// ErrNotFound reports a missing bucket or object.
	ErrNotFound = errors.New("not found")
	// ErrExists reports that a create-if-absent write found the key taken.
	ErrExists = errors.New("already exists")
	// ErrInvalidRange reports a range that starts past the end of the object.
	ErrInvalidRange = errors.New("invalid range")
)

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key     string    `json:"key"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	ETag    string    `json:"etag,omitempty"`
}

// PutOptions modify a Put.
type PutOptions struct {
	// IfNotExist makes the write fail with ErrExists when the key is present,
	// atomically with respect to other writers.
	IfNotExist bool
}

// Driver is what a storage backend implements.
type Driver interface {
	// CreateBucket makes the bucket exist; an existing bucket is not an error.
	CreateBucket(ctx context.Context, bucket string) error
	// Put stores the bytes read from r under key.
	Put(ctx context.Context, bucket, key string, r io.Reader, opts PutOptions) error
	// GetRange reads length bytes from offset (length < 0: to the end).
	GetRange(ctx context.Context, bucket, key string, offset, length int64) (io.ReadCloser, error)
	// Head describes one object.
	Head(ctx context.Context, bucket, key string) (ObjectInfo, error)
	// List returns the objects whose keys start with prefix.
	List(ctx context.Context, bucket, prefix string) ([]ObjectInfo, error)
	// Delete removes the keys; missing keys are ignored.
	Delete(ctx context.Context, bucket string, keys []string) error
	// Close releases the driver's resources.
	Close() error
}

// Preparer is implemented by drivers that keep directories (localfs), for
// a writer that knows where it will write next (storage.Storage.Prepare).
// Prepare makes the directory of the keys under prefix (which ends with
// "/") ahead of their writes, off their way; preparing it again, or a
// prefix that exists, is no error; a missing bucket wraps ErrNotFound.
// Unprepare removes, under prefix, every directory that holds no object,
// then prefix's own and its parents if left empty (not the bucket); an
// unknown prefix is no error, and objects are never touched. Neither
// makes an object: List shows no prepared prefix, and a prefix need not
// be prepared to be written. Both are safe for concurrent use, also with
// writes under the prefix (a write finds its directory gone and makes it
// again).
type Preparer interface {
	Prepare(ctx context.Context, bucket, prefix string) error
	Unprepare(ctx context.Context, bucket, prefix string) error
}
