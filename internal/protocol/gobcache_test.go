package protocol

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

type gobPoint struct {
	X, Y int
	Tags []string
}

type gobShape interface{ Area() int }

type gobSquare struct{ Side int }

func (s gobSquare) Area() int { return s.Side * s.Side }

type gobCircle struct{ R int }

func (c gobCircle) Area() int { return 3 * c.R * c.R }

func init() {
	gob.Register(gobSquare{})
	gob.Register(gobCircle{})
}

type gobEnv[T any] struct{ V T }

// freshDecode is what Unmarshal did before the cache.
func freshDecode(data []byte, v any) error { return gob.NewDecoder(bytes.NewReader(data)).Decode(v) }

// TestGobCachedDecodeMatchesFresh: values decoded through the cache equal
// those a fresh decoder gives, for the same type many times and for types
// interleaved, interface values with changing concrete types included.
func TestGobCachedDecodeMatchesFresh(t *testing.T) {
	values := []any{
		gobEnv[int]{7}, gobEnv[int]{-1}, gobEnv[string]{"héllo"}, gobEnv[int]{0},
		gobEnv[gobPoint]{gobPoint{1, 2, []string{"a"}}}, gobEnv[*gobPoint]{&gobPoint{X: 3}}, gobEnv[*gobPoint]{nil},
		gobEnv[map[string][]float64]{map[string][]float64{"a": {1.5}}}, gobEnv[[]byte]{[]byte{0, 1, 2}},
		gobEnv[gobShape]{gobSquare{2}}, gobEnv[gobShape]{gobCircle{3}}, gobEnv[any]{gobSquare{4}}, gobEnv[any]{42},
		gobEnv[gobPoint]{gobPoint{X: 5}}, gobEnv[int]{1 << 40}, gobEnv[[]any]{[]any{gobCircle{1}, "s", 2.5}},
	}
	for round := range 3 {
		for i, v := range values {
			data, err := Gob.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			got := reflect.New(reflect.TypeOf(v))
			want := reflect.New(reflect.TypeOf(v))
			if err := Gob.Unmarshal(data, got.Interface()); err != nil {
				t.Fatalf("round %d value %d (%#v): %v", round, i, v, err)
			}
			if err := freshDecode(data, want.Interface()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Elem().Interface(), want.Elem().Interface()) || !reflect.DeepEqual(got.Elem().Interface(), v) {
				t.Fatalf("round %d value %d: cached %#v, fresh %#v, sent %#v", round, i, got.Elem().Interface(), want.Elem().Interface(), v)
			}
		}
	}
}

// TestGobCachedDecodeBadInput: damaged streams fail as a fresh decoder
// fails (never a panic), and a failure leaves later values decodable.
func TestGobCachedDecodeBadInput(t *testing.T) {
	good, _ := Gob.Marshal(gobEnv[gobPoint]{gobPoint{X: 1, Y: 2}})
	// Cache the definitions first.
	var p gobEnv[gobPoint]
	if err := Gob.Unmarshal(good, &p); err != nil {
		t.Fatal(err)
	}
	split, ok := gobValueStart(good)
	if !ok || split == 0 {
		t.Fatalf("gobValueStart(%x) = %d, %v", good, split, ok)
	}
	damaged := map[string][]byte{
		"empty":            {},
		"truncated value":  good[:len(good)-1],
		"definitions only": good[:split],
		"value bytes flipped": func() []byte {
			b := bytes.Clone(good)
			for i := split + 2; i < len(b); i++ {
				b[i] ^= 0xff
			}
			return b
		}(),
		"two values":   append(bytes.Clone(good), good[split:]...),
		"garbage":      []byte("not gob at all"),
		"huge count":   {0xf8, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"wrong target": nil, // below
	}
	for name, b := range damaged {
		if name == "wrong target" {
			continue
		}
		var got, want gobEnv[gobPoint]
		gotErr, wantErr := Gob.Unmarshal(b, &got), freshDecode(b, &want)
		if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: cached %v (%+v), fresh %v (%+v)", name, gotErr, got, wantErr, want)
		}
	}
	var s gobEnv[string]
	gotErr, wantErr := Gob.Unmarshal(good, &s), freshDecode(good, &s)
	if gotErr == nil || wantErr == nil || gotErr.Error() != wantErr.Error() {
		t.Errorf("wrong target: cached %v, fresh %v", gotErr, wantErr)
	}
	p = gobEnv[gobPoint]{}
	if err := Gob.Unmarshal(good, &p); err != nil || p.V.Y != 2 {
		t.Fatalf("after the failures: %+v, %v", p, err)
	}
}

// TestGobCachedDecodeConcurrent decodes many values of a few types at once
// (run with -race).
func TestGobCachedDecodeConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				data, _ := Gob.Marshal(gobEnv[gobPoint]{gobPoint{X: g, Y: i, Tags: []string{fmt.Sprint(i)}}})
				var p gobEnv[gobPoint]
				if err := Gob.Unmarshal(data, &p); err != nil || p.V.X != g || p.V.Y != i || p.V.Tags[0] != fmt.Sprint(i) {
					t.Errorf("goroutine %d value %d: %+v, %v", g, i, p, err)
					return
				}
				data, _ = Gob.Marshal(gobEnv[int]{i})
				var n gobEnv[int]
				if err := Gob.Unmarshal(data, &n); err != nil || n.V != i {
					t.Errorf("goroutine %d int %d: %v, %v", g, i, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzGobUnmarshal(f *testing.F) {
	for _, v := range []any{gobEnv[int]{3}, gobEnv[gobPoint]{gobPoint{1, 2, []string{"x"}}}, gobEnv[any]{gobSquare{1}}} {
		b, _ := Gob.Marshal(v)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got, want gobEnv[gobPoint]
		gotErr, wantErr := Gob.Unmarshal(b, &got), freshDecode(b, &want)
		if (gotErr == nil) != (wantErr == nil) || (gotErr == nil && !reflect.DeepEqual(got, want)) {
			t.Fatalf("cached %v (%+v), fresh %v (%+v)", gotErr, got, wantErr, want)
		}
	})
}

func BenchmarkGobUnmarshal(b *testing.B) {
	data, _ := Gob.Marshal(gobEnv[int]{42})
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			var v gobEnv[int]
			freshDecode(data, &v)
		}
	})
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			var v gobEnv[int]
			Gob.Unmarshal(data, &v)
		}
	})
}

// TestGobLargeValuesBypassCache: a value over maxCachedValue decodes with a
// fresh decoder, so no cached decoder keeps a buffer of its size.
func TestGobLargeValuesBypassCache(t *testing.T) {
	type big struct{ B []byte }
	data, _ := Gob.Marshal(gobEnv[big]{big{make([]byte, 2*maxCachedValue)}})
	var v gobEnv[big]
	if err := Gob.Unmarshal(data, &v); err != nil || len(v.V.B) != 2*maxCachedValue {
		t.Fatalf("%d bytes, %v", len(v.V.B), err)
	}
	split, _ := gobValueStart(data)
	gobDecoders.Lock()
	_, cached := gobDecoders.m[string(data[:split])]
	gobDecoders.Unlock()
	if cached {
		t.Error("a decoder that read a large value was cached")
	}
}

type gobTree struct {
	Name     string
	Children []*gobTree
}

type gobStamped struct {
	At   time.Time // encodes itself (GobEncoder)
	Vals [3]uint16
}

// TestGobCachedEncodeMatchesFresh: what Marshal writes through an encoder
// kept per type is what a fresh encoder writes, byte for byte, for every
// value of every type, interleaved; types with an interface in them and
// values gob refuses go to a fresh encoder, errors included.
func TestGobCachedEncodeMatchesFresh(t *testing.T) {
	values := []any{
		7, "héllo", gobPoint{1, 2, []string{"a"}}, &gobPoint{X: 3}, []byte{0, 1, 2}, gobPoint{},
		gobEnv[int]{-1}, gobEnv[[]gobPoint]{[]gobPoint{{X: 1}, {Y: 2, Tags: []string{"x", "y"}}}},
		gobTree{"root", []*gobTree{{Name: "leaf"}, {Name: "inner", Children: []*gobTree{{Name: "deep"}}}}},
		gobStamped{At: time.Date(2026, 11, 29, 17, 0, 0, 0, time.UTC), Vals: [3]uint16{1, 2, 3}},
		gobEnv[gobShape]{gobSquare{2}}, gobEnv[any]{42}, gobEnv[[]any]{[]any{gobCircle{1}, "s"}},
		1 << 40, gobTree{Name: "single"}, gobEnv[int]{0},
	}
	for round := range 3 {
		for i, v := range values {
			got, err := Gob.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			want, err := gobFresh(v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("round %d value %d (%#v): cached encoder wrote %x, a fresh one %x", round, i, v, got, want)
			}
			back := reflect.New(reflect.TypeOf(v))
			if err := freshDecode(got, back.Interface()); err != nil || !reflect.DeepEqual(back.Elem().Interface(), v) {
				t.Fatalf("round %d value %d: decodes to %#v (%v), want %#v", round, i, back.Elem().Interface(), err, v)
			}
		}
	}
	// Maps: entries in gob's random order, so compared decoded.
	m := gobEnv[map[string][]int]{map[string][]int{"a": {1}, "b": {2, 3}}}
	for range 3 {
		data, err := Gob.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back gobEnv[map[string][]int]
		if err := freshDecode(data, &back); err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("map decodes to %#v (%v)", back, err)
		}
	}
	// Refused values fail as a fresh encoder fails, and the type's next
	// value encodes.
	var nilPoint *gobPoint
	if _, err := Gob.Marshal(nilPoint); err == nil || !strings.Contains(err.Error(), "nil pointer") {
		t.Fatalf("a nil pointer: %v, want an error (gob panics)", err)
	}
	type withChan struct{ C chan int }
	if _, err := Gob.Marshal(withChan{}); err == nil {
		t.Fatal("a struct of a chan encoded")
	}
	if got, err := Gob.Marshal(&gobPoint{X: 9}); err != nil {
		t.Fatal(err)
	} else if want, _ := gobFresh(&gobPoint{X: 9}); !bytes.Equal(got, want) {
		t.Fatalf("after a refused value: %x, want %x", got, want)
	}
}

// TestGobCachedEncodeConcurrent: values of one type encoded at once each
// come out whole.
func TestGobCachedEncodeConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				v := gobPoint{X: g, Y: i, Tags: []string{fmt.Sprint(g, i)}}
				data, err := Gob.Marshal(v)
				var back gobPoint
				if err == nil {
					err = Gob.Unmarshal(data, &back)
				}
				if err != nil || !reflect.DeepEqual(back, v) {
					errs <- fmt.Errorf("goroutine %d value %d: %#v, %v", g, i, back, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func BenchmarkGobMarshal(b *testing.B) {
	v := gobEnv[gobPoint]{gobPoint{1, 2, []string{"a"}}}
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			gobFresh(v)
		}
	})
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			Gob.Marshal(v)
		}
	})
}
