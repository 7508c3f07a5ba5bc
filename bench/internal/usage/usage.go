// Package usage reads what the benchmark process has used — CPU time, user
// and system together, and its peak resident memory — so that a bench
// program prints what a workload cost beside how long it took.
package usage

import "time"

// CPU returns the CPU time this process has used so far (0 where the
// platform cannot say).
func CPU() time.Duration { return cpu() }

// PeakRSS returns the most resident memory this process has held, in
// bytes (0 where the platform cannot say).
func PeakRSS() int64 { return peakRSS() }
