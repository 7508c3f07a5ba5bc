//go:build !linux

package host

func noexec(dir string) bool { return false }
