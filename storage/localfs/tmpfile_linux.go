package localfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/lithops-go/lithops/storage/driver"
)

// putNew writes a create-if-absent object through an unnamed O_TMPFILE
// file that is linked into place once complete: one directory change per
// object (the link) instead of three (create a temp name, link, unlink the
// temp name). This is the status record every call writes. ok is false
// where the file system or kernel cannot do it; the caller then takes the
// portable path.
func (d *Driver) putNew(ctx ctxReader, key, p string) (ok bool, err error) {
	if !haveProcFD() {
		return false, nil
	}
	// Nothing of ctx is read before ok is known: the portable path needs it whole.
	fd, err := unix.Open(filepath.Join(d.root, ".tmp"), unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false, nil
	}
	f := os.NewFile(uintptr(fd), "put-tmpfile")
	defer f.Close()
	if _, err := io.Copy(f, ctx); err != nil {
		return true, err
	}
	proc := fmt.Sprintf("/proc/self/fd/%d", fd)
	// A concurrent Delete may remove the directory just made (see Put).
	for attempt := 1; ; attempt++ {
		dir := filepath.Dir(p)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			if (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist)) && attempt < 100 {
				continue
			}
			return true, keyConflict(key, err)
		}
		err := unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, p, unix.AT_SYMLINK_FOLLOW)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EEXIST):
			return true, driver.ErrExists
		case errors.Is(err, unix.ENOENT) && attempt < 100:
			continue
		}
		return true, &fs.PathError{Op: "link", Path: p, Err: err}
	}
}

// haveProcFD: linking an O_TMPFILE file by name needs /proc/self/fd.
var haveProcFD = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/self/fd")
	return err == nil
})
