package shuffle

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSorter writes pairs through a Sorter (with and without spills, with
// and without a combiner) and reads every segment back: each is sorted,
// holds only its partition's keys, and all pairs are there.
func TestSorter(t *testing.T) {
	tests := []struct {
		name    string
		codec   string
		limit   int64
		combine bool
		spills  bool
	}{
		{"gob in memory", "gob", 0, false, false},
		{"gob spills", "gob", 2000, false, true},
		{"json spills", "json", 2000, false, true},
		{"gob spills combined", "gob", 2000, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const parts, n = 4, 3000
			bounds := []string{"k1", "k4", "k7"}
			s := &Sorter[string, int]{Parts: parts, Limit: tt.limit, Dir: t.TempDir(), Codec: tt.codec,
				Partition: func(k string) int { return RangePartition(bounds, k) },
				SizeOf:    func(k string, _ int) int64 { return int64(len(k)) + 24 }}
			if tt.combine {
				s.Combine = func(k string, vs func(func(int) bool)) (int, error) {
					sum := 0
					for v := range vs {
						sum += v
					}
					return sum, nil
				}
			}
			r := rand.New(rand.NewPCG(1, 2))
			want := map[string]int{}
			for range n {
				k := fmt.Sprintf("k%d", r.IntN(100))
				want[k]++
				if err := s.Add(k, 1); err != nil {
					t.Fatal(err)
				}
			}
			var obj bytes.Buffer
			offs, err := s.WriteSegments(&obj)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := s.Spills() > 0; got != tt.spills {
				t.Errorf("spilled %d runs, want spills %v", s.Spills(), tt.spills)
			}
			got := map[string]int{}
			for p := range parts {
				rd, err := NewReader[string, int](tt.codec, bytes.NewReader(obj.Bytes()[offs[p]:offs[p+1]]))
				if err != nil {
					t.Fatal(err)
				}
				var prev string
				for i := 0; ; i++ {
					k, v, err := rd.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if i > 0 && k < prev || tt.combine && i > 0 && k == prev {
						t.Fatalf("partition %d: %q after %q", p, k, prev)
					}
					if RangePartition(bounds, k) != p {
						t.Fatalf("key %q in partition %d", k, p)
					}
					prev = k
					got[k] += v
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("counts differ:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TestGroupsSkew: one key with most of the values streams through the
// iterator; a consumer that stops early skips the rest of its key.
func TestGroupsSkew(t *testing.T) {
	var a, b []Pair[int, int]
	for i := range 10000 {
		a = append(a, Pair[int, int]{7, i})
	}
	b = append(b, Pair[int, int]{1, -1}, Pair[int, int]{7, -2}, Pair[int, int]{9, -3})
	m := NewMerger([]Source[int, int]{Slice(a), Slice(b)})
	var keys []int
	var counts []int
	err := Groups(m, func(k int, vs func(func(int) bool)) error {
		keys = append(keys, k)
		n := 0
		for range vs {
			n++
			if k == 9 && n == 1 {
				break
			}
		}
		counts = append(counts, n)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []int{1, 7, 9}) || !slices.Equal(counts, []int{1, 10001, 1}) {
		t.Errorf("keys %v counts %v", keys, counts)
	}
}

func TestBoundsAndHash(t *testing.T) {
	var s []int
	for i := range 1000 {
		s = append(s, 999-i)
	}
	b := Bounds(s, 4)
	if !slices.Equal(b, []int{250, 500, 750}) {
		t.Errorf("Bounds = %v", b)
	}
	for _, tc := range []struct{ k, p int }{{0, 0}, {249, 0}, {250, 1}, {999, 3}} {
		if p := RangePartition(b, tc.k); p != tc.p {
			t.Errorf("RangePartition(%d) = %d, want %d", tc.k, p, tc.p)
		}
	}
	h := Hasher[float64]()
	if h(0) != h(-1*0.0) || h(1) == h(2) {
		t.Error("float hash")
	}
	hs := Hasher[string]()
	if hs("a") != hs("a") || hs("a") == hs("b") {
		t.Error("string hash")
	}
}

// TestRawFraming: string keys with string or byte-slice values are framed
// raw, empty values included, and a cut segment is an error, not an end.
func TestRawFraming(t *testing.T) {
	type name string
	if !Raw[string, []byte]() || !Raw[name, string]() || Raw[string, int]() || Raw[int, string]() {
		t.Fatal("Raw picks the wrong types")
	}
	pairs := []Pair[name, []byte]{{"", nil}, {"a", []byte("x")}, {"b", bytes.Repeat([]byte("y"), 300)}}
	var b bytes.Buffer
	w, err := NewWriter[name, []byte]("gob", &b)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		if err := w.Write(p.K, p.V); err != nil {
			t.Fatal(err)
		}
	}
	for _, cut := range []int{b.Len(), b.Len() - 1} {
		r, err := NewReader[name, []byte]("json", bytes.NewReader(b.Bytes()[:cut])) // raw, whatever the codec
		if err != nil {
			t.Fatal(err)
		}
		var got []Pair[name, []byte]
		for {
			k, v, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				got = append(got, Pair[name, []byte]{"error", nil})
				break
			}
			got = append(got, Pair[name, []byte]{k, v})
		}
		want := fmt.Sprint(pairs)
		if cut < b.Len() {
			want = fmt.Sprint(append(pairs[:2:2], Pair[name, []byte]{"error", nil}))
		}
		if fmt.Sprint(got) != want {
			t.Errorf("cut at %d: got %v, want %v", cut, got, want)
		}
	}
}
