// Package procgroup starts children in process groups of their own and
// signals those groups: a stop or a kill reaches whatever the child
// started (a worker's subprocesses, Azurite's node), and on Linux the
// kernel kills the child when the process that started it dies, so no
// orphan outlives its owner (a test killed by its timeout, ^C). Where there
// are no process groups (Windows) the child alone is stopped or killed.
package procgroup

import (
	"os/exec"
	"syscall"
)

// Attr is the SysProcAttr of a child in a group of its own.
func Attr() *syscall.SysProcAttr { return attr() }

// Stop asks the child's group to end (SIGTERM; Windows: the child is
// killed, it has no gentler signal). A child not started is left alone.
func Stop(cmd *exec.Cmd) {
	if cmd.Process != nil {
		stop(cmd)
	}
}

// Kill kills the child's group and the child.
func Kill(cmd *exec.Cmd) {
	if cmd.Process != nil {
		kill(cmd)
		_ = cmd.Process.Kill()
	}
}
