// Command wordcount is the word-count benchmark: 16 objects of at most
// 4 MiB, generated deterministically, in localhost storage; ChunkSize(4 MiB);
// a map-reduce summing word counts. It prints wall time, calls, distinct
// words, total words and the top 5.
//
//	go run ./bench/wordcount
//
// Generator, object i = 0..15: x = i+1 (uint64); a line is 12 words joined by
// single spaces plus "\n"; for each word x = x*6364136223846793005 +
// 1442695040888963407 (mod 2^64) and the word is "w" followed by the decimal
// ((x>>33)%1000) * ((x>>43)%1000) / 1000; lines are appended while the
// object stays ≤ 4,194,304 bytes; the object is named part-NN.txt.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"runtime"
	"sort"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/bench/internal/wcdata"
	"github.com/lithops-go/lithops/storage"
	"golang.org/x/sync/errgroup"
)

const (
	objects  = 16
	maxBytes = 4 << 20
)

var countWords = lithops.Func("bench_wordcount_map", func(ctx context.Context, c lithops.ObjectChunk) (map[string]int, error) {
	rc, err := c.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// The chunk's size is known: read it into one buffer, no regrowth.
	var buf bytes.Buffer
	buf.Grow(int(c.Size) + 64<<10)
	if _, err := buf.ReadFrom(rc); err != nil {
		return nil, err
	}
	return count(buf.Bytes()), nil
})

// count is the counting code, shared by the mapper and the in-process
// reference.
func count(data []byte) map[string]int {
	counts := make(map[string]int, 1024)
	start := 0
	for i, b := range data {
		if b == ' ' || b == '\n' {
			if i > start {
				counts[string(data[start:i])]++ // no allocation for an existing key
			}
			start = i + 1
		}
	}
	if start < len(data) {
		counts[string(data[start:])]++
	}
	return counts
}

// inProcess is the reference: the same counting code over the same
// objects, read from the same storage, in this process with one goroutine
// per CPU, then the same merge.
func inProcess(ctx context.Context, st *storage.Storage, keys []string) (map[string]int, error) {
	parts := make([]map[string]int, len(keys))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.NumCPU())
	for i, k := range keys {
		g.Go(func() error {
			data, err := st.GetBytes(ctx, st.Bucket(), k)
			if err != nil {
				return err
			}
			parts[i] = count(data)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	total := make(map[string]int, 1024)
	for _, p := range parts {
		for w, n := range p {
			total[w] += n
		}
	}
	return total, nil
}

var merge = lithops.Func("bench_wordcount_reduce", func(ctx context.Context, parts []map[string]int) (map[string]int, error) {
	total := make(map[string]int, 1024)
	for _, p := range parts {
		for w, n := range p {
			total[w] += n
		}
	}
	return total, nil
})

func main() {
	runs := flag.Int("runs", 3, "timed runs (the best is reported too)")
	flag.Parse()
	lithops.Main(func(ctx context.Context) error {
		fexec, err := lithops.NewExecutor(ctx)
		if err != nil {
			return err
		}
		defer fexec.Close()
		st := fexec.Storage()
		prefix := "bench/wc/"
		var size int64
		var keys []string
		for i := 0; i < objects; i++ {
			data := wcdata.Object(i, maxBytes)
			size += int64(len(data))
			keys = append(keys, fmt.Sprintf("%spart-%02d.txt", prefix, i))
			if err := st.PutBytes(ctx, st.Bucket(), keys[i], data); err != nil {
				return err
			}
		}
		defer st.DeletePrefix(context.WithoutCancel(ctx), st.Bucket(), prefix)
		fmt.Printf("dataset: %d objects, %.1f MiB in %s storage\n", objects, float64(size)/(1<<20), st.Backend())

		// One untimed warm-up run starts the worker processes; each timed
		// run measures the in-process reference right before the framework.
		var best, bestRef time.Duration
		for r := 0; r <= *runs; r++ {
			refStart := time.Now()
			ref, err := inProcess(ctx, st, keys)
			if err != nil {
				return err
			}
			refWall := time.Since(refStart)
			if r > 0 && (bestRef == 0 || refWall < bestRef) {
				bestRef = refWall
			}
			start := time.Now()
			before := len(fexec.Jobs())
			chunks, err := fexec.Partition(ctx, []string{"localhost://" + st.Bucket() + "/" + prefix}, lithops.ChunkSize(4<<20))
			if err != nil {
				return err
			}
			fut, err := lithops.MapReduce(ctx, fexec, countWords, chunks, merge)
			if err != nil {
				return err
			}
			counts, err := fut.Result(ctx)
			if err != nil {
				return err
			}
			wall := time.Since(start)
			if len(counts) != len(ref) {
				return fmt.Errorf("run %d: %d distinct words, the in-process reference has %d", r, len(counts), len(ref))
			}
			for w, n := range ref {
				if counts[w] != n {
					return fmt.Errorf("run %d: %q counted %d times, the in-process reference %d", r, w, counts[w], n)
				}
			}
			if r == 0 {
				continue
			}
			if best == 0 || wall < best {
				best = wall
			}
			calls := 0
			for _, j := range fexec.Jobs()[before:] {
				calls += j.Calls
			}
			total := 0
			words := make([]string, 0, len(counts))
			for w, n := range counts {
				total += n
				words = append(words, w)
			}
			sort.Slice(words, func(i, j int) bool {
				if counts[words[i]] != counts[words[j]] {
					return counts[words[i]] > counts[words[j]]
				}
				return words[i] < words[j]
			})
			fmt.Printf("run %d: wall %v (in-process reference %v), %d calls, %d distinct words, %d words, top 5:", r, wall.Round(time.Millisecond), refWall.Round(time.Millisecond), calls, len(words), total)
			for _, w := range words[:min(5, len(words))] {
				fmt.Printf(" %s=%d", w, counts[w])
			}
			fmt.Println()
		}
		fmt.Printf("best wall time %v (target ≤ 0.5 s; Lithops Python localhost on the same data: 5.2 s)\n", best.Round(time.Millisecond))
		fmt.Printf("best in-process reference %v (%d goroutines): framework share %+.0f%% (target ≤ 10%%)\n",
			bestRef.Round(time.Millisecond), runtime.NumCPU(), 100*(best.Seconds()-bestRef.Seconds())/bestRef.Seconds())
		return nil
	})
}
