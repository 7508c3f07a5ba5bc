//go:build !unix

package procgroup

import (
	"os/exec"
	"syscall"
)

func attr() *syscall.SysProcAttr { return nil }

func stop(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

func kill(cmd *exec.Cmd) {}
