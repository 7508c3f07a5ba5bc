//go:build !linux

package localfs

// putNew is Linux's O_TMPFILE path; elsewhere Put takes the portable one.
func (d *Driver) putNew(ctx ctxReader, key, p string, replace bool) (ok bool, err error) {
	return false, nil
}

// markTopDir is ext4's: elsewhere there is nothing to mark.
func markTopDir(dir string) bool { return true }
