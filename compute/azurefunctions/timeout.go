package azurefunctions

import (
	"time"

	"github.com/lithops-go/lithops/internal/host"
)

// MaxCallTimeout implements compute.CallTimeoutLimiter: at its function
// timeout (runtime_timeout, RuntimeMeta.TimeoutS) the platform restarts the
// runtime's handler and every call running on the instance dies, so a
// call's execution timeout is capped 5 s below it, as Lithops does. 0 (no
// cap) when the runtime's metadata records no timeout.
func (b *Backend) MaxCallTimeout() time.Duration {
	t := b.defaultTier()
	if t == nil {
		return 0
	}
	return maxCallTimeout(t.meta.TimeoutS)
}

// maxCallTimeout is the cap for a function timeout of timeoutS seconds:
// the runtime host applies the same one (host.CallTimeoutCap).
func maxCallTimeout(timeoutS int) time.Duration { return host.CallTimeoutCap(timeoutS) }
