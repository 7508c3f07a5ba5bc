package azurefunctions

import (
	"time"

	"github.com/lithops-go/lithops/internal/host"
)

// MaxCallTimeout implements compute.CallTimeoutLimiter: at its function
// timeout (runtime_timeout, RuntimeMeta.TimeoutS) the platform restarts the
// runtime's handler and every call running on the instance dies, so a
// call's execution timeout is capped 5 s below it, as Lithops does. Over
// the HTTPS trigger the platform's HTTP limit caps it too (host.HTTPCallBound):
// the runtime answers a POST only when its calls are settled. 0 (no cap)
// when neither applies.
func (b *Backend) MaxCallTimeout() time.Duration {
	t := b.defaultTier()
	if t == nil {
		return 0
	}
	limit := maxCallTimeout(t.meta.TimeoutS)
	if b.endpoint != "" && (limit == 0 || limit > host.HTTPCallBound) {
		limit = host.HTTPCallBound
	}
	return limit
}

// maxCallTimeout is the cap for a function timeout of timeoutS seconds:
// the runtime host applies the same one (host.CallTimeoutCap).
func maxCallTimeout(timeoutS int) time.Duration { return host.CallTimeoutCap(timeoutS) }
