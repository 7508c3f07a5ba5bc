//go:build unix

package localhost

import (
	"os/exec"
	"syscall"
)

// sysProcAttr puts each worker in its own process group so that a kill
// reaches whatever the user's function started.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func killGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
}
