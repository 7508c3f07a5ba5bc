//go:build unix && !linux

package procpool

import "syscall"

// sysProcAttr puts each worker in its own process group so that a kill
// reaches whatever the user's function started.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
