//go:build unix && !linux

package quietsys

import "syscall"

// Getrusage is syscall.Getrusage (raw on Linux only).
func Getrusage(who int, ru *syscall.Rusage) error { return syscall.Getrusage(who, ru) }
