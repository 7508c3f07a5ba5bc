package config

import (
	"errors"
	"testing"
)

// FuzzParse: any file gives a valid config or an ErrInvalid, never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte("lithops:\n  backend: localhost\n  execution_timeout: 10\n"))
	f.Add([]byte("azure_storage:\n  storage_account_name: a\n  storage_account_key: k\n"))
	f.Add([]byte("lithops: [1, 2]\n"))
	f.Add([]byte("{{{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse returned an invalid config: %v", err)
		}
	})
}
