package lithops_test

import (
	"bufio"
	"context"
	"testing"

	"github.com/lithops-go/lithops"
)

// wcChunks is word count's mapper over Partition's chunks.
var wcChunks = lithops.MapperFunc("test_wc_chunks", func(ctx context.Context, c lithops.ObjectChunk, emit func(string, int)) error {
	rc, err := c.Open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sc.Split(bufio.ScanWords)
	for sc.Scan() {
		emit(sc.Text(), 1)
	}
	return sc.Err()
})

// TestMapShuffleChunks shuffles Partition's chunks of objects, on the
// localhost storage and on Azure Blob (Azurite), with range reads of the
// segments and sorted output: every word is counted once.
func TestMapShuffleChunks(t *testing.T) {
	tests := []struct {
		name   string
		config func(*testing.T) *lithops.Executor
	}{
		{"localhost", func(t *testing.T) *lithops.Executor { return newExecutor(t) }},
		{"azurite", func(t *testing.T) *lithops.Executor {
			return newExecutor(t, lithops.WithConfig(azuriteConfig(t)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			e := tt.config(t)
			st := e.Storage()
			_, _, truth := dataset(t, e, "__lithops.test/shuffle/")
			defer st.DeletePrefix(context.Background(), st.Bucket(), "__lithops.test/shuffle/")
			chunks, err := e.Partition(ctx, []string{st.Backend() + "://" + st.Bucket() + "/__lithops.test/shuffle/"}, lithops.ChunkSize(640000))
			if err != nil {
				t.Fatal(err)
			}
			sh, err := lithops.MapShuffle(ctx, e, wcChunks, chunks, wcReducer, lithops.Reducers(4), lithops.SortedOutput())
			if err != nil {
				t.Fatal(err)
			}
			total, keys := 0, 0
			prev := ""
			for w, n := range sh.All(ctx) {
				if keys > 0 && w <= prev {
					t.Fatalf("%q after %q", w, prev)
				}
				prev = w
				total += n
				keys++
			}
			if err := sh.Err(); err != nil {
				t.Fatal(err)
			}
			if total != truth || keys == 0 {
				t.Errorf("%d words in %d keys, want %d words", total, keys, truth)
			}
			stats, _ := sh.Stats(ctx)
			if stats.Bounds != 3 {
				t.Errorf("%d range bounds, want 3", stats.Bounds)
			}
		})
	}
}
