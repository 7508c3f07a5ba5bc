package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Registry maps registered function names to their Go signatures.
//
// Every job carries its client's registry, so that a worker can say how
// its program differs. A program's registry is fixed once registration
// closes, and can be large (every lithops.Func, two or three per shuffle):
// FrozenRegistry computes what each job needs of it once, and a worker is
// told it once per pipe (worker.PipeRequest.RegistryTold), not with every
// call.
type Registry map[string]string

// Diff describes how other (the worker's) differs from r (the client's), or
// returns "" when they are equal.
func (r Registry) Diff(other Registry) string {
	var d []string
	for n, sig := range r {
		o, ok := other[n]
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("function %q is registered in the client but not in the worker", n))
		case o != sig:
			d = append(d, fmt.Sprintf("function %q is %s in the client but %s in the worker", n, sig, o))
		}
	}
	for n := range other {
		if _, ok := r[n]; !ok {
			d = append(d, fmt.Sprintf("function %q is registered in the worker but not in the client", n))
		}
	}
	slices.Sort(d)
	return strings.Join(d, "; ")
}

// Digest names r's contents: registries with the same names and signatures
// have the same digest, and different ones differ (SHA-256 of the sorted
// entries, each part prefixed with its length, in hex).
func (r Registry) Digest() string {
	h := sha256.New()
	for _, n := range slices.Sorted(maps.Keys(r)) {
		fmt.Fprintf(h, "%d:%s%d:%s", len(n), n, len(r[n]), r[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// FrozenRegistry is a registry that no longer changes (a program's, once
// registration has closed), with its digest and JSON encoding computed
// once: every job carries it (Job.SetRegistry).
type FrozenRegistry struct {
	reg    Registry
	digest string
	json   json.RawMessage
}

// Freeze copies r into a FrozenRegistry.
func Freeze(r Registry) *FrozenRegistry {
	reg := maps.Clone(r)
	if reg == nil {
		reg = Registry{}
	}
	enc, _ := json.Marshal(map[string]string(reg)) // a map of strings always encodes
	return &FrozenRegistry{reg: reg, digest: reg.Digest(), json: enc}
}

// Registry returns the frozen registry; it must not be modified.
func (f *FrozenRegistry) Registry() Registry { return f.reg }

// Digest returns the registry's Digest.
func (f *FrozenRegistry) Digest() string { return f.digest }

// SetRegistry sets j's Registry and RegistryDigest to f's, and lets j's
// JSON encoding copy f's instead of encoding the map again. The Registry
// is then f's, shared by every job it was set on: it must not be modified
// (replace it instead).
func (j *Job) SetRegistry(f *FrozenRegistry) {
	j.Registry, j.RegistryDigest, j.frozen = f.reg, f.digest, f
}

// Encode returns j's manifest (JobKey), the one way writers take: what
// json.Marshal makes of j, or, with a registry set by SetRegistry (and
// not replaced since), the same fields with the registry last, copied from
// its encoding made once, not encoded nor scanned again: a program's
// registry can be most of its manifests.
func (j *Job) Encode() ([]byte, error) {
	type plain Job // Job's fields, without an Encode to call
	if j.frozen != nil && !sameMap(j.Registry, j.frozen.reg) {
		// Replaced since SetRegistry: its digest is the new one's.
		c := *(*plain)(j)
		c.RegistryDigest = j.Registry.Digest()
		return json.Marshal(&c)
	}
	if j.frozen == nil {
		return json.Marshal((*plain)(j))
	}
	// The outer Registry hides the embedded one, and is left out (nil):
	// the frozen encoding goes in its place, before the closing brace.
	b, err := json.Marshal(struct {
		*plain
		Registry json.RawMessage `json:"registry,omitempty"`
	}{plain: (*plain)(j)})
	if err != nil {
		return nil, err
	}
	b = append(b[:len(b)-1], `,"registry":`...)
	b = append(b, j.frozen.json...)
	return append(b, '}'), nil
}

// sameMap reports whether a and b are the same map (not merely equal).
func sameMap(a, b Registry) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
