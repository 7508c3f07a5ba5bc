package lithops

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

type selfEncoded struct{ V any }

func (selfEncoded) GobEncode() ([]byte, error) { return nil, nil }

type withHidden struct {
	Shown  int
	hidden any
}

type recursive struct {
	Next *recursive
	V    fmt.Stringer
}

func TestInterfacesIn(t *testing.T) {
	anyT, stringer, errT := reflect.TypeFor[any](), reflect.TypeFor[fmt.Stringer](), reflect.TypeFor[error]()
	for _, tc := range []struct {
		t    reflect.Type
		want []reflect.Type
	}{
		{reflect.TypeFor[int](), nil},
		{reflect.TypeFor[any](), []reflect.Type{anyT}},
		{reflect.TypeFor[[]any](), []reflect.Type{anyT}},
		{reflect.TypeFor[[3]error](), []reflect.Type{errT}},
		{reflect.TypeFor[map[string]any](), []reflect.Type{anyT}},
		{reflect.TypeFor[map[fmt.Stringer]int](), []reflect.Type{stringer}},
		{reflect.TypeFor[*struct{ A, B any }](), []reflect.Type{anyT}},
		{reflect.TypeFor[selfEncoded](), nil},
		{reflect.TypeFor[time.Time](), nil},
		{reflect.TypeFor[withHidden](), nil},
		{reflect.TypeFor[recursive](), []reflect.Type{stringer}},
		{reflect.TypeFor[struct {
			E error
			S []fmt.Stringer
		}](), []reflect.Type{errT, stringer}},
	} {
		if got := interfacesIn(tc.t); !slices.Equal(got, tc.want) {
			t.Errorf("interfacesIn(%v) = %v, want %v", tc.t, got, tc.want)
		}
	}
}

func TestReturnsNilSamplePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Returns(nil) did not panic")
		}
	}()
	var o funcOptions
	Returns(nil)(&o)
}
