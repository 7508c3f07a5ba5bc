package procpool

import "syscall"

// sysProcAttr puts each worker in its own process group, so that a kill
// reaches whatever the user's function started, and has the kernel kill it
// when its parent (client or runtime host) dies, so no orphan outlives the
// process that owned it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
