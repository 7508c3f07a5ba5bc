// Command shuffle benchmarks MapShuffle on localhost, each beside its
// reference in the same run:
//
//   - sort: records in the gensort ASCII shape (10-byte key, 90-byte
//     payload ending in "\n"; 100 bytes a record), generated
//     deterministically, range-partitioned (SortedOutput) over -reducers,
//     validated like valsort (order, record count, checksum); beside GNU
//     sort (LC_ALL=C sort -S 50% --parallel=2) on the same bytes.
//   - word count: bench/wordcount's 64 MiB (same generator) with 8
//     reducers, beside the single-reducer MapReduce; the counts must agree.
//   - group-by: 64 MiB of "key,value" CSV, half of the lines on one key,
//     count and sum per key with a combiner and 8 reducers, checked against
//     the same parsing in this process.
//
// Run it with the defaults (a 256 MiB sort) or with -size 1073741824 (1 GiB):
//
//	go run ./bench/shuffle
//
// Record generator, record i = 0..n-1: x = i*0x9E3779B97F4A7C15 + 1, three
// rounds of x ^= x>>31; x *= 0xBF58476D1CE4E5B9 (splitmix); key byte j =
// ' '+1 + ((x >> (6*j)) % 94) for j < 10; payload: the record number in 16
// hex digits, 73 bytes 'A'+(i+j)%26, "\n".
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/lithops-go/lithops"
	_ "github.com/lithops-go/lithops/azure"
	"github.com/lithops-go/lithops/bench/internal/wcdata"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/runtimetest"
)

const recSize = 100

// record writes record i into b (recSize bytes).
func record(b []byte, i uint64) {
	x := i*0x9E3779B97F4A7C15 + 1
	for range 3 {
		x ^= x >> 31
		x *= 0xBF58476D1CE4E5B9
	}
	for j := range 10 {
		b[j] = byte(' ' + 1 + (x>>(6*j))%94)
	}
	const hex = "0123456789ABCDEF"
	for j := range 16 {
		b[10+j] = hex[(i>>(4*(15-j)))&15]
	}
	for j := 26; j < recSize-1; j++ {
		b[j] = byte('A' + (i+uint64(j))%26)
	}
	b[recSize-1] = '\n'
}

// sortMapper emits each record of a chunk: key, payload.
var sortMapper = lithops.MapperFunc("bench_sort_map", func(ctx context.Context, c lithops.ObjectChunk, emit func(string, string)) error {
	rc, err := c.Open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	var buf bytes.Buffer
	buf.Grow(int(c.Size) + recSize)
	if _, err := buf.ReadFrom(rc); err != nil {
		return err
	}
	data := buf.Bytes()
	for len(data) >= recSize {
		emit(string(data[:10]), string(data[10:recSize]))
		data = data[recSize:]
	}
	if len(data) > 0 {
		return fmt.Errorf("chunk %s@%d: %d bytes left over", c.Key, c.Offset, len(data))
	}
	return nil
})

// sortReducer outputs the payloads of one key end to end (one payload but
// for a repeated key): string keys and values travel raw.
var sortReducer = lithops.ReducerFunc("bench_sort_reduce", func(ctx context.Context, k string, vs iter.Seq[string]) (string, error) {
	var out string
	for v := range vs {
		out += v
	}
	return out, nil
})

// generate writes n records as objects of at most chunk bytes into
// storage, and the same bytes into file; it returns the record count and
// the checksum (sum of the records' CRC-32C, as valsort).
func generate(ctx context.Context, e *lithops.Executor, prefix, file string, size, chunk int64) (int64, uint64, error) {
	f, err := os.Create(file)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fw := bufio.NewWriterSize(f, 1<<20)
	st := e.Storage()
	n := size / recSize
	perObj := chunk / recSize
	var sum uint64
	tab := crc32.MakeTable(crc32.Castagnoli)
	obj := make([]byte, 0, perObj*recSize)
	for i, part := int64(0), 0; i < n; part++ {
		obj = obj[:0]
		for j := int64(0); j < perObj && i < n; j, i = j+1, i+1 {
			obj = obj[:len(obj)+recSize]
			r := obj[len(obj)-recSize:]
			record(r, uint64(i))
			sum += uint64(crc32.Checksum(r, tab))
		}
		if err := st.PutBytes(ctx, st.Bucket(), fmt.Sprintf("%spart-%04d", prefix, part), obj); err != nil {
			return 0, 0, err
		}
		fw.Write(obj)
	}
	return n, sum, fw.Flush()
}

// validate checks a sorted stream of records: order, count, checksum.
type validator struct {
	n    int64
	sum  uint64
	prev []byte
	bad  int64
	tab  *crc32.Table
}

func (v *validator) add(rec []byte) {
	if v.tab == nil {
		v.tab = crc32.MakeTable(crc32.Castagnoli)
	}
	if v.n > 0 && bytes.Compare(rec[:10], v.prev) < 0 {
		v.bad++
	}
	v.prev = append(v.prev[:0], rec[:10]...)
	v.n++
	v.sum += uint64(crc32.Checksum(rec, v.tab))
}

func (v *validator) check(n int64, sum uint64) error {
	switch {
	case v.bad > 0:
		return fmt.Errorf("%d records out of order", v.bad)
	case v.n != n:
		return fmt.Errorf("%d records, want %d", v.n, n)
	case v.sum != sum:
		return fmt.Errorf("checksum %x, want %x", v.sum, sum)
	}
	return nil
}

func benchSort(ctx context.Context, e *lithops.Executor, dir string, size, chunk int64, reducers int) error {
	prefix := "bench/shuffle/sort/"
	st := e.Storage()
	defer st.DeletePrefix(context.WithoutCancel(ctx), st.Bucket(), prefix)
	in := filepath.Join(dir, "sort-input")
	t0 := time.Now()
	n, sum, err := generate(ctx, e, prefix, in, size, chunk)
	if err != nil {
		return err
	}
	fmt.Printf("sort: %d records, %.0f MiB in %d-MiB objects (generated in %v)\n", n, float64(n*recSize)/(1<<20), chunk>>20, time.Since(t0).Round(time.Millisecond))

	// GNU sort on the same bytes.
	out := filepath.Join(dir, "sort-output")
	t0 = time.Now()
	cmd := exec.CommandContext(ctx, "sort", "-S", "50%", "--parallel=2", "-o", out, in)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("GNU sort: %w", err)
	}
	gnu := time.Since(t0)
	of, err := os.Open(out)
	if err != nil {
		return err
	}
	var gv validator
	br := bufio.NewReaderSize(of, 1<<20)
	rec := make([]byte, recSize)
	for {
		if _, err := io.ReadFull(br, rec); err != nil {
			break
		}
		gv.add(rec)
	}
	of.Close()
	if err := gv.check(n, sum); err != nil {
		return fmt.Errorf("GNU sort output: %w", err)
	}
	os.Remove(out)
	os.Remove(in)

	// MapShuffle, range-partitioned.
	t0 = time.Now()
	chunks, err := e.Partition(ctx, []string{st.Backend() + "://" + st.Bucket() + "/" + prefix})
	if err != nil {
		return err
	}
	sh, err := lithops.MapShuffle(ctx, e, sortMapper, chunks, sortReducer, lithops.Reducers(reducers), lithops.SortedOutput())
	if err != nil {
		return err
	}
	if err := sh.Wait(ctx); err != nil {
		return err
	}
	wall := time.Since(t0)
	stats, _ := sh.Stats(ctx)
	t0 = time.Now()
	var v validator
	for k, payloads := range sh.All(ctx) {
		for p := payloads; len(p) >= recSize-10; p = p[recSize-10:] {
			rec = append(append(rec[:0], k...), p[:recSize-10]...)
			v.add(rec)
		}
	}
	if err := sh.Err(); err != nil {
		return err
	}
	if err := v.check(n, sum); err != nil {
		return fmt.Errorf("MapShuffle output: %w", err)
	}
	read := time.Since(t0)
	fmt.Printf("  GNU sort (LC_ALL=C sort -S 50%% --parallel=2): %v, valid\n", gnu.Round(time.Millisecond))
	fmt.Printf("  MapShuffle (%d mappers, %d reducers, sorted): %v (%.2f× GNU sort), valid; %d pairs, %d spills, %.0f MiB of segments; reading the outputs back and validating: %v\n",
		len(chunks), reducers, wall.Round(time.Millisecond), wall.Seconds()/gnu.Seconds(), stats.Pairs, stats.Spills, float64(stats.SegmentBytes)/(1<<20), read.Round(time.Millisecond))
	return nil
}

// Word count: bench/wordcount's generator and data.

const (
	wcObjects  = 16
	wcMaxBytes = 4 << 20
)

func readChunk(ctx context.Context, c lithops.ObjectChunk) ([]byte, error) {
	rc, err := c.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	buf.Grow(int(c.Size) + 64<<10)
	_, err = buf.ReadFrom(rc)
	return buf.Bytes(), err
}

func count(data []byte, add func(w []byte)) {
	start := 0
	for i, b := range data {
		if b == ' ' || b == '\n' {
			if i > start {
				add(data[start:i])
			}
			start = i + 1
		}
	}
	if start < len(data) {
		add(data[start:])
	}
}

var wcMap = lithops.Func("bench_shuffle_wc_map", func(ctx context.Context, c lithops.ObjectChunk) (map[string]int, error) {
	data, err := readChunk(ctx, c)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int, 1024)
	count(data, func(w []byte) { counts[string(w)]++ })
	return counts, nil
})

var wcReduce = lithops.Func("bench_shuffle_wc_reduce", func(ctx context.Context, parts []map[string]int) (map[string]int, error) {
	total := make(map[string]int, 1024)
	for _, p := range parts {
		for w, n := range p {
			total[w] += n
		}
	}
	return total, nil
})

// wcShuffleMap emits each word of a chunk once with its count in the
// chunk (the mapper counts in a map first: a combiner in the mapper).
var wcShuffleMap = lithops.MapperFunc("bench_shuffle_wc_emit", func(ctx context.Context, c lithops.ObjectChunk, emit func(string, int)) error {
	data, err := readChunk(ctx, c)
	if err != nil {
		return err
	}
	counts := make(map[string]int, 1024)
	count(data, func(w []byte) { counts[string(w)]++ })
	for w, n := range counts {
		emit(w, n)
	}
	return nil
})

var wcShuffleReduce = lithops.ReducerFunc("bench_shuffle_wc_sum", func(ctx context.Context, w string, ns iter.Seq[int]) (int, error) {
	t := 0
	for n := range ns {
		t += n
	}
	return t, nil
})

func benchWordCount(ctx context.Context, e *lithops.Executor, reducers, runs int) error {
	st := e.Storage()
	prefix := "bench/shuffle/wc/"
	defer st.DeletePrefix(context.WithoutCancel(ctx), st.Bucket(), prefix)
	var size int64
	for i := range wcObjects {
		data := wcdata.Object(i, wcMaxBytes)
		size += int64(len(data))
		if err := st.PutBytes(ctx, st.Bucket(), fmt.Sprintf("%spart-%02d.txt", prefix, i), data); err != nil {
			return err
		}
	}
	fmt.Printf("word count: %d objects, %.1f MiB\n", wcObjects, float64(size)/(1<<20))
	var bestMR, bestSh time.Duration
	for r := 0; r <= runs; r++ { // run 0 warms the workers up
		chunks, err := e.Partition(ctx, []string{st.Backend() + "://" + st.Bucket() + "/" + prefix}, lithops.ChunkSize(4<<20))
		if err != nil {
			return err
		}
		t0 := time.Now()
		fut, err := lithops.MapReduce(ctx, e, wcMap, chunks, wcReduce)
		if err != nil {
			return err
		}
		ref, err := fut.Result(ctx)
		if err != nil {
			return err
		}
		mr := time.Since(t0)
		t0 = time.Now()
		sh, err := lithops.MapShuffle(ctx, e, wcShuffleMap, chunks, wcShuffleReduce, lithops.Reducers(reducers))
		if err != nil {
			return err
		}
		if err := sh.Wait(ctx); err != nil {
			return err
		}
		shw := time.Since(t0)
		got := 0
		for w, n := range sh.All(ctx) {
			if ref[w] != n {
				return fmt.Errorf("%q: %d with the shuffle, %d with MapReduce", w, n, ref[w])
			}
			got++
		}
		if err := sh.Err(); err != nil {
			return err
		}
		if got != len(ref) {
			return fmt.Errorf("%d words with the shuffle, %d with MapReduce", got, len(ref))
		}
		if r == 0 {
			continue
		}
		if bestMR == 0 || mr < bestMR {
			bestMR = mr
		}
		if bestSh == 0 || shw < bestSh {
			bestSh = shw
		}
		fmt.Printf("  run %d: MapReduce (1 reducer) %v, MapShuffle (%d reducers) %v; %d distinct words, same counts\n", r, mr.Round(time.Millisecond), reducers, shw.Round(time.Millisecond), got)
	}
	fmt.Printf("  best: MapReduce %v, MapShuffle %v\n", bestMR.Round(time.Millisecond), bestSh.Round(time.Millisecond))
	return nil
}

// Group-by: a CSV of "key,value" lines, half of them on one key.

// agg is a key's count and sum (of integer values: exact in any order).
type agg struct {
	N, Sum int64
}

func groupCSV(i int, size int) []byte {
	r := uint64(i)*0x9E3779B97F4A7C15 + 7
	buf := make([]byte, 0, size+32)
	for len(buf) < size {
		r ^= r >> 31
		r *= 0xBF58476D1CE4E5B9
		k := (r >> 20) % 10000
		if r&1 == 0 {
			k = 0 // the skewed key: half of the lines
		}
		buf = append(buf, 'k')
		buf = strconv.AppendUint(buf, k, 10)
		buf = append(buf, ',')
		buf = strconv.AppendUint(buf, (r>>40)%1000, 10)
		buf = append(buf, '\n')
	}
	return buf
}

func parseCSV(data []byte, add func(key []byte, v int64)) error {
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			nl = len(data)
		}
		line := data[:nl]
		data = data[min(nl+1, len(data)):]
		c := bytes.IndexByte(line, ',')
		if c < 0 {
			return fmt.Errorf("line %q has no comma", line)
		}
		v, err := strconv.ParseInt(string(line[c+1:]), 10, 64)
		if err != nil {
			return err
		}
		add(line[:c], v)
	}
	return nil
}

func foldAgg(ctx context.Context, k string, as iter.Seq[agg]) (agg, error) {
	var t agg
	for a := range as {
		t.N += a.N
		t.Sum += a.Sum
	}
	return t, nil
}

var groupMap = lithops.MapperFunc("bench_shuffle_groupby_map", func(ctx context.Context, c lithops.ObjectChunk, emit func(string, agg)) error {
	data, err := readChunk(ctx, c)
	if err != nil {
		return err
	}
	return parseCSV(data, func(k []byte, v int64) { emit(string(k), agg{1, v}) })
}, lithops.WithCombiner(foldAgg))

var groupReduce = lithops.ReducerFunc("bench_shuffle_groupby_reduce", foldAgg)

func benchGroupBy(ctx context.Context, e *lithops.Executor, reducers int) error {
	st := e.Storage()
	prefix := "bench/shuffle/groupby/"
	defer st.DeletePrefix(context.WithoutCancel(ctx), st.Bucket(), prefix)
	const objs, objSize = 8, 8 << 20
	var keys []string
	for i := range objs {
		k := fmt.Sprintf("%spart-%02d.csv", prefix, i)
		if err := st.PutBytes(ctx, st.Bucket(), k, groupCSV(i, objSize)); err != nil {
			return err
		}
		keys = append(keys, k)
	}
	// Reference: the same parsing in this process, one goroutine.
	t0 := time.Now()
	ref := map[string]agg{}
	for _, k := range keys {
		data, err := st.GetBytes(ctx, st.Bucket(), k)
		if err != nil {
			return err
		}
		err = parseCSV(data, func(k []byte, v int64) {
			a := ref[string(k)]
			a.N++
			a.Sum += v
			ref[string(k)] = a
		})
		if err != nil {
			return err
		}
	}
	refWall := time.Since(t0)
	t0 = time.Now()
	chunks, err := e.Partition(ctx, []string{st.Backend() + "://" + st.Bucket() + "/" + prefix}, lithops.ChunkSize(4<<20))
	if err != nil {
		return err
	}
	sh, err := lithops.MapShuffle(ctx, e, groupMap, chunks, groupReduce, lithops.Reducers(reducers))
	if err != nil {
		return err
	}
	n := 0
	for k, a := range sh.All(ctx) {
		if ref[k] != a {
			return fmt.Errorf("key %s: %+v with the shuffle, %+v in process", k, a, ref[k])
		}
		n++
	}
	if err := sh.Err(); err != nil {
		return err
	}
	if n != len(ref) {
		return fmt.Errorf("%d keys with the shuffle, %d in process", n, len(ref))
	}
	wall := time.Since(t0)
	fmt.Printf("group-by: %d MiB of CSV, %d keys (k0 holds %d of %d lines)\n", objs*objSize>>20, n, ref["k0"].N, func() (t int64) {
		for _, a := range ref {
			t += a.N
		}
		return
	}())
	fmt.Printf("  MapShuffle (%d mappers, combiner, %d reducers) %v, read back and checked; in-process reference (1 goroutine) %v\n", len(chunks), reducers, wall.Round(time.Millisecond), refWall.Round(time.Millisecond))
	return nil
}

func main() {
	size := flag.Int64("size", 256<<20, "bytes of records to sort (a multiple of 100 is used)")
	chunk := flag.Int64("chunk", 32<<20, "bytes of each input object (one mapper each)")
	reducers := flag.Int("reducers", 8, "reducers of the sort and of the word count")
	runs := flag.Int("runs", 2, "timed word-count runs")
	doSort := flag.Bool("sort", true, "run the sort")
	doWC := flag.Bool("wc", true, "run the word count")
	doGroup := flag.Bool("groupby", true, "run the group-by")
	onAzure := flag.Bool("azure", false, "run on Azure Functions and Blob storage: Azurite (scripts/azurite.sh start) and the Functions-host double")
	instances := flag.Int("instances", 4, "host double instances (-azure)")
	flag.Parse()
	lithops.Main(func(ctx context.Context) error {
		dir, err := os.MkdirTemp("", "lithops-bench-shuffle-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg := config.Default()
		cfg.Localhost.StorageRoot = filepath.Join(dir, "storage")
		if *onAzure {
			// The same program as the runtime's handler, on the
			// Functions-host double, over Azurite.
			cfg = runtimetest.Config("bench-shuffle")
			cfg.AzureFunctions.MaxWorkers = *instances
			env, err := runtimetest.Start(ctx, cfg, runtimetest.Options{Instances: *instances, Workers: 2})
			if err != nil {
				return err
			}
			defer env.Close()
			fmt.Printf("on azure_functions (%d host-double instances, 2 workers each) and azure_storage (Azurite)\n", *instances)
		}
		e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
		if err != nil {
			return err
		}
		defer e.Close()
		if *doWC {
			if err := benchWordCount(ctx, e, *reducers, *runs); err != nil {
				return fmt.Errorf("word count: %w", err)
			}
		}
		if *doGroup {
			if err := benchGroupBy(ctx, e, *reducers); err != nil {
				return fmt.Errorf("group-by: %w", err)
			}
		}
		if *doSort {
			if err := benchSort(ctx, e, dir, *size, *chunk, *reducers); err != nil {
				return fmt.Errorf("sort: %w", err)
			}
		}
		return nil
	})
}
