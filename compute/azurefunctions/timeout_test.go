package azurefunctions

import (
	"testing"
	"time"

	"github.com/lithops-go/lithops/compute"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
)

var _ compute.CallTimeoutLimiter = (*Backend)(nil)

func TestMaxCallTimeout(t *testing.T) {
	cfg := config.Default()
	for _, tc := range []struct {
		timeoutS int
		want     time.Duration
	}{{0, 0}, {5, 0}, {8, 3 * time.Second}, {1800, 1795 * time.Second}} {
		b := &Backend{cfg: cfg, tiers: map[int]*tier{cfg.AzureFunctions.RuntimeMemory: {meta: protocol.RuntimeMeta{TimeoutS: tc.timeoutS}}}}
		if got := b.MaxCallTimeout(); got != tc.want {
			t.Errorf("runtime timeout %d s: MaxCallTimeout %v, want %v", tc.timeoutS, got, tc.want)
		}
	}
}
