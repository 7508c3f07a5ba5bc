//go:build !linux

package localfs

// putNew is Linux's O_TMPFILE path; elsewhere Put takes the portable one.
func (d *Driver) putNew(ctx ctxReader, key, p string, replace bool) (ok bool, err error) {
	return false, nil
}

// markTopDir is ext4's: elsewhere there is nothing to mark, and every
// directory is taken for one.
func markTopDir(dir string) (isDir, marked bool) { return true, false }

// topMarked is ext4's: elsewhere no directory has the mark.
func topMarked(dir string) bool { return false }
