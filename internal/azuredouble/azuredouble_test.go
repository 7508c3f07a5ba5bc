package azuredouble

import (
	"testing"
	"time"
)

// The double reads host.json's spans as the Functions host does, and
// refuses what it cannot read.
func TestParseSpan(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"00:05:00": 5 * time.Minute, "00:00:05": 5 * time.Second, "01:30:15": time.Hour + 30*time.Minute + 15*time.Second,
	} {
		if got, err := parseSpan(in); err != nil || got != want {
			t.Errorf("parseSpan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "5m", "00:61:00", "1:2", "-1:00:00"} {
		if _, err := parseSpan(bad); err == nil {
			t.Errorf("parseSpan(%q) accepted", bad)
		}
	}
}
