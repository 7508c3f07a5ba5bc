// Command wordcount counts the words of every object under a storage prefix
// with a map-reduce over line-aligned chunks, and prints the top words.
//
//	go run ./examples/wordcount                       # counts a sample it writes first
//	go run ./examples/wordcount -chunk 1048576 localhost://storage/mydata/
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/lithops-go/lithops"
)

// countWords counts the words of one chunk.
var countWords = lithops.Func("wordcount_map", func(ctx context.Context, c lithops.ObjectChunk) (map[string]int, error) {
	rc, err := c.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, w := range bytes.Fields(data) {
		counts[strings.ToLower(string(w))]++
	}
	return counts, nil
})

// merge adds up the per-chunk counts.
var merge = lithops.Func("wordcount_reduce", func(ctx context.Context, parts []map[string]int) (map[string]int, error) {
	total := map[string]int{}
	for _, p := range parts {
		for w, n := range p {
			total[w] += n
		}
	}
	return total, nil
})

const sample = `It was the best of times, it was the worst of times,
it was the age of wisdom, it was the age of foolishness,
it was the epoch of belief, it was the epoch of incredulity,
it was the season of Light, it was the season of Darkness,
it was the spring of hope, it was the winter of despair.
`

func main() {
	top := flag.Int("n", 10, "how many top words to print")
	chunk := flag.Int64("chunk", 0, "chunk size in bytes (0: one chunk per object)")
	flag.Parse()
	uris := flag.Args()
	lithops.Main(func(ctx context.Context) error {
		fexec, err := lithops.NewExecutor(ctx)
		if err != nil {
			return err
		}
		defer fexec.Close()
		if len(uris) == 0 {
			st := fexec.Storage()
			for i := 0; i < 3; i++ {
				key := fmt.Sprintf("examples/wordcount/part-%d.txt", i)
				if err := st.PutBytes(ctx, st.Bucket(), key, []byte(strings.Repeat(sample, i+1))); err != nil {
					return err
				}
			}
			uris = []string{st.Bucket() + "/examples/wordcount/"}
		}
		var opts []lithops.PartitionOption
		if *chunk > 0 {
			opts = append(opts, lithops.ChunkSize(*chunk))
		}
		chunks, err := fexec.Partition(ctx, uris, opts...)
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
		words := make([]string, 0, len(counts))
		for w := range counts {
			words = append(words, w)
		}
		sort.Slice(words, func(i, j int) bool {
			if counts[words[i]] != counts[words[j]] {
				return counts[words[i]] > counts[words[j]]
			}
			return words[i] < words[j]
		})
		fmt.Printf("%d chunks, %d distinct words\n", len(chunks), len(words))
		for _, w := range words[:min(*top, len(words))] {
			fmt.Printf("%8d  %s\n", counts[w], w)
		}
		return nil
	})
}
