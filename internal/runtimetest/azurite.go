package runtimetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/lithops-go/lithops/internal/procgroup"
	"github.com/lithops-go/lithops/storage/azblob"
)

// ErrNoAzurite reports that the Azurite binary is not installed (run npm ci
// at the repository root, or scripts/azurite.sh start, which does).
var ErrNoAzurite = errors.New("Azurite is not installed: run `npm ci` at the repository root")

// Azurite is a private Azurite process for tests that stop and restart the
// storage service itself: its own loopback ports, and its data on disk in a
// directory of the test's, so that a restart keeps what was written.
type Azurite struct {
	bin, dir string
	ports    [3]int // blob, queue, table
	cmd      *exec.Cmd
	exited   chan struct{}
	logPath  string
}

// AzuriteBinary finds node_modules/.bin/azurite in the working directory or
// one of its parents.
func AzuriteBinary() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "node_modules", ".bin", "azurite")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoAzurite
		}
		dir = parent
	}
}

// StartAzurite starts Azurite on three free loopback ports with its data in
// dir and waits until it answers.
func StartAzurite(ctx context.Context, dir string) (*Azurite, error) {
	bin, err := AzuriteBinary()
	if err != nil {
		return nil, err
	}
	a := &Azurite{bin: bin, dir: dir, logPath: filepath.Join(dir, "azurite.log")}
	// Hold all three listeners until the ports are chosen, so they differ.
	var ls []net.Listener
	for i := range a.ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			break
		}
		ls = append(ls, l)
		a.ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		l.Close()
	}
	if len(ls) < len(a.ports) {
		return nil, fmt.Errorf("azurite: no free loopback port")
	}
	if err := a.Start(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// Start (re)starts the process on the same ports and data and waits, at
// most a minute, until its blob and queue services answer.
func (a *Azurite) Start(ctx context.Context) error {
	if a.cmd != nil {
		return fmt.Errorf("azurite: already running (pid %d)", a.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(a.bin,
		"--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(a.ports[0]),
		"--queueHost", "127.0.0.1", "--queuePort", fmt.Sprint(a.ports[1]),
		"--tableHost", "127.0.0.1", "--tablePort", fmt.Sprint(a.ports[2]),
		"--location", filepath.Join(a.dir, "data"),
		"--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that Stop reaches node and nothing else.
	cmd.SysProcAttr = procgroup.Attr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("azurite: start %s: %w", a.bin, err)
	}
	a.cmd, a.exited = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(a.exited)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if a.answers() {
			return nil
		}
		select {
		case <-a.exited:
			a.cmd = nil
			log, _ := os.ReadFile(a.logPath)
			return fmt.Errorf("azurite: exited during startup; log %s:\n%s", a.logPath, tail(string(log), 2000))
		case <-ctx.Done():
			a.Stop()
			return fmt.Errorf("azurite: not answering on ports %v after a minute (log %s)", a.ports[:2], a.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (a *Azurite) answers() bool {
	_, ok := endpointsAnswer(a.Conn())
	return ok
}

// Stop stops the process as an operator would (SIGTERM: Azurite saves its
// metadata and exits), killing it if it has not exited within 10 s.
func (a *Azurite) Stop() error {
	if a.cmd == nil {
		return nil
	}
	defer func() { a.cmd = nil }()
	procgroup.Stop(a.cmd)
	select {
	case <-a.exited:
		return nil
	case <-time.After(10 * time.Second):
	}
	procgroup.Kill(a.cmd)
	<-a.exited
	return fmt.Errorf("azurite: did not stop within 10 s of SIGTERM; killed")
}

// Close stops the process.
func (a *Azurite) Close() { a.Stop() }

// Conn is the connection string of the well-known development account on
// this process.
func (a *Azurite) Conn() string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=http://127.0.0.1:%d/%s;QueueEndpoint=http://127.0.0.1:%d/%s;",
		azblob.DevAccountName, azblob.DevAccountKey, a.ports[0], azblob.DevAccountName, a.ports[1], azblob.DevAccountName)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}
