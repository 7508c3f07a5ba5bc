// Package storagetest is the conformance suite that every storage driver
// passes: RunConformance checks, through the portable *storage.Storage, the
// contract written in package driver and package storage (atomic replacing
// Puts, streaming with bounded memory, ranges, plain-prefix listing, the
// ErrNotFound / ErrExists / ErrInvalidRange classification, ...).
//
// The suite is safe to point at a shared service such as Azurite: it creates
// the storage's default bucket if needed, writes every object under a key
// prefix unique to the run and the subtest, deletes what it wrote, and lists
// only its own prefixes (and one that cannot exist). Subtests run one after
// another, never in parallel, because one of them measures heap growth.
package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/driver"
)

// Sizes of the large-object cases.
const (
	// BigObjectSize is the object streamed both ways by the bounded-memory
	// case. Skipped with -short.
	BigObjectSize = 100 << 20
	// HeapBudget is how much the Go heap may grow while BigObjectSize bytes
	// are streamed in or out: well under the object size, so a driver that
	// buffers whole objects fails.
	HeapBudget = 48 << 20
	// multiBlockSize is larger than the block or part size of the cloud
	// drivers (4 MiB for azblob), so such objects are uploaded in pieces.
	multiBlockSize = 9<<20 + 3
)

// Option adjusts the suite to a driver.
type Option func(*config)

type config struct {
	heapBacked bool
}

// HeapBacked tells the suite that the driver keeps objects in the Go heap
// (the memory driver): storing BigObjectSize bytes then necessarily grows
// the heap by that much, so only reads are held to HeapBudget.
func HeapBacked() Option { return func(c *config) { c.heapBacked = true } }

// RunConformance runs the driver conformance suite as subtests of t.
//
// newStorage is called once per subtest and returns the storage under test;
// it registers its own cleanup (t.Cleanup) for whatever it opens. The suite
// creates s.Bucket() with CreateBucket and works inside it.
func RunConformance(t *testing.T, newStorage func(t *testing.T) *storage.Storage, opts ...Option) {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	h := &harness{newStorage: newStorage, cfg: cfg, run: randomHex(6)}
	tests := []struct {
		name string
		fn   func(*testing.T, *fixture)
	}{
		{"PutGet", testPutGet},
		{"Overwrite", testOverwrite},
		{"GetStream", testGetStream},
		{"GetRange", testGetRange},
		{"GetRangeMultiBlock", testGetRangeMultiBlock},
		{"Head", testHead},
		{"ListPrefix", testListPrefix},
		{"ListSizes", testListSizes},
		{"ListMany", testListMany},
		{"Delete", testDelete},
		{"NotFound", testNotFound},
		{"MissingBucket", testMissingBucket},
		{"EmptyObject", testEmptyObject},
		{"PutIfAbsent", testPutIfAbsent},
		{"PutIfAbsentRace", testPutIfAbsentRace},
		{"FailedPutKeepsOld", testFailedPutKeepsOld},
		{"KeyNames", testKeyNames},
		{"ConcurrentWriters", testConcurrentWriters},
		{"InvalidArguments", testInvalidArguments},
		{"BigObject", h.testBigObject},
		{"Prepare", testPrepare},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h.setup(t)) })
	}
}

type harness struct {
	newStorage func(t *testing.T) *storage.Storage
	cfg        config
	run        string // unique per RunConformance call
}

// fixture is what a subtest works with: a storage, its bucket and a key
// prefix that no other run or subtest uses.
type fixture struct {
	s      *storage.Storage
	ctx    context.Context
	bucket string
	prefix string
}

func (h *harness) setup(t *testing.T) *fixture {
	t.Helper()
	s := h.newStorage(t)
	f := &fixture{
		s:      s,
		ctx:    t.Context(),
		bucket: s.Bucket(),
		prefix: "storagetest-" + h.run + "/" + strings.ReplaceAll(t.Name(), "/", "_") + "/",
	}
	if err := s.CreateBucket(f.ctx, f.bucket); err != nil {
		t.Fatalf("CreateBucket(%q): %v", f.bucket, err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := s.DeletePrefix(ctx, f.bucket, f.prefix); err != nil {
			t.Errorf("cleanup: DeletePrefix(%q): %v", f.prefix, err)
		}
	})
	return f
}

func (f *fixture) key(name string) string { return f.prefix + name }

func (f *fixture) put(t *testing.T, key string, data []byte) {
	t.Helper()
	if err := f.s.PutBytes(f.ctx, f.bucket, key, data); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

func (f *fixture) get(t *testing.T, key string) []byte {
	t.Helper()
	b, err := f.s.GetBytes(f.ctx, f.bucket, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return b
}

func (f *fixture) getRange(key string, off, n int64) ([]byte, error) {
	rc, err := f.s.GetRange(f.ctx, f.bucket, key, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (f *fixture) list(t *testing.T, prefix string) []storage.ObjectInfo {
	t.Helper()
	infos, err := f.s.List(f.ctx, f.bucket, prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return infos
}

// keysOf returns the keys of infos with f.prefix removed.
func (f *fixture) keysOf(infos []storage.ObjectInfo) []string {
	keys := make([]string, len(infos))
	for i, o := range infos {
		keys[i] = strings.TrimPrefix(o.Key, f.prefix)
	}
	return keys
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}

// short describes a payload for failure messages without printing it whole.
func short(b []byte) string {
	if len(b) <= 32 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%d bytes %q… sha256 %x", len(b), b[:16], sha256.Sum256(b))
}

func testPutGet(t *testing.T, f *fixture) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	cases := []struct {
		name string
		data []byte
	}{
		{"text", []byte("hello, lithops")},
		{"one byte", []byte{0}},
		{"every byte value", all},
		{"1MiB", pattern(1, 0, 1<<20)},
		{"multi block", pattern(2, 0, multiBlockSize)},
	}
	for i, c := range cases {
		key := f.key(fmt.Sprintf("obj-%d", i))
		f.put(t, key, c.data)
		if got := f.get(t, key); !bytes.Equal(got, c.data) {
			t.Errorf("%s: Get = %s, want %s", c.name, short(got), short(c.data))
		}
	}
}

func testOverwrite(t *testing.T, f *fixture) {
	key := f.key("obj")
	f.put(t, key, []byte("first version, longer"))
	f.put(t, key, []byte("second"))
	if got := f.get(t, key); string(got) != "second" {
		t.Errorf("Get after overwrite = %q, want %q", got, "second")
	}
	info, err := f.s.Head(f.ctx, f.bucket, key)
	if err != nil || info.Size != 6 {
		t.Errorf("Head after overwrite = %+v, %v; want size 6", info, err)
	}
	if infos := f.list(t, f.prefix); len(infos) != 1 {
		t.Errorf("List after overwrite = %v keys, want 1", f.keysOf(infos))
	}
}

func testGetStream(t *testing.T, f *fixture) {
	for _, size := range []int64{10, 1<<20 + 7} {
		want := pattern(3, 0, size)
		key := f.key(fmt.Sprintf("obj-%d", size))
		f.put(t, key, want)
		rc, err := f.s.Get(f.ctx, f.bucket, key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		// TestReader reads in various sizes and checks EOF behaviour.
		if err := iotest.TestReader(rc, want); err != nil {
			t.Errorf("Get(%d bytes) stream: %v", size, err)
		}
		if err := rc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	// A reader closed before the end must not hang or leak.
	rc, err := f.s.Get(f.ctx, f.bucket, f.key(fmt.Sprintf("obj-%d", 1<<20+7)))
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 100)); err != nil {
		t.Errorf("partial read: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close after partial read: %v", err)
	}
}

func testGetRange(t *testing.T, f *fixture) {
	key := f.key("digits")
	f.put(t, key, []byte("0123456789"))
	cases := []struct {
		off, n  int64
		want    string
		wantErr error
	}{
		{off: 1, n: 4, want: "1234"},
		{off: 0, n: 10, want: "0123456789"},
		{off: 0, n: -1, want: "0123456789"},
		{off: 3, n: -1, want: "3456789"},
		{off: 9, n: 1, want: "9"},
		{off: 9, n: -1, want: "9"},
		{off: 8, n: 5, want: "89"},                    // runs past the end: cut short
		{off: 1, n: math.MaxInt64, want: "123456789"}, // no overflow
		{off: 4, n: 0, want: ""},
		{off: 10, n: -1, want: ""}, // offset == size: empty
		{off: 10, n: 5, want: ""},
		{off: 10, n: 0, want: ""},
		{off: 11, n: -1, wantErr: storage.ErrInvalidRange},
		{off: 11, n: 1, wantErr: storage.ErrInvalidRange},
		{off: 11, n: 0, wantErr: storage.ErrInvalidRange},
		{off: 1 << 40, n: 1, wantErr: storage.ErrInvalidRange},
		{off: -1, n: 1, wantErr: storage.ErrInvalidArgument},
	}
	for _, c := range cases {
		got, err := f.getRange(key, c.off, c.n)
		if c.wantErr != nil {
			if !errors.Is(err, c.wantErr) {
				t.Errorf("GetRange(%d, %d) = %q, %v; want error %v", c.off, c.n, got, err, c.wantErr)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("GetRange(%d, %d) = %q, %v; want %q", c.off, c.n, got, err, c.want)
		}
	}
}

func testGetRangeMultiBlock(t *testing.T, f *fixture) {
	key := f.key("big")
	const size = multiBlockSize
	if err := f.s.Put(f.ctx, f.bucket, key, newPattern(4, 0, size)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	cases := []struct{ off, n int64 }{
		{0, 100},
		{4<<20 - 10, 20}, // across the first block boundary
		{size - 1, 1},
		{size - 5, -1},
		{5 << 20, 3 << 20},
		{7, size}, // past the end
	}
	for _, c := range cases {
		got, err := f.getRange(key, c.off, c.n)
		wantN := c.n
		if wantN < 0 || c.off+wantN > size {
			wantN = size - c.off
		}
		if want := pattern(4, c.off, wantN); err != nil || !bytes.Equal(got, want) {
			t.Errorf("GetRange(%d, %d) = %s, %v; want %s", c.off, c.n, short(got), err, short(want))
		}
	}
	if got, err := f.getRange(key, size, -1); err != nil || len(got) != 0 {
		t.Errorf("GetRange(size, -1) = %s, %v; want empty", short(got), err)
	}
	if _, err := f.getRange(key, size+1, -1); !errors.Is(err, storage.ErrInvalidRange) {
		t.Errorf("GetRange(size+1, -1) error = %v, want ErrInvalidRange", err)
	}
}

func testHead(t *testing.T, f *fixture) {
	before := time.Now()
	key := f.key("obj")
	f.put(t, key, []byte("12345"))
	info, err := f.s.Head(f.ctx, f.bucket, key)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	if info.Key != key || info.Size != 5 {
		t.Errorf("Head = %+v, want key %q size 5", info, key)
	}
	checkModTime(t, "Head", info, before)
}

// checkModTime requires a set, plausible modification time; servers may
// round to the second and their clocks may be a little off.
func checkModTime(t *testing.T, op string, info storage.ObjectInfo, before time.Time) {
	t.Helper()
	if info.ModTime.IsZero() {
		t.Errorf("%s(%q).ModTime is zero", op, info.Key)
		return
	}
	if d := info.ModTime.Sub(before); d < -time.Hour || d > time.Hour {
		t.Errorf("%s(%q).ModTime = %v, more than an hour away from the write at %v", op, info.Key, info.ModTime, before)
	}
}

func testListPrefix(t *testing.T, f *fixture) {
	// The cases of Lithops' own storage tests: a plain prefix, not a
	// delimiter-based listing.
	keys := []string{"foo/baz", "foo/bar/baz", "foo_bar/baz", "foo_baz", "bar", "bar_baz"}
	for _, k := range keys {
		f.put(t, f.key(k), []byte(k))
	}
	cases := []struct {
		prefix string
		want   []string
	}{
		{"foo", []string{"foo/bar/baz", "foo/baz", "foo_bar/baz", "foo_baz"}},
		{"foo/", []string{"foo/bar/baz", "foo/baz"}},
		{"foo/b", []string{"foo/bar/baz", "foo/baz"}},
		{"foo/bar", []string{"foo/bar/baz"}},
		{"foo_", []string{"foo_bar/baz", "foo_baz"}},
		{"bar", []string{"bar", "bar_baz"}},
		{"bar_baz", []string{"bar_baz"}},
		{"", []string{"bar", "bar_baz", "foo/bar/baz", "foo/baz", "foo_bar/baz", "foo_baz"}},
		{"missing", []string{}},
		{"missing/", []string{}},
		{"foo/baz/", []string{}}, // an object is not a directory
		{"../", []string{}},
	}
	for _, c := range cases {
		got := f.keysOf(f.list(t, f.key(c.prefix)))
		if !slices.Equal(got, c.want) {
			t.Errorf("List(P+%q) = %q, want %q (sorted)", c.prefix, got, c.want)
		}
	}
	// A prefix that does not exist at all in the bucket.
	if infos := f.list(t, "storagetest-missing-"+randomHex(6)+"/"); len(infos) != 0 {
		t.Errorf("List(missing prefix) = %v, want empty", f.keysOf(infos))
	}
}

func testListSizes(t *testing.T, f *fixture) {
	before := time.Now()
	sizes := map[string]int{"a": 0, "b": 1, "c/d": 1000, "c/e": 70000}
	for k, n := range sizes {
		f.put(t, f.key(k), pattern(5, 0, int64(n)))
	}
	infos := f.list(t, f.prefix)
	if len(infos) != len(sizes) {
		t.Fatalf("List = %q, want %d keys", f.keysOf(infos), len(sizes))
	}
	for _, o := range infos {
		k := strings.TrimPrefix(o.Key, f.prefix)
		if want, ok := sizes[k]; !ok || o.Size != int64(want) {
			t.Errorf("List: %q size %d, want %d", k, o.Size, want)
		}
		checkModTime(t, "List", o, before)
		h, err := f.s.Head(f.ctx, f.bucket, o.Key)
		if err != nil || h.Size != o.Size {
			t.Errorf("Head(%q) = %+v, %v; List said size %d", k, h, err, o.Size)
		}
	}
}

func testListMany(t *testing.T, f *fixture) {
	// Enough keys to span several pages where a driver pages in hundreds.
	const n = 300
	var want []string
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range n {
		k := fmt.Sprintf("k%04d", i)
		want = append(want, k)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- f.s.PutBytes(f.ctx, f.bucket, f.key(k), []byte(k))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	if got := f.keysOf(f.list(t, f.prefix)); !slices.Equal(got, want) {
		t.Errorf("List returned %d keys, want %d sorted keys k0000…k%04d", len(got), n, n-1)
	}
	if got := f.keysOf(f.list(t, f.key("k01"))); len(got) != 100 {
		t.Errorf("List(P+k01) returned %d keys, want 100", len(got))
	}
	if n2, err := f.s.DeletePrefix(f.ctx, f.bucket, f.prefix); err != nil || n2 != n {
		t.Errorf("DeletePrefix = %d, %v; want %d", n2, err, n)
	}
	if got := f.list(t, f.prefix); len(got) != 0 {
		t.Errorf("List after DeletePrefix = %d keys, want 0", len(got))
	}
}

func testDelete(t *testing.T, f *fixture) {
	for _, k := range []string{"a", "b", "c", "d", "dir/e"} {
		f.put(t, f.key(k), []byte(k))
	}
	if err := f.s.Delete(f.ctx, f.bucket, f.key("a")); err != nil {
		t.Fatalf("Delete one: %v", err)
	}
	if _, err := f.s.Head(f.ctx, f.bucket, f.key("a")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Head after Delete: err = %v, want ErrNotFound", err)
	}
	if got := f.keysOf(f.list(t, f.prefix)); !slices.Equal(got, []string{"b", "c", "d", "dir/e"}) {
		t.Errorf("List after Delete one = %q", got)
	}
	// Many at once, with missing keys among them.
	if err := f.s.Delete(f.ctx, f.bucket, f.key("b"), f.key("missing"), f.key("dir/e"), f.key("c")); err != nil {
		t.Fatalf("Delete many: %v", err)
	}
	if got := f.keysOf(f.list(t, f.prefix)); !slices.Equal(got, []string{"d"}) {
		t.Errorf("List after Delete many = %q, want [d]", got)
	}
	// Deleting what is already gone, or nothing, is not an error.
	if err := f.s.Delete(f.ctx, f.bucket, f.key("a"), f.key("never/existed")); err != nil {
		t.Errorf("Delete of missing keys: %v", err)
	}
	if err := f.s.Delete(f.ctx, f.bucket); err != nil {
		t.Errorf("Delete of no keys: %v", err)
	}
	if got := f.get(t, f.key("d")); string(got) != "d" {
		t.Errorf("surviving object = %q", got)
	}
	// A key can be written again after its deletion.
	f.put(t, f.key("a"), []byte("again"))
	if got := f.get(t, f.key("a")); string(got) != "again" {
		t.Errorf("Get after re-Put = %q", got)
	}
}

// testPrepare checks a driver that implements driver.Preparer: a prepared
// prefix holds no object, takes writes as any other, keeps them through
// Unprepare, and goes unseen with Unprepare when nothing was written.
func testPrepare(t *testing.T, f *fixture) {
	p, ok := f.s.Driver().(driver.Preparer)
	if !ok {
		t.Skip("the driver does not implement driver.Preparer")
	}
	used, unused := f.key("used/"), f.key("deeper/unused/")
	for _, prefix := range []string{used, unused} {
		if err := p.Prepare(f.ctx, f.bucket, prefix); err != nil {
			t.Fatalf("Prepare(%q): %v", prefix, err)
		}
		if err := p.Prepare(f.ctx, f.bucket, prefix); err != nil {
			t.Fatalf("Prepare(%q) again: %v", prefix, err)
		}
	}
	if got := f.list(t, f.prefix); len(got) != 0 {
		t.Fatalf("prepared prefixes list as objects: %q", f.keysOf(got))
	}
	f.put(t, used+"a", []byte("a"))
	if err := f.s.PutIfAbsent(f.ctx, f.bucket, used+"b", strings.NewReader("b")); err != nil {
		t.Fatalf("PutIfAbsent under a prepared prefix: %v", err)
	}
	for _, prefix := range []string{used, unused} {
		if err := p.Unprepare(f.ctx, f.bucket, prefix); err != nil {
			t.Fatalf("Unprepare(%q): %v", prefix, err)
		}
	}
	if got := f.keysOf(f.list(t, f.prefix)); !slices.Equal(got, []string{"used/a", "used/b"}) {
		t.Fatalf("after Unprepare the objects are %q, want [used/a used/b]", got)
	}
	if string(f.get(t, used+"a")) != "a" {
		t.Fatal("Unprepare changed an object")
	}
	// A prefix that was never prepared, or is gone, unprepares quietly.
	if err := p.Unprepare(f.ctx, f.bucket, f.key("never/")); err != nil {
		t.Fatalf("Unprepare of a prefix never prepared: %v", err)
	}
	if err := p.Prepare(f.ctx, "storagetest-missing-bucket-"+randomHex(4), "x/"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Prepare in a missing bucket: %v, want ErrNotFound", err)
	}
}

// notFoundOps are the reads that must fail with ErrNotFound for a missing
// object or bucket.
func notFoundOps(f *fixture, bucket, key string) map[string]func() error {
	read := func(off, n int64) func() error {
		return func() error {
			rc, err := f.s.GetRange(f.ctx, bucket, key, off, n)
			if err == nil {
				rc.Close()
			}
			return err
		}
	}
	return map[string]func() error{
		"Get": func() error {
			rc, err := f.s.Get(f.ctx, bucket, key)
			if err == nil {
				rc.Close()
			}
			return err
		},
		"GetBytes":        func() error { _, err := f.s.GetBytes(f.ctx, bucket, key); return err },
		"GetRange(1,4)":   read(1, 4),
		"GetRange(0,0)":   read(0, 0),
		"GetRange(100,1)": read(100, 1),
		"Head":            func() error { _, err := f.s.Head(f.ctx, bucket, key); return err },
	}
}

func testNotFound(t *testing.T, f *fixture) {
	f.put(t, f.key("dir/present"), []byte("x"))
	for _, k := range []string{"missing", "dir", "dir/present/below"} {
		for name, op := range notFoundOps(f, f.bucket, f.key(k)) {
			err := op()
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s(P+%q): err = %v, want ErrNotFound", name, k, err)
				continue
			}
			var se *storage.Error
			if !errors.As(err, &se) || se.Key != f.key(k) {
				t.Errorf("%s(P+%q): error %v is not a *storage.Error naming the key", name, k, err)
			}
		}
	}
}

func testMissingBucket(t *testing.T, f *fixture) {
	bucket := "lithops-missing-" + randomHex(6) // a valid name on every backend
	for name, op := range notFoundOps(f, bucket, "some/key") {
		if err := op(); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s in a missing bucket: err = %v, want ErrNotFound", name, err)
		}
	}
	if _, err := f.s.List(f.ctx, bucket, ""); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("List of a missing bucket: err = %v, want ErrNotFound", err)
	}
}

func testEmptyObject(t *testing.T, f *fixture) {
	key := f.key("empty")
	if err := f.s.Put(f.ctx, f.bucket, key, strings.NewReader("")); err != nil {
		t.Fatalf("Put empty: %v", err)
	}
	if got := f.get(t, key); len(got) != 0 {
		t.Errorf("Get empty = %q", got)
	}
	info, err := f.s.Head(f.ctx, f.bucket, key)
	if err != nil || info.Size != 0 {
		t.Errorf("Head empty = %+v, %v; want size 0", info, err)
	}
	for _, c := range []struct{ off, n int64 }{{0, -1}, {0, 10}, {0, 0}} {
		if got, err := f.getRange(key, c.off, c.n); err != nil || len(got) != 0 {
			t.Errorf("GetRange(%d, %d) of empty = %q, %v; want empty", c.off, c.n, got, err)
		}
	}
	if _, err := f.getRange(key, 1, -1); !errors.Is(err, storage.ErrInvalidRange) {
		t.Errorf("GetRange(1, -1) of empty: err = %v, want ErrInvalidRange", err)
	}
	infos := f.list(t, f.prefix)
	if len(infos) != 1 || infos[0].Key != key || infos[0].Size != 0 {
		t.Errorf("List = %+v, want the empty object", infos)
	}
	if err := f.s.PutIfAbsent(f.ctx, f.bucket, f.key("empty2"), bytes.NewReader(nil)); err != nil {
		t.Errorf("PutIfAbsent empty: %v", err)
	}
}

func testPutIfAbsent(t *testing.T, f *fixture) {
	cases := []struct {
		name          string
		first, second []byte
	}{
		{"small", []byte("first"), []byte("second")},
		{"multi block", pattern(6, 0, multiBlockSize), pattern(7, 0, multiBlockSize)},
	}
	for i, c := range cases {
		key := f.key(fmt.Sprintf("obj-%d", i))
		if err := f.s.PutIfAbsent(f.ctx, f.bucket, key, bytes.NewReader(c.first)); err != nil {
			t.Fatalf("%s: first PutIfAbsent: %v", c.name, err)
		}
		err := f.s.PutIfAbsent(f.ctx, f.bucket, key, bytes.NewReader(c.second))
		if !errors.Is(err, storage.ErrExists) {
			t.Errorf("%s: second PutIfAbsent: err = %v, want ErrExists", c.name, err)
		}
		if got := f.get(t, key); !bytes.Equal(got, c.first) {
			t.Errorf("%s: content after refused PutIfAbsent = %s, want %s", c.name, short(got), short(c.first))
		}
		// Once deleted, the key can be created again.
		if err := f.s.Delete(f.ctx, f.bucket, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if err := f.s.PutIfAbsent(f.ctx, f.bucket, key, bytes.NewReader(c.second)); err != nil {
			t.Errorf("%s: PutIfAbsent after Delete: %v", c.name, err)
		}
	}
	// A plain Put still replaces.
	key := f.key("obj-0")
	f.put(t, key, []byte("replaced"))
	if got := f.get(t, key); string(got) != "replaced" {
		t.Errorf("Put over a PutIfAbsent object = %q", got)
	}
}

func testPutIfAbsentRace(t *testing.T, f *fixture) {
	const writers = 8
	key := f.key("contended")
	errs := make([]error, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			<-start
			errs[i] = f.s.PutIfAbsent(f.ctx, f.bucket, key, bytes.NewReader(pattern(uint64(100+i), 0, 64<<10)))
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("PutIfAbsent: writers %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrExists):
			t.Errorf("PutIfAbsent writer %d: err = %v, want nil or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("PutIfAbsent: no writer succeeded")
	}
	if got := f.get(t, key); !bytes.Equal(got, pattern(uint64(100+winner), 0, 64<<10)) {
		t.Errorf("content is not the winner's (writer %d): %s", winner, short(got))
	}
}

var errBoom = errors.New("storagetest: reader failed on purpose")

// failingReader yields n bytes of a pattern, then fails.
type failingReader struct{ r io.Reader }

func (fr *failingReader) Read(p []byte) (int, error) {
	n, err := fr.r.Read(p)
	if err == io.EOF {
		return n, errBoom
	}
	return n, err
}

func testFailedPutKeepsOld(t *testing.T, f *fixture) {
	for _, n := range []int64{100, multiBlockSize} {
		key := f.key(fmt.Sprintf("obj-%d", n))
		f.put(t, key, []byte("old"))
		err := f.s.Put(f.ctx, f.bucket, key, &failingReader{newPattern(8, 0, n)})
		if err == nil {
			t.Errorf("Put from a reader failing after %d bytes succeeded", n)
		} else if !errors.Is(err, errBoom) {
			t.Logf("Put from a failing reader: error %v does not wrap the reader's error", err)
		}
		if got := f.get(t, key); string(got) != "old" {
			t.Errorf("after a failed Put of %d bytes, content = %s, want %q", n, short(got), "old")
		}
		// A failed Put of a new key leaves nothing.
		nkey := f.key(fmt.Sprintf("new-%d", n))
		if err := f.s.Put(f.ctx, f.bucket, nkey, &failingReader{newPattern(8, 0, n)}); err == nil {
			t.Errorf("Put of a new key from a failing reader succeeded")
		}
		if _, err := f.s.Head(f.ctx, f.bucket, nkey); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("after a failed Put of a new key, Head: err = %v, want ErrNotFound", err)
		}
	}
	// A Put whose context is cancelled fails too and leaves the old object.
	key := f.key("obj-100")
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	if err := f.s.Put(ctx, f.bucket, key, strings.NewReader("cancelled")); err == nil {
		t.Errorf("Put with a cancelled context succeeded")
	}
	if got := f.get(t, key); string(got) != "old" {
		t.Errorf("after a cancelled Put, content = %q, want %q", got, "old")
	}
	if got, want := f.keysOf(f.list(t, f.prefix)), []string{"obj-100", fmt.Sprintf("obj-%d", multiBlockSize)}; !slices.Equal(got, want) {
		t.Errorf("List after failed Puts = %q", got)
	}
}

func testKeyNames(t *testing.T, f *fixture) {
	names := []string{
		"with space",
		"dir with spaces/file name.txt",
		"ünïcödé/日本語/ключ",
		"emoji 🎉 party",
		"plus+percent%20and%2F",
		"a&b=c;d,e@f$g!h'i(j)k*l",
		"question?hash#",
		"tilde~caret^brackets[]{}",
		"dots.in.name..x",
		"UPPER/lower/MiXeD",
	}
	for i, n := range names {
		f.put(t, f.key(n), []byte(fmt.Sprint(i)))
	}
	for i, n := range names {
		if got := f.get(t, f.key(n)); string(got) != fmt.Sprint(i) {
			t.Errorf("Get(%q) = %q, want %q", n, got, fmt.Sprint(i))
		}
		if info, err := f.s.Head(f.ctx, f.bucket, f.key(n)); err != nil || info.Key != f.key(n) {
			t.Errorf("Head(%q) = %+v, %v", n, info, err)
		}
	}
	want := slices.Clone(names)
	slices.Sort(want)
	if got := f.keysOf(f.list(t, f.prefix)); !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	if got := f.keysOf(f.list(t, f.key("ünïcödé/日"))); !slices.Equal(got, []string{"ünïcödé/日本語/ключ"}) {
		t.Errorf("List(unicode prefix) = %q", got)
	}
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = f.key(n)
	}
	if err := f.s.Delete(f.ctx, f.bucket, keys...); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := f.list(t, f.prefix); len(got) != 0 {
		t.Errorf("List after Delete = %q", f.keysOf(got))
	}
}

func testConcurrentWriters(t *testing.T, f *fixture) {
	cases := []struct {
		name         string
		rounds, size int
	}{
		{"256KiB", 4, 256 << 10},
		{"multi block", 1, multiBlockSize}, // one round: Azurite keeps all of it in memory
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { concurrentWriters(t, f, c.rounds, c.size) })
	}
}

// concurrentWriters has 8 writers put distinct payloads to one key while two
// readers read it; every read must be one whole payload.
func concurrentWriters(t *testing.T, f *fixture, rounds, size int) {
	const writers = 8
	key := f.key(fmt.Sprintf("contended-%d", size))
	payload := func(w, r int) []byte { return pattern(uint64(1000+w*rounds+r), 0, int64(size)) }
	valid := map[[32]byte]bool{}
	for w := range writers {
		for r := range rounds {
			valid[sha256.Sum256(payload(w, r))] = true
		}
	}
	f.put(t, key, payload(0, 0)) // so that readers never see a missing key
	var (
		wg      sync.WaitGroup
		done    = make(chan struct{})
		mu      sync.Mutex
		reads   int
		written = map[[32]byte]bool{sha256.Sum256(payload(0, 0)): true}
	)
	check := func(who string, b []byte, err error) {
		if err != nil {
			t.Errorf("%s: %v", who, err)
			return
		}
		if len(b) != size || !valid[sha256.Sum256(b)] {
			t.Errorf("%s read a torn object: %s", who, short(b))
		}
	}
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				b, err := f.s.GetBytes(f.ctx, f.bucket, key)
				check("concurrent reader", b, err)
				mu.Lock()
				reads++
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	var wwg sync.WaitGroup
	for w := range writers {
		wwg.Go(func() {
			for r := range rounds {
				p := payload(w, r)
				if err := f.s.PutBytes(f.ctx, f.bucket, key, p); err != nil {
					t.Errorf("writer %d round %d: %v", w, r, err)
					continue
				}
				mu.Lock()
				written[sha256.Sum256(p)] = true
				mu.Unlock()
			}
		})
	}
	wwg.Wait()
	close(done)
	wg.Wait()
	b, err := f.s.GetBytes(f.ctx, f.bucket, key)
	check("final read", b, err)
	if err == nil && !written[sha256.Sum256(b)] {
		t.Errorf("final object is not one whose Put succeeded")
	}
	t.Logf("%d writers × %d puts of %d KiB, %d concurrent reads", writers, rounds, size>>10, reads)
}

func testInvalidArguments(t *testing.T, f *fixture) {
	ctx := f.ctx
	cases := map[string]error{
		"Put empty key":     f.s.PutBytes(ctx, f.bucket, "", []byte("x")),
		"Put empty bucket":  f.s.PutBytes(ctx, "", "k", []byte("x")),
		"Put bucket/slash":  f.s.PutBytes(ctx, "a/b", "k", []byte("x")),
		"Head invalid utf8": func() error { _, err := f.s.Head(ctx, f.bucket, "bad\xff"); return err }(),
		"List empty bucket": func() error { _, err := f.s.List(ctx, "", ""); return err }(),
		"Delete empty key":  f.s.Delete(ctx, f.bucket, f.key("ok"), ""),
	}
	for name, err := range cases {
		if !errors.Is(err, storage.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
}

// heapPeak samples the heap in the background until stop is called, and
// returns the highest HeapAlloc seen.
func heapPeak() (stop func() uint64) {
	var (
		peak uint64
		quit = make(chan struct{})
		done = make(chan struct{})
	)
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			sample()
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(quit)
		<-done
		sample()
		return peak
	}
}

func heapNow() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (h *harness) testBigObject(t *testing.T, f *fixture) {
	if testing.Short() {
		t.Skipf("skipping the %d MiB object in -short mode", BigObjectSize>>20)
	}
	const size = BigObjectSize
	key := f.key("big")
	// The object only ever exists as a generator on this side: it is hashed
	// while it streams out and while it streams back.
	putHash := sha256.New()
	base := heapNow()
	stop := heapPeak()
	start := time.Now()
	err := f.s.Put(f.ctx, f.bucket, key, io.TeeReader(newPattern(9, 0, size), putHash))
	putPeak, putTime := stop(), time.Since(start)
	if err != nil {
		t.Fatalf("Put %d MiB: %v", size>>20, err)
	}
	putGrowth := int64(putPeak) - int64(base)
	t.Logf("Put %d MiB in %v, heap growth %.1f MiB", size>>20, putTime.Round(time.Millisecond), float64(putGrowth)/(1<<20))
	if !h.cfg.heapBacked && putGrowth > HeapBudget {
		t.Errorf("Put of %d MiB grew the heap by %.1f MiB, budget %d MiB: the driver buffers the object",
			size>>20, float64(putGrowth)/(1<<20), HeapBudget>>20)
	}

	info, err := f.s.Head(f.ctx, f.bucket, key)
	if err != nil || info.Size != size {
		t.Fatalf("Head = %+v, %v; want size %d", info, err, size)
	}

	getHash := sha256.New()
	base = heapNow()
	stop = heapPeak()
	start = time.Now()
	rc, err := f.s.Get(f.ctx, f.bucket, key)
	if err != nil {
		stop()
		t.Fatalf("Get: %v", err)
	}
	cr := &countingReader{r: rc}
	_, err = io.Copy(getHash, cr)
	rc.Close()
	getPeak, getTime := stop(), time.Since(start)
	if err != nil {
		t.Fatalf("streaming Get after %d bytes: %v", cr.n, err)
	}
	getGrowth := int64(getPeak) - int64(base)
	t.Logf("Get %d MiB in %v, heap growth %.1f MiB", size>>20, getTime.Round(time.Millisecond), float64(getGrowth)/(1<<20))
	if cr.n != size || !bytes.Equal(getHash.Sum(nil), putHash.Sum(nil)) {
		t.Errorf("Get streamed %d bytes with sha256 %x, want %d bytes with sha256 %x", cr.n, getHash.Sum(nil), int64(size), putHash.Sum(nil))
	}
	if getGrowth > HeapBudget {
		t.Errorf("Get of %d MiB grew the heap by %.1f MiB, budget %d MiB: the driver buffers the object",
			size>>20, float64(getGrowth)/(1<<20), HeapBudget>>20)
	}

	// A range deep inside the object.
	const off, n = 77<<20 + 12345, 1 << 20
	if got, err := f.getRange(key, off, n); err != nil || !bytes.Equal(got, pattern(9, off, n)) {
		t.Errorf("GetRange(%d, %d) of the big object = %s, %v", off, n, short(got), err)
	}
	// Free the space now rather than at cleanup (Azurite keeps it in memory).
	if err := f.s.Delete(f.ctx, f.bucket, key); err != nil {
		t.Errorf("Delete: %v", err)
	}
}
