//go:build !linux

package quietsys

import (
	"io"
	"os"
)

// Reader returns f: raw reads are made on Linux only.
func Reader(f *os.File) io.Reader { return f }

// Writer returns f: raw writes are made on Linux only.
func Writer(f *os.File) io.Writer { return f }

// Mkdir is os.Mkdir.
func Mkdir(path string, perm os.FileMode) error { return os.Mkdir(path, perm) }

// Local reports false: file calls are raw on Linux only.
func Local(path string) (bool, error) { return false, nil }

// Pollable reports false: nothing is read or written raw here.
func Pollable(f *os.File) bool { return false }

// Pipe is os.NewFile: nothing is read or written raw here.
func Pipe(fd uintptr, name string) *os.File { return os.NewFile(fd, name) }
