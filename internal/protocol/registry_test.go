package protocol

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestRegistryDigest(t *testing.T) {
	a := Registry{"double": "func(context.Context, int) (int, error)", "concat": "func(context.Context, []string) (string, error)"}
	b := Registry{"concat": "func(context.Context, []string) (string, error)", "double": "func(context.Context, int) (int, error)"}
	if a.Digest() != b.Digest() {
		t.Fatal("equal registries have different digests")
	}
	for _, other := range []Registry{
		{"double": "func(context.Context, int) (int, error)"},
		{"double": "func(context.Context, int) (int64, error)", "concat": a["concat"]},
		{"doubled": a["double"], "concat": a["concat"]},
		{},
	} {
		if other.Digest() == a.Digest() {
			t.Fatalf("%v has the digest of %v", other, a)
		}
	}
	// Entries cannot run into each other, whatever they hold.
	for _, pair := range [][2]Registry{
		{{"ab": "c"}, {"a": "bc"}},
		{{"a\x00b": "c"}, {"a": "b\x00c"}},
		{{"a": "b", "c": "d"}, {"a": "b\x00c\x00d"}},
		{{"1:a": "b"}, {"1": "a1:b"}},
	} {
		if pair[0].Digest() == pair[1].Digest() {
			t.Fatalf("%q and %q have one digest", pair[0], pair[1])
		}
	}
	if (Registry{}).Digest() != Registry(nil).Digest() {
		t.Fatal("an empty and a nil registry differ")
	}
}

func mustEncode(t *testing.T, j *Job) []byte {
	t.Helper()
	b, err := j.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJobJSONWithFrozenRegistry: a manifest whose registry was frozen reads
// back as the same job as one encoded field by field; a registry replaced
// after SetRegistry is the one encoded.
func TestJobJSONWithFrozenRegistry(t *testing.T) {
	reg := Registry{"double": "func(context.Context, int) (int, error)", "pi": "func(context.Context, int) (float64, error)"}
	f := Freeze(reg)
	reg["later"] = "changed after freezing" // Freeze copied it
	newJob := func() *Job {
		return &Job{Version: Version, ExecutorID: "e", JobID: "A000", Function: "double", Signature: reg["double"], Codec: "gob",
			Calls: 1, Timeout: 60, Bucket: "b", Inputs: []Range{{Offset: 0, Size: 3}}, Created: time.Unix(1700000000, 5).UTC(),
			InputsInline: true, InlineInputs: []byte{1, 2, 3}}
	}
	frozen := newJob()
	frozen.SetRegistry(f)
	plain := newJob()
	plain.Registry, plain.RegistryDigest = Registry{"double": reg["double"], "pi": reg["pi"]}, f.Digest()

	decode := func(j *Job) *Job {
		t.Helper()
		raw, err := j.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseJob(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return got
	}
	got, want := decode(frozen), decode(plain)
	if raw, _ := json.Marshal(plain); !bytes.Equal(mustEncode(t, plain), raw) {
		t.Fatal("Encode of a job without a frozen registry differs from json.Marshal")
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("frozen registry's manifest reads back as\n%+v\nwant\n%+v", got, want)
	}
	if got.Registry.Digest() != f.Digest() || got.RegistryDigest != f.Digest() {
		t.Fatal("the registry read back does not have its digest")
	}
	if _, ok := got.Registry["later"]; ok {
		t.Fatal("a change after freezing reached the manifest")
	}

	frozen.Registry = Registry{"other": "func(context.Context, int) (int, error)"}
	got = decode(frozen)
	if !reflect.DeepEqual(got.Registry, frozen.Registry) {
		t.Fatalf("a replaced registry encodes as %v, want %v", got.Registry, frozen.Registry)
	}
	if got.RegistryDigest != frozen.Registry.Digest() {
		t.Fatalf("a replaced registry is stored with digest %q, want its own %q", got.RegistryDigest, frozen.Registry.Digest())
	}
}
