//go:build unix

package procgroup

import (
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A child's own children are in its group: Stop and Kill reach them, and
// nothing outside the group.
func TestStopAndKillReachTheGroup(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(*exec.Cmd)
	}{{"stop", Stop}, {"kill", Kill}} {
		t.Run(tc.name, func(t *testing.T) {
			// The shell starts a grandchild and prints its pid.
			cmd := exec.Command("sh", "-c", "sleep 60 & echo $!; wait")
			cmd.SysProcAttr = Attr()
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 32)
			n, err := out.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			grandchild, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
			if err != nil {
				t.Fatalf("pid %q: %v", buf[:n], err)
			}
			tc.end(cmd)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the child did not end")
			}
			deadline := time.Now().Add(10 * time.Second)
			for !errors.Is(syscall.Kill(grandchild, 0), syscall.ESRCH) {
				if time.Now().After(deadline) {
					t.Fatalf("the grandchild %d outlived its group's %s", grandchild, tc.name)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// A child not started is left alone.
func TestNotStarted(t *testing.T) {
	cmd := exec.Command("true")
	Stop(cmd)
	Kill(cmd)
}
