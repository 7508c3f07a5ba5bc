// Command groupby sums and counts a CSV's values per key with MapShuffle:
// mappers parse line-aligned chunks of the CSV and emit (key, value), a
// combiner folds each key's values on the mapper, and R reducers each get
// their keys in order with all of their partial sums. The output is read
// back in key order.
//
//	go run ./examples/groupby                        # a skewed sample it writes first
//	go run ./examples/groupby -reducers 8 localhost://storage/sales/
//
// Each line of the CSV is "key,value" (value a decimal number); lines that
// do not parse are counted as bad and skipped.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"iter"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/lithops-go/lithops"
)

// Agg is a key's partial aggregate: what mappers emit and reducers output.
type Agg struct {
	Sum   float64
	Count int64
}

// parse emits one (key, Agg) per good line of a chunk; the combiner folds
// them per key before they leave the mapper.
var parse = lithops.MapperFunc("groupby_parse", func(ctx context.Context, c lithops.ObjectChunk, emit func(string, Agg)) error {
	rc, err := c.Open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ",")
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if !ok || err != nil {
			emit("(bad line)", Agg{Count: 1})
			continue
		}
		emit(strings.TrimSpace(key), Agg{Sum: v, Count: 1})
	}
	return sc.Err()
}, lithops.WithCombiner(combine))

func combine(ctx context.Context, key string, aggs iter.Seq[Agg]) (Agg, error) {
	var t Agg
	for a := range aggs {
		t.Sum += a.Sum
		t.Count += a.Count
	}
	return t, nil
}

// total is the reducer: the same fold over every mapper's partial sums.
var total = lithops.ReducerFunc("groupby_total", combine)

func main() {
	reducers := flag.Int("reducers", 4, "reducers")
	chunk := flag.Int64("chunk", 1<<20, "chunk size in bytes")
	flag.Parse()
	lithops.Main(func(ctx context.Context) error {
		fexec, err := lithops.NewExecutor(ctx)
		if err != nil {
			return err
		}
		defer fexec.Close()
		uris := flag.Args()
		if len(uris) == 0 {
			st := fexec.Storage()
			key := "examples/groupby/sales.csv"
			if err := st.PutBytes(ctx, st.Bucket(), key, sample()); err != nil {
				return err
			}
			defer st.Delete(context.WithoutCancel(ctx), st.Bucket(), key)
			uris = []string{st.Bucket() + "/" + key}
		}
		chunks, err := fexec.Partition(ctx, uris, lithops.ChunkSize(*chunk))
		if err != nil {
			return err
		}
		sh, err := lithops.MapShuffle(ctx, fexec, parse, chunks, total, lithops.Reducers(*reducers))
		if err != nil {
			return err
		}
		fmt.Printf("%-12s %12s %14s %10s\n", "key", "count", "sum", "mean")
		for key, a := range sh.All(ctx) {
			fmt.Printf("%-12s %12d %14.2f %10.2f\n", key, a.Count, a.Sum, a.Sum/float64(max(a.Count, 1)))
		}
		return sh.Err()
	})
}

// sample is a CSV of 200,000 sales over 50 stores, half of them at one
// store (a skewed key).
func sample() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for range 200_000 {
		store := "store-00"
		if r.IntN(2) == 0 {
			store = fmt.Sprintf("store-%02d", r.IntN(50))
		}
		fmt.Fprintf(&b, "%s,%d.%02d\n", store, r.IntN(100), r.IntN(100))
	}
	return []byte(b.String())
}
