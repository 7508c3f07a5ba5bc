//go:build !unix && !windows

package usage

import "time"

func cpu() time.Duration { return 0 }

func peakRSS() int64 { return 0 }
