package localhost

import (
	"os"
	"strconv"
	"strings"
)

const rssSupported = true

var pageSize = int64(os.Getpagesize())

// processRSS returns the resident set size of pid in bytes (0 if unknown).
func processRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * pageSize
}
