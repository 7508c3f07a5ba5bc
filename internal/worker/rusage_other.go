//go:build !unix

package worker

func peakRSS() int64 { return 0 }
