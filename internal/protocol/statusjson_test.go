package protocol

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// TestStatusEncodeIsJSONMarshal: Status.Encode makes json.Marshal's bytes,
// or fails where it fails, for statuses whose every exported field, down
// to error chains, is random: a field added to Status, ErrorRecord or
// ErrorLink and not to Encode fails here.
func TestStatusEncodeIsJSONMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	fails := 0
	for i := range 20000 {
		var st Status
		fill(r, reflect.ValueOf(&st).Elem())
		want, werr := json.Marshal(&st)
		got, gerr := st.Encode()
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("status %d %+v: json.Marshal error %v, Encode error %v", i, st, werr, gerr)
		}
		if werr != nil {
			fails++
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("status %d:\nEncode       %s\njson.Marshal %s", i, got, want)
		}
	}
	if fails == 0 || fails > 5000 {
		t.Fatalf("%d of 20000 statuses could not be encoded; want some (years past 9999), not most", fails)
	}
}

// TestStatusBatchEncodeIsJSONMarshal: the same for batch and block
// records, fences (no statuses) included.
func TestStatusBatchEncodeIsJSONMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 5000 {
		var b StatusBatch
		fill(r, reflect.ValueOf(&b).Elem())
		want, werr := json.Marshal(&b)
		got, gerr := b.Encode()
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("batch %d: json.Marshal error %v, Encode error %v", i, werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("batch %d:\nEncode       %s\njson.Marshal %s", i, got, want)
		}
	}
}

var testStrings = []string{"", "00000", "plain text", "<a href=x>&amp;</a>", `quote " and \ backslash`,
	"\x00\x01\x1f\t\n\r\b\f\x7f", "line\u2028para\u2029", "bad \xff\xfe utf-8", "héllo ✓ 日本", "\xe2\x80", "panic: boom\n\ngoroutine 1 [running]:\nmain.main()"}

// fill sets every exported field of v at random.
func fill(r *rand.Rand, v reflect.Value) {
	if v.Type() == reflect.TypeFor[time.Time]() {
		var t time.Time
		switch r.IntN(12) {
		case 0: // zero
		case 1:
			t = time.Unix(r.Int64N(4e9), r.Int64N(1e9)).UTC()
		case 2:
			t = time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(time.FixedZone("x", (r.IntN(48)-24)*1800))
		case 3:
			t = time.Unix(r.Int64N(4e9), 0).Local()
		default:
			t = time.Unix(r.Int64N(4e9), r.Int64N(1e9))
		case 4:
			t = time.Date(9990+r.IntN(20), 1, 1, 0, 0, 0, r.IntN(1e9), time.UTC) // past 9999: no JSON
		}
		v.Set(reflect.ValueOf(t))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(testStrings[r.IntN(len(testStrings))])
	case reflect.Int, reflect.Int64:
		if r.IntN(3) > 0 {
			v.SetInt(r.Int64N(1<<40) - 1<<39)
		} else {
			v.SetInt(0)
		}
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Pointer:
		if r.IntN(2) == 0 {
			p := reflect.New(v.Type().Elem())
			fill(r, p.Elem())
			v.Set(p)
		}
	case reflect.Slice:
		switch n := r.IntN(4); {
		case n == 0: // nil
		default:
			s := reflect.MakeSlice(v.Type(), n-1, n-1) // sometimes empty, not nil
			for i := range n - 1 {
				if s.Index(i).Kind() == reflect.Uint8 {
					s.Index(i).SetUint(uint64(r.IntN(256)))
				} else {
					fill(r, s.Index(i))
				}
			}
			v.Set(s)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(r, v.Field(i))
			}
		}
	default:
		panic("fill: no case for " + v.Type().String())
	}
}
