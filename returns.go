package lithops

import (
	"encoding"
	"encoding/gob"
	"fmt"
	"reflect"
	"strings"

	"github.com/lithops-go/lithops/internal/protocol"
)

// FuncOption configures a function registered with Func.
type FuncOption func(*funcOptions)

type funcOptions struct {
	returns []reflect.Type
}

// Returns declares the concrete types a function may return inside an
// interface-typed result: an Out that is, or holds, any or another
// interface (a field, an element, a map value). Each sample is registered
// with encoding/gob, and since Func runs at package level the client and its
// workers register the same types.
//
// Under the gob codec (the default) a function whose result holds an
// interface and that declares no type implementing it is refused before
// submission: gob can carry only registered concrete types, and which type a
// function returns is known only once it runs, on a worker. Basic types
// (int, string, …) are declared the same way: lithops.Returns(0, "").
// The JSON codec needs no declaration.
func Returns(samples ...any) FuncOption {
	return func(o *funcOptions) {
		for _, s := range samples {
			if s == nil {
				panic("lithops.Returns: a nil sample; pass a value of the concrete type, e.g. T{} or &T{}")
			}
			gob.Register(s)
			o.returns = append(o.returns, reflect.TypeOf(s))
		}
	}
}

// undeclaredInterface returns the first interface in Out's type that no
// type declared with Returns implements, or nil. Func computes it once.
func undeclaredInterface(out reflect.Type, declared []reflect.Type) reflect.Type {
	for _, iface := range interfacesIn(out) {
		if !anyImplements(declared, iface) {
			return iface
		}
	}
	return nil
}

// checkResultCodec says, before submission, whether codec can carry what the
// function returns. Only gob needs to know concrete types in advance.
func (f *Function[In, Out]) checkResultCodec(codec protocol.Codec) error {
	if f.undeclared == nil || codec.Name() != GobCodec.Name() {
		return nil
	}
	return fmt.Errorf("lithops: %s returns %s, which holds an interface (%s) that gob can carry only for concrete types registered in the client and its workers, and none is declared: "+
		"declare what it returns, lithops.Func(%q, fn, lithops.Returns(T{})), or use the JSON codec: lithops.WithCodec(lithops.JSONCodec)",
		f.name, typeName(reflect.TypeFor[Out]()), f.undeclared, f.name)
}

func anyImplements(ts []reflect.Type, iface reflect.Type) bool {
	for _, t := range ts {
		if t.Implements(iface) {
			return true
		}
	}
	return false
}

var (
	gobEncoderType    = reflect.TypeFor[gob.GobEncoder]()
	binaryMarshalType = reflect.TypeFor[encoding.BinaryMarshaler]()
)

// interfacesIn lists the interface types gob meets when it encodes a value
// of type t: t itself, exported struct fields, elements, map keys and
// values, through pointers. Types that encode themselves are opaque to gob.
func interfacesIn(t reflect.Type) []reflect.Type {
	var found []reflect.Type
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		if seen[t] {
			return
		}
		seen[t] = true
		if t.Kind() == reflect.Interface {
			found = append(found, t)
			return
		}
		if t.Implements(gobEncoderType) || t.Implements(binaryMarshalType) ||
			reflect.PointerTo(t).Implements(gobEncoderType) || reflect.PointerTo(t).Implements(binaryMarshalType) {
			return
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(t.Elem())
		case reflect.Map:
			walk(t.Key())
			walk(t.Elem())
		case reflect.Struct:
			for i := range t.NumField() {
				if sf := t.Field(i); sf.IsExported() && !strings.HasPrefix(sf.Name, "_") {
					walk(sf.Type)
				}
			}
		}
	}
	walk(t)
	return found
}
