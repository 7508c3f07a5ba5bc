//go:build !linux

package procpool

// Memory limits are enforced only on Linux, where /proc gives the RSS.
const rssSupported = false

func processRSS(pid int) int64 { return 0 }

func groupRSS(pgid int) int64 { return 0 }
