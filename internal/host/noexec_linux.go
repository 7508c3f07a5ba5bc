package host

import "syscall"

// stNoexec is ST_NOEXEC of statvfs(3).
const stNoexec = 0x8

// noexec reports whether dir is on a file system mounted noexec.
func noexec(dir string) bool {
	var fs syscall.Statfs_t
	if syscall.Statfs(dir, &fs) != nil {
		return false
	}
	return fs.Flags&stNoexec != 0
}
