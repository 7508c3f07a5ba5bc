package host

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeMessage: any trigger value decodes to a valid invocation or to
// an error, never a panic.
func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(`"\"{\\\"protocol\\\":1,\\\"bucket\\\":\\\"b\\\",\\\"executor_id\\\":\\\"e\\\",\\\"job_id\\\":\\\"j\\\",\\\"calls\\\":[{\\\"id\\\":\\\"00000\\\"}]}\""`))
	f.Add([]byte(`{"protocol":3,"op":"metadata","bucket":"b","meta_key":"lithops.runtimes/x"}`))
	f.Add([]byte(`"hi"`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := DecodeMessage(json.RawMessage(data))
		if err == nil && inv.Validate() != nil {
			t.Fatalf("DecodeMessage accepted an invalid invocation: %+v", inv)
		}
	})
}
