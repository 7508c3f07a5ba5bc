package lithops

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// A HostMode is a way in which a platform, not a user, starts a lithops
// program: as the custom handler of an Azure Functions runtime, say. Init
// serves the first registered mode whose Detect reports true and exits,
// the way it serves localhost worker mode. Modes come with the packages of
// their backends (github.com/lithops-go/lithops/azure registers the Azure
// Functions runtime host), so a program serves only the modes it links in.
type HostMode struct {
	// Name names the mode in errors, e.g. "runtime host".
	Name string
	// Detect reports, from the environment, whether the platform started
	// this process in this mode.
	Detect func() bool
	// Serve runs the mode until ctx ends; ctx is cancelled on SIGINT or
	// SIGTERM.
	Serve func(ctx context.Context) error
}

var (
	hostModesMu sync.Mutex
	hostModes   []HostMode
)

// RegisterHostMode adds m to the modes Init checks. A backend's package
// calls it from init; it panics if m lacks a name, Detect or Serve, or if
// Main or Init has started.
func RegisterHostMode(m HostMode) {
	if m.Name == "" || m.Detect == nil || m.Serve == nil {
		panic("lithops: RegisterHostMode needs a Name, Detect and Serve")
	}
	if started.Load() {
		panic("lithops: RegisterHostMode after Main or Init")
	}
	hostModesMu.Lock()
	defer hostModesMu.Unlock()
	hostModes = append(hostModes, m)
}

// detectHostMode returns the registered mode that started this process.
func detectHostMode() (HostMode, bool) {
	hostModesMu.Lock()
	defer hostModesMu.Unlock()
	for _, m := range hostModes {
		if m.Detect() {
			return m, true
		}
	}
	return HostMode{}, false
}

// serveHostMode runs m and returns the exit status.
func serveHostMode(m HostMode) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := m.Serve(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "lithops %s: %v\n", m.Name, err)
		return 1
	}
	return 0
}
