package lithops_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
)

// countWords is Lithops' my_map_function_obj: the words of one chunk.
var countWords = lithops.Func("count_words", func(ctx context.Context, c lithops.ObjectChunk) (int, error) {
	rc, err := c.Open(ctx)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sc.Split(bufio.ScanWords)
	n := 0
	for sc.Scan() {
		n++
	}
	return n, sc.Err()
})

// wordsOfKey is Lithops' my_map_function_storage: it reads a whole object
// through the call's storage.
var wordsOfKey = lithops.Func("words_of_key", func(ctx context.Context, loc [2]string) (int, error) {
	b, err := lithops.StorageFrom(ctx).GetBytes(ctx, loc[1], loc[0])
	if err != nil {
		return 0, err
	}
	return len(strings.Fields(string(b))), nil
})

// dataset writes five text objects of different sizes under prefix and
// returns their sizes and the true number of words.
func dataset(t *testing.T, e *lithops.Executor, prefix string) (sizes []int64, keys []string, words int) {
	t.Helper()
	ctx := context.Background()
	st := e.Storage()
	r := rand.New(rand.NewPCG(7, 11))
	for i, size := range []int{180_000, 350_000, 660_000, 800_000, 1_200_000} {
		var b bytes.Buffer
		for b.Len() < size {
			nw := 1 + r.IntN(15)
			for w := 0; w < nw; w++ {
				if w > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "w%d", r.IntN(5000))
				words++
			}
			if i == 2 {
				b.WriteString("\r\n") // one object with CRLF line ends
			} else {
				b.WriteByte('\n')
			}
		}
		key := fmt.Sprintf("%sdata-%d.txt", prefix, i)
		if err := st.PutBytes(ctx, st.Bucket(), key, b.Bytes()); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, int64(b.Len()))
		keys = append(keys, key)
	}
	return sizes, keys, words
}

// callsSince sums the calls of the jobs after the first n.
func callsSince(e *lithops.Executor, n int) int {
	total := 0
	for _, j := range e.Jobs()[n:] {
		total += j.Calls
	}
	return total
}

func ceilDiv(a, b int64) int { return int((a + b - 1) / b) }

func TestMapReduceObjects(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	sizes, keys, truth := dataset(t, e, "__lithops.test/dataset/")
	bucket := e.Storage().Bucket()
	prefix := "localhost://" + bucket + "/__lithops.test/dataset/"
	var perKey []string
	for _, k := range keys {
		perKey = append(perKey, "localhost://"+bucket+"/"+k)
	}
	var byMiB int
	var by640 int
	for _, s := range sizes {
		by640 += ceilDiv(s, 640000)
		byMiB += ceilDiv(s, 1<<20)
	}
	tests := []struct {
		name      string
		uris      []string
		opts      []lithops.PartitionOption
		byKey     bool
		wantCalls int
	}{
		{"obj_bucket", []string{prefix}, nil, false, 5 + 1},
		{"obj_key", perKey, nil, false, 5 + 1},
		{"obj_bucket_reduce_by_key", []string{prefix}, nil, true, 5 + 5},
		{"obj_key_reduce_by_key", perKey, nil, true, 5 + 5},
		{"bucket_chunk_size", []string{prefix}, []lithops.PartitionOption{lithops.ChunkSize(640000)}, false, by640 + 1},
		{"bucket_chunk_number", []string{prefix}, []lithops.PartitionOption{lithops.ChunkNumber(2)}, false, 5*2 + 1},
		{"chunk_size_one_reducer_per_object", []string{prefix}, []lithops.PartitionOption{lithops.ChunkSize(1 << 20)}, true, byMiB + 5},
		{"chunk_number_one_reducer_per_object", []string{prefix}, []lithops.PartitionOption{lithops.ChunkNumber(2)}, true, 5*2 + 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.Jobs())
			chunks, err := e.Partition(ctx, tc.uris, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			var total int
			if tc.byKey {
				fs, err := lithops.MapReduceByKey(ctx, e, countWords, chunks, sumInts)
				if err != nil {
					t.Fatal(err)
				}
				res, err := fs.Results(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(res) != 5 {
					t.Fatalf("%d results, want one per object", len(res))
				}
				for _, r := range res {
					total += r
				}
			} else {
				f, err := lithops.MapReduce(ctx, e, countWords, chunks, sumInts)
				if err != nil {
					t.Fatal(err)
				}
				if total, err = f.Result(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if total != truth {
				t.Errorf("counted %d words, want %d", total, truth)
			}
			if got := callsSince(e, before); got != tc.wantCalls {
				t.Errorf("%d calls (map + reduce), want %d", got, tc.wantCalls)
			}
		})
	}

	t.Run("url_processing", func(t *testing.T) {
		st := e.Storage()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := strings.TrimPrefix(r.URL.Path, "/")
			b, err := st.GetBytes(r.Context(), bucket, key)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			http.ServeContent(w, r, key, time.Time{}, bytes.NewReader(b)) // answers Range requests
		}))
		defer srv.Close()
		var urls []string
		for _, k := range keys {
			urls = append(urls, srv.URL+"/"+k)
		}
		chunks, err := e.Partition(ctx, urls, lithops.ChunkNumber(2))
		if err != nil {
			t.Fatal(err)
		}
		if len(chunks) != 10 {
			t.Fatalf("%d chunks, want 10", len(chunks))
		}
		f, err := lithops.MapReduce(ctx, e, countWords, chunks, sumInts)
		if err != nil {
			t.Fatal(err)
		}
		if total, err := f.Result(ctx); err != nil || total != truth {
			t.Fatalf("counted %d words, %v; want %d", total, err, truth)
		}
		if _, err := e.Partition(ctx, []string{srv.URL + "/missing"}); err == nil {
			t.Fatal("missing URL: no error")
		}
	})
}

// TestStorageHandler is Lithops' test_storage_handler: functions read their
// objects through StorageFrom(ctx).
func TestStorageHandler(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	st := e.Storage()
	st.PutBytes(ctx, st.Bucket(), "__lithops.test/storage/test0", []byte("test storage handler"))
	st.PutBytes(ctx, st.Bucket(), "__lithops.test/storage/test1", []byte("test storage"))
	in := [][2]string{{"__lithops.test/storage/test0", st.Bucket()}, {"__lithops.test/storage/test1", st.Bucket()}}
	f, err := lithops.MapReduce(ctx, e, wordsOfKey, in, sumInts)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.Result(ctx); err != nil || n != 5 {
		t.Fatalf("got %d, %v; want 5", n, err)
	}
}

// gatedSum is a reducer whose first call (call id 00000) holds until the
// client writes the object it waits for: reducers of one job finish in any
// order.
var gatedSum = lithops.Func("gated_sum", func(ctx context.Context, xs []int) (int, error) {
	if lithops.CallIDFrom(ctx) == "00000" {
		st := lithops.StorageFrom(ctx)
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := st.Head(ctx, st.Bucket(), "__lithops.test/release"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("never released")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	n := 0
	for _, x := range xs {
		n += x
	}
	return n, nil
})

// Each reducer future of MapReduceByKey reports running and completes on
// its own: reducer 1 finishes while reducer 0 still runs.
func TestReducerFuturesAreIndependent(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t, lithops.WithMaxWorkers(2))
	_, keys, _ := dataset(t, e, "__lithops.test/gated/")
	bucket := e.Storage().Bucket()
	chunks, err := e.Partition(ctx, []string{"localhost://" + bucket + "/" + keys[0], "localhost://" + bucket + "/" + keys[1]})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := lithops.MapReduceByKey(ctx, e, countWords, chunks, gatedSum)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.At(1).Result(ctx); err != nil {
		t.Fatalf("reducer 1 did not finish while reducer 0 ran: %v", err)
	}
	waitRunning(t, fs.At(0))
	if fs.At(0).Done() {
		t.Fatal("reducer 0 finished before it was released")
	}
	if err := e.Storage().PutBytes(ctx, bucket, "__lithops.test/release", nil); err != nil {
		t.Fatal(err)
	}
	if n, err := fs.At(0).Result(ctx); err != nil || n == 0 {
		t.Fatalf("reducer 0: %d, %v", n, err)
	}
	if fs.At(0).JobID() != fs.At(1).JobID() || fs.At(0).CallID() != "00000" || fs.At(1).CallID() != "00001" {
		t.Errorf("reducer ids: %s/%s, %s/%s", fs.At(0).JobID(), fs.At(0).CallID(), fs.At(1).JobID(), fs.At(1).CallID())
	}
}
