//go:build unix

package host

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// lockShared opens path and takes a shared lock on it, which a host process
// holds while it uses the program: another host process sharing the cache
// directory then does not remove it. nil, nil: there is no such file.
func lockShared(path string) (*os.File, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, err
	}
	// The file may have been removed (or replaced) between the open and
	// the lock: only the file now at path counts.
	if !samePath(f, path) {
		f.Close()
		return nil, nil
	}
	return f, nil
}

// removeUnlocked removes path unless some process holds a lock on it (uses
// it); it reports whether the file is gone.
func removeUnlocked(path string) bool {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return false
	}
	if !samePath(f, path) {
		return false // replaced meanwhile: the new file is someone's
	}
	return os.Remove(path) == nil
}

// samePath reports whether f is the file at path.
func samePath(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}
