package protocol

import (
	"encoding/json"
	"fmt"
)

// Codec encodes user values (inputs and results). Implementations must be
// safe for concurrent use.
type Codec interface {
	// Name identifies the codec in job manifests.
	Name() string
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// Gob is the default codec: compact and faithful for Go types.
var Gob Codec = gobCodec{}

// JSON is the interoperable, inspectable codec.
var JSON Codec = jsonCodec{}

// CodecByName returns the codec a manifest names.
func CodecByName(name string) (Codec, error) {
	switch name {
	case "", "gob":
		return Gob, nil
	case "json":
		return JSON, nil
	}
	return nil, fmt.Errorf("unknown codec %q (known: gob, json)", name)
}

type gobCodec struct{}

func (gobCodec) Name() string { return "gob" }

func (gobCodec) Marshal(v any) ([]byte, error) { return gobMarshal(v) }

func (gobCodec) Unmarshal(data []byte, v any) error { return gobUnmarshal(data, v) }

type jsonCodec struct{}

func (jsonCodec) Name() string                       { return "json" }
func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
