package localfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
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
//
// With replace (a plain Put) a key that exists is replaced: the complete
// file is linked under a temporary name and renamed over it, as the
// portable path does; a new key, the common case (manifests, inputs), still
// costs one link.
func (d *Driver) putNew(ctx ctxReader, key, p string, replace bool) (ok bool, err error) {
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
		case errors.Is(err, unix.EEXIST) && replace:
			return true, d.replaceWith(proc, key, p)
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

// replaceWith puts the file behind proc at p, which exists, through a
// temporary name and a rename. Once named, the file is moved as the
// portable path moves it (place), directory races included: an unnamed file
// that was linked once cannot be linked again.
func (d *Driver) replaceWith(proc, key, p string) error {
	for range 100 {
		tmp := filepath.Join(d.root, ".tmp", fmt.Sprintf("put-%d", rand.Uint64()))
		err := unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, tmp, unix.AT_SYMLINK_FOLLOW)
		if errors.Is(err, unix.EEXIST) {
			continue // a name another Put drew
		}
		if err != nil {
			return &fs.PathError{Op: "link", Path: tmp, Err: err}
		}
		for attempt := 1; ; attempt++ {
			err = d.place(key, tmp, p, false)
			if err == nil || !errors.Is(err, errDirVanished) || attempt == 100 {
				break
			}
		}
		if err != nil {
			os.Remove(tmp)
		}
		return err
	}
	return fmt.Errorf("localfs: no free temporary name in %s", filepath.Join(d.root, ".tmp"))
}
