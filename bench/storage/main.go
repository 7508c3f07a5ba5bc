// Command storage measures the throughput of the storage drivers through
// the portable *storage.Storage: one large object (default 64 MiB) put and
// read back as a stream, and many small objects (default 1,000 × 1 KiB) put,
// read, listed and deleted with bounded concurrency (default 32).
//
// It measures localhost storage (a temporary directory) and, when Azurite
// answers on -azurite, azure_storage against Azurite. Each measurement is
// repeated -runs times and the median is printed.
//
//	go run ./bench/storage
//	go run ./bench/storage -large 256MiB -small 5000 -concurrency 64
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/azblob"
	"github.com/lithops-go/lithops/storage/localfs"
)

func main() {
	var (
		large       = byteSize(64 << 20)
		smallSize   = byteSize(1 << 10)
		small       = flag.Int("small", 1000, "number of small objects")
		concurrency = flag.Int("concurrency", 32, "parallel requests for the small objects")
		runs        = flag.Int("runs", 3, "repetitions of each measurement (the median is printed)")
		azurite     = flag.String("azurite", "127.0.0.1:10000", "Azurite blob service address; empty: skip Azure")
		dir         = flag.String("dir", "", "root of the localhost storage (default: a new temporary directory)")
	)
	flag.Var(&large, "large", "size of the large object (e.g. 64MiB)")
	flag.Var(&smallSize, "small-size", "size of each small object (e.g. 1KiB)")
	flag.Parse()
	b := &bench{large: int64(large), small: *small, smallSize: int64(smallSize), concurrency: *concurrency, runs: *runs}
	if err := b.main(context.Background(), *dir, *azurite); err != nil {
		fmt.Fprintln(os.Stderr, "bench/storage:", err)
		os.Exit(1)
	}
}

type bench struct {
	large       int64
	small       int
	smallSize   int64
	concurrency int
	runs        int
}

func (b *bench) main(ctx context.Context, dir, azurite string) error {
	fmt.Printf("storage throughput: %s/%s, %d CPUs, %s; large object %s, %d small objects of %s, concurrency %d, median of %d runs\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(),
		byteSize(b.large), b.small, byteSize(b.smallSize), b.concurrency, b.runs)
	fmt.Printf("%-28s %-26s %12s %14s\n", "backend", "operation", "median time", "throughput")

	if dir == "" {
		tmp, err := os.MkdirTemp("", "lithops-bench-storage-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	d, err := localfs.New(dir)
	if err != nil {
		return err
	}
	if err := b.run(ctx, "localhost (temp dir)", storage.New(d, "localhost", "bench")); err != nil {
		return fmt.Errorf("localhost: %w", err)
	}

	if azurite == "" {
		return nil
	}
	if c, err := net.DialTimeout("tcp", azurite, 500*time.Millisecond); err != nil {
		fmt.Printf("%-28s skipped: Azurite not running on %s (start it with scripts/azurite.sh start)\n", "azure_storage (Azurite)", azurite)
		return nil
	} else {
		c.Close()
	}
	az, err := azblob.New(ctx, azblob.Config{
		StorageAccountName: azblob.DevAccountName,
		StorageAccountKey:  azblob.DevAccountKey,
		Endpoint:           "http://" + azurite + "/" + azblob.DevAccountName,
	})
	if err != nil {
		return err
	}
	container := "bench-" + randomHex(6)
	defer az.Client().DeleteContainer(context.Background(), container, nil)
	if err := b.run(ctx, "azure_storage (Azurite)", storage.New(az, "azure_storage", container)); err != nil {
		return fmt.Errorf("azure_storage: %w", err)
	}
	return nil
}

// run measures one storage and prints a line per operation.
func (b *bench) run(ctx context.Context, name string, s *storage.Storage) error {
	if err := s.CreateBucket(ctx, s.Bucket()); err != nil {
		return err
	}
	type result struct {
		op    string
		times []time.Duration
		unit  func(time.Duration) string
	}
	mibps := func(n int64) func(time.Duration) string {
		return func(d time.Duration) string { return fmt.Sprintf("%8.1f MiB/s", float64(n)/(1<<20)/d.Seconds()) }
	}
	objps := func(n int) func(time.Duration) string {
		return func(d time.Duration) string { return fmt.Sprintf("%8.0f obj/s", float64(n)/d.Seconds()) }
	}
	results := []*result{
		{op: fmt.Sprintf("put %s", byteSize(b.large)), unit: mibps(b.large)},
		{op: fmt.Sprintf("get %s", byteSize(b.large)), unit: mibps(b.large)},
		{op: fmt.Sprintf("put %d × %s", b.small, byteSize(b.smallSize)), unit: objps(b.small)},
		{op: fmt.Sprintf("get %d × %s", b.small, byteSize(b.smallSize)), unit: objps(b.small)},
		{op: fmt.Sprintf("list %d", b.small), unit: objps(b.small)},
		{op: fmt.Sprintf("delete %d", b.small), unit: objps(b.small)},
	}
	for r := range b.runs {
		prefix := fmt.Sprintf("bench-%s/run%d/", randomHex(4), r)
		times, err := b.once(ctx, s, prefix)
		if err != nil {
			return err
		}
		for i, t := range times {
			results[i].times = append(results[i].times, t)
		}
	}
	for _, r := range results {
		slices.Sort(r.times)
		med := r.times[len(r.times)/2]
		fmt.Printf("%-28s %-26s %12s %14s\n", name, r.op, med.Round(time.Millisecond), r.unit(med))
	}
	return nil
}

// once does every operation once under prefix and returns their durations
// in the order of the result lines.
func (b *bench) once(ctx context.Context, s *storage.Storage, prefix string) ([]time.Duration, error) {
	var times []time.Duration
	timed := func(f func() error) error {
		start := time.Now()
		err := f()
		times = append(times, time.Since(start))
		return err
	}
	bucket, key := s.Bucket(), prefix+"large"
	// The large object streams from a generator and is checksummed on both
	// sides (CRC-32C: cheap next to the I/O), so nothing holds it in memory.
	src := crc32.New(castagnoli)
	if err := timed(func() error {
		return s.Put(ctx, bucket, key, io.TeeReader(io.LimitReader(&zeroish{}, b.large), src))
	}); err != nil {
		return nil, fmt.Errorf("put large: %w", err)
	}
	dst := crc32.New(castagnoli)
	if err := timed(func() error {
		rc, err := s.Get(ctx, bucket, key)
		if err != nil {
			return err
		}
		defer rc.Close()
		n, err := io.Copy(dst, rc)
		if err == nil && n != b.large {
			err = fmt.Errorf("read %d bytes, want %d", n, b.large)
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("get large: %w", err)
	}
	if string(src.Sum(nil)) != string(dst.Sum(nil)) {
		return nil, errors.New("large object came back different")
	}
	if err := s.Delete(ctx, bucket, key); err != nil {
		return nil, err
	}

	keys := make([]string, b.small)
	for i := range keys {
		keys[i] = fmt.Sprintf("%ssmall/%06d", prefix, i)
	}
	payload := make([]byte, b.smallSize)
	_, _ = rand.Read(payload)
	parallel := func(f func(key string) error) error {
		g, ctx := errgroup.WithContext(ctx)
		g.SetLimit(b.concurrency)
		for _, k := range keys {
			g.Go(func() error {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return f(k)
			})
		}
		return g.Wait()
	}
	if err := timed(func() error {
		return parallel(func(k string) error { return s.PutBytes(ctx, bucket, k, payload) })
	}); err != nil {
		return nil, fmt.Errorf("put small: %w", err)
	}
	if err := timed(func() error {
		return parallel(func(k string) error {
			got, err := s.GetBytes(ctx, bucket, k)
			if err == nil && int64(len(got)) != b.smallSize {
				err = fmt.Errorf("%s: %d bytes, want %d", k, len(got), b.smallSize)
			}
			return err
		})
	}); err != nil {
		return nil, fmt.Errorf("get small: %w", err)
	}
	if err := timed(func() error {
		infos, err := s.List(ctx, bucket, prefix+"small/")
		if err == nil && len(infos) != b.small {
			err = fmt.Errorf("listed %d objects, want %d", len(infos), b.small)
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	// One Delete call, as DeletePrefix and `lithops clean` make them; the
	// driver decides how to parallelize.
	if err := timed(func() error { return s.Delete(ctx, bucket, keys...) }); err != nil {
		return nil, fmt.Errorf("delete: %w", err)
	}
	return times, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zeroish is an endless cheap byte stream (a random 64 KiB block, repeated)
// that no layer can short-cut as zeros.
type zeroish struct{ off int }

var block = func() []byte {
	b := make([]byte, 64<<10)
	_, _ = rand.Read(b)
	return b
}()

func (z *zeroish) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], block[z.off:])
		n += c
		z.off = (z.off + c) % len(block)
	}
	return n, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// byteSize is a flag value such as 64MiB, 1KiB or 1000.
type byteSize int64

func (s byteSize) String() string {
	switch {
	case s >= 1<<20 && s%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", s>>20)
	case s >= 1<<10 && s%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", s>>10)
	}
	return fmt.Sprintf("%dB", int64(s))
}

func (s *byteSize) Set(v string) error {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSuffix(v, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("want a size such as 64MiB, got %q", v)
	}
	*s = byteSize(n * mult)
	return nil
}
