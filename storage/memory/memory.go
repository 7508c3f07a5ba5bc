// Package memory is an in-process storage driver for tests and for programs
// that never leave one process. Objects live in maps guarded by a mutex; a
// Put buffers the whole object, then swaps it in, so readers never see a torn
// object.
package memory

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/lithops-go/lithops/storage/driver"
)

type object struct {
	data    []byte
	modTime time.Time
	etag    string
}

// Driver is an in-memory storage driver. Buckets are created on first Put.
type Driver struct {
	mu      sync.RWMutex
	buckets map[string]map[string]*object
}

// New returns an empty in-memory driver.
func New() *Driver { return &Driver{buckets: map[string]map[string]*object{}} }

// CreateBucket implements driver.Driver.
func (d *Driver) CreateBucket(ctx context.Context, bucket string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.buckets[bucket] == nil {
		d.buckets[bucket] = map[string]*object{}
	}
	return nil
}

// Put implements driver.Driver.
func (d *Driver) Put(ctx context.Context, bucket, key string, r io.Reader, opts driver.PutOptions) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	sum := md5.Sum(data)
	o := &object{data: data, modTime: time.Now(), etag: `"` + hex.EncodeToString(sum[:]) + `"`}
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.buckets[bucket]
	if b == nil {
		b = map[string]*object{}
		d.buckets[bucket] = b
	}
	if opts.IfNotExist && b[key] != nil {
		return driver.ErrExists
	}
	b[key] = o
	return nil
}

func (d *Driver) get(bucket, key string) (*object, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	b := d.buckets[bucket]
	if b == nil {
		return nil, fmt.Errorf("bucket %q: %w", bucket, driver.ErrNotFound)
	}
	o := b[key]
	if o == nil {
		return nil, driver.ErrNotFound
	}
	return o, nil
}

// GetRange implements driver.Driver.
func (d *Driver) GetRange(ctx context.Context, bucket, key string, offset, length int64) (io.ReadCloser, error) {
	o, err := d.get(bucket, key)
	if err != nil {
		return nil, err
	}
	size := int64(len(o.data))
	if offset > size {
		return nil, fmt.Errorf("offset %d past size %d: %w", offset, size, driver.ErrInvalidRange)
	}
	end := size
	if length >= 0 && length < size-offset { // not offset+length: it may overflow
		end = offset + length
	}
	return io.NopCloser(bytes.NewReader(o.data[offset:end])), nil
}

// Head implements driver.Driver.
func (d *Driver) Head(ctx context.Context, bucket, key string) (driver.ObjectInfo, error) {
	o, err := d.get(bucket, key)
	if err != nil {
		return driver.ObjectInfo{}, err
	}
	return driver.ObjectInfo{Key: key, Size: int64(len(o.data)), ModTime: o.modTime, ETag: o.etag}, nil
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context, bucket, prefix string) ([]driver.ObjectInfo, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	b := d.buckets[bucket]
	if b == nil {
		return nil, fmt.Errorf("bucket %q: %w", bucket, driver.ErrNotFound)
	}
	var out []driver.ObjectInfo
	for k, o := range b {
		if strings.HasPrefix(k, prefix) {
			out = append(out, driver.ObjectInfo{Key: k, Size: int64(len(o.data)), ModTime: o.modTime, ETag: o.etag})
		}
	}
	return out, nil
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, bucket string, keys []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.buckets[bucket]
	for _, k := range keys {
		delete(b, k)
	}
	return nil
}

// Close implements driver.Driver.
func (d *Driver) Close() error { return nil }
