package lithops

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/memory"
)

// readChunks partitions bucket/key and returns every chunk's bytes.
func readChunks(t testing.TB, st *storage.Storage, key string, opts ...PartitionOption) [][]byte {
	t.Helper()
	ctx := context.Background()
	chunks, err := partition(ctx, st, []string{"b/" + key}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, len(chunks))
	for i, c := range chunks {
		rc, err := c.OpenFrom(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		out[i], err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	return out
}

func memStorage(t testing.TB) *storage.Storage {
	st := storage.New(memory.New(), "memory", "b")
	st.CreateBucket(context.Background(), "b")
	return st
}

// checkExact asserts that the chunks are whole lines and concatenate to data:
// every line is seen by exactly one chunk, none lost, none duplicated.
func checkExact(t testing.TB, data []byte, chunks [][]byte, what string) {
	t.Helper()
	if got := bytes.Join(chunks, nil); !bytes.Equal(got, data) {
		t.Fatalf("%s: chunks concatenate to %q, want %q (chunks %q)", what, got, data, chunks)
	}
	// A chunk that does not end a line holds the object's last line: only
	// empty chunks may follow it.
	for i, c := range chunks {
		if len(c) > 0 && c[len(c)-1] != '\n' {
			for j, d := range chunks[i+1:] {
				if len(d) > 0 {
					t.Fatalf("%s: chunk %d %q does not end a line, yet chunk %d follows with %q", what, i, c, i+1+j, d)
				}
			}
		}
	}
}

func TestChunkEdgeCases(t *testing.T) {
	st := memStorage(t)
	ctx := context.Background()
	cases := map[string]string{
		"empty":            "",
		"one byte":         "a",
		"one newline":      "\n",
		"no trailing nl":   "alpha beta\ngamma",
		"trailing nl":      "alpha beta\ngamma\n",
		"boundary on nl":   "abc\ndef\nghi\n", // chunk size 4: offsets 4, 8 start lines
		"crlf":             "one\r\ntwo\r\nthree\r\n",
		"long line":        "short\n" + string(bytes.Repeat([]byte("x"), 300)) + "\nend\n",
		"only newlines":    "\n\n\n\n\n",
		"long no newlines": string(bytes.Repeat([]byte("y"), 100)),
	}
	for name, data := range cases {
		st.PutBytes(ctx, "b", name, []byte(data))
		for _, cs := range []int64{1, 2, 3, 4, 5, 7, 64, 1000} {
			checkExact(t, []byte(data), readChunks(t, st, name, ChunkSize(cs)), fmt.Sprintf("%s, chunk size %d", name, cs))
		}
		for _, n := range []int{1, 2, 3, 10} {
			chunks := readChunks(t, st, name, ChunkNumber(n))
			if len(chunks) != n {
				t.Fatalf("%s: ChunkNumber(%d) gave %d chunks", name, n, len(chunks))
			}
			checkExact(t, []byte(data), chunks, fmt.Sprintf("%s, %d chunks", name, n))
		}
		if c := readChunks(t, st, name); len(c) != 1 {
			t.Fatalf("%s: default gave %d chunks, want 1", name, len(c))
		}
	}
}

func TestChunkCounts(t *testing.T) {
	st := memStorage(t)
	ctx := context.Background()
	st.PutBytes(ctx, "b", "d/x", bytes.Repeat([]byte("a\n"), 1000)) // 2000 bytes
	st.PutBytes(ctx, "b", "d/y", []byte("z"))
	st.PutBytes(ctx, "b", "d/z", nil)
	tests := []struct {
		opt  PartitionOption
		want int
	}{
		{ChunkSize(640), 4 + 1 + 1},
		{ChunkSize(2000), 1 + 1 + 1},
		{ChunkSize(1999), 2 + 1 + 1},
		{ChunkNumber(3), 9},
	}
	for _, tc := range tests {
		chunks, err := partition(ctx, st, []string{"memory://b/d/"}, tc.opt)
		if err != nil || len(chunks) != tc.want {
			t.Fatalf("got %d chunks, %v; want %d", len(chunks), err, tc.want)
		}
	}
	for _, bad := range [][]string{{"b/missing"}, {"b/nothing/"}, {"other://b/d/"}, {"nobucket/x"}, {}} {
		if _, err := partition(ctx, st, bad); err == nil {
			t.Errorf("partition %q: no error", bad)
		}
	}
	if _, err := partition(ctx, st, []string{"b/d/"}, ChunkSize(1), ChunkNumber(2)); err == nil {
		t.Error("ChunkSize and ChunkNumber together: no error")
	}
}

// TestChunkProperty: for random contents and random chunk sizes, the chunks'
// lines concatenated equal the object's lines.
func TestChunkProperty(t *testing.T) {
	st := memStorage(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab \n\r\n")
	for i := 0; i < 300; i++ {
		n := r.IntN(400)
		if i%10 == 0 {
			n = r.IntN(3)
		}
		data := make([]byte, n)
		for j := range data {
			data[j] = alphabet[r.IntN(len(alphabet))]
		}
		if r.IntN(4) == 0 { // some long lines
			data = append(data, bytes.Repeat([]byte("L"), r.IntN(300))...)
		}
		key := fmt.Sprintf("p%d", i)
		st.PutBytes(ctx, "b", key, data)
		cs := int64(1 + r.IntN(len(data)+3))
		checkExact(t, data, readChunks(t, st, key, ChunkSize(cs)), fmt.Sprintf("case %d size %d", i, cs))
		k := 1 + r.IntN(12)
		checkExact(t, data, readChunks(t, st, key, ChunkNumber(k)), fmt.Sprintf("case %d number %d", i, k))
	}
}

func FuzzChunks(f *testing.F) {
	f.Add([]byte("alpha beta\ngamma"), uint16(3))
	f.Add([]byte("\n\n\r\n"), uint16(1))
	f.Add([]byte(""), uint16(5))
	f.Add([]byte("x"), uint16(1))
	st := memStorage(f)
	f.Fuzz(func(t *testing.T, data []byte, size uint16) {
		if size == 0 {
			size = 1
		}
		st.PutBytes(context.Background(), "b", "f", data)
		checkExact(t, data, readChunks(t, st, "f", ChunkSize(int64(size))), "fuzz")
	})
}

// lookahead is crossed: a line longer than the lookahead needs a second
// request, and memory stays bounded by the buffer.
func TestChunkLongLineBeyondLookahead(t *testing.T) {
	st := memStorage(t)
	data := append(bytes.Repeat([]byte("q"), 3*lookahead), '\n')
	data = append(data, []byte("tail\n")...)
	st.PutBytes(context.Background(), "b", "long", data)
	checkExact(t, data, readChunks(t, st, "long", ChunkSize(10)), "long line")
}

// TestChunkReaderBoundedMemory: reading a 64 MiB chunk allocates a buffer's
// worth, not the chunk.
func TestChunkReaderBoundedMemory(t *testing.T) {
	st := memStorage(t)
	ctx := context.Background()
	line := []byte("the quick brown fox jumps over the lazy dog\n")
	data := bytes.Repeat(line, (64<<20)/len(line))
	st.PutBytes(ctx, "b", "big", data)
	chunks, err := partition(ctx, st, []string{"b/big"}, ChunkNumber(2))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var total int64
	for _, c := range chunks {
		rc, err := c.OpenFrom(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	runtime.ReadMemStats(&after)
	if total != int64(len(data)) {
		t.Fatalf("read %d bytes, want %d", total, len(data))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Fatalf("reading 64 MiB of chunks allocated %d bytes", alloc)
	}
}
