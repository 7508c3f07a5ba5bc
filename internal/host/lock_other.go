//go:build !unix

package host

import (
	"errors"
	"io/fs"
	"os"
)

// lockShared opens path; without flock, only this process's own pins keep
// a program in the cache. nil, nil: there is no such file.
func lockShared(path string) (*os.File, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return f, err
}

// removeUnlocked removes path; it reports whether the file is gone.
func removeUnlocked(path string) bool {
	err := os.Remove(path)
	return err == nil || errors.Is(err, fs.ErrNotExist)
}
