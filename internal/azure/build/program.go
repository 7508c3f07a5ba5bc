package build

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
)

// IsLinuxAMD64 reports whether path is a linux/amd64 ELF executable.
func IsLinuxAMD64(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Machine == elf.EM_X86_64 && (f.Type == elf.ET_EXEC || f.Type == elf.ET_DYN)
}

// IsStaticLinuxAMD64 reports whether path is a statically linked
// linux/amd64 executable.
func IsStaticLinuxAMD64(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return false
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// ProgramPath returns a linux/amd64 build of the user program: override if
// given; this executable if it is a static linux/amd64 one; else a
// cross-build of this program's main package (static and stripped, see
// CrossBuild), which needs the Go toolchain and the program's module in the
// working directory. A dynamically linked executable whose main package is
// unknown (a test binary) is used as it is. cleanup removes a temporary
// build.
func ProgramPath(ctx context.Context, override string) (path string, cleanup func(), err error) {
	noop := func() {}
	if override != "" {
		if !IsLinuxAMD64(override) {
			return "", noop, fmt.Errorf("program %s is not a linux/amd64 executable", override)
		}
		return override, noop, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", noop, err
	}
	if IsStaticLinuxAMD64(exe) {
		return exe, noop, nil
	}
	// A test binary's build info names the package under test (Go 1.24+),
	// whose own build would lack the test's functions: use it as it is. A
	// test binary is told by its -test.v flag, registered before any test
	// runs (importing package testing for testing.Testing would link it
	// into every program).
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Path == "" || flag.Lookup("test.v") != nil || strings.HasSuffix(bi.Path, ".test") || bi.Path == "command-line-arguments" {
		if IsLinuxAMD64(exe) {
			return exe, noop, nil
		}
		return "", noop, errors.New("this program is not linux/amd64 and its main package is unknown: build it with CGO_ENABLED=0 GOOS=linux GOARCH=amd64 and set the program explicitly")
	}
	return CrossBuild(ctx, bi.Path, "")
}

// ModulePath is the lithops-go module: a program that links it can serve
// as a runtime's handler.
const ModulePath = "github.com/lithops-go/lithops"

// ErrNotMain reports a package given as a program that is not a main
// package.
var ErrNotMain = errors.New("not a main package")

// CrossBuild builds the main package pkg (run in dir) for linux/amd64,
// static and stripped (CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build
// -trimpath -ldflags="-s -w"): it is what instances download.
func CrossBuild(ctx context.Context, pkg, dir string) (string, func(), error) {
	tmp, err := os.MkdirTemp("", "lithops-build-")
	if err != nil {
		return "", func() {}, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	out := filepath.Join(tmp, "program")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if msg, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", func() {}, fmt.Errorf("cross-build %s for linux/amd64: %v\n%s", pkg, err, msg)
	}
	return out, cleanup, nil
}

// Program cross-builds a user's program for a runtime: pkg is a
// directory or an import path of a Go main package (resolved in dir's
// module) that links lithops. A library package is refused with
// ErrNotMain.
func Program(ctx context.Context, pkg, dir string) (string, func(), error) {
	noop := func() {}
	if fi, err := os.Stat(pkg); err == nil && fi.IsDir() {
		if abs, err := filepath.Abs(pkg); err == nil {
			pkg = abs
		}
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-f", "{{.Name}}", pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return "", noop, fmt.Errorf("program %s: %v: %s", pkg, err, msg)
	}
	if name := strings.TrimSpace(string(out)); name != "main" {
		return "", noop, fmt.Errorf("program %s: package %s is %w (a runtime's program is a command, `package main` with lithops.Main)", pkg, name, ErrNotMain)
	}
	bin, cleanup, err := CrossBuild(ctx, pkg, dir)
	if err != nil {
		return "", noop, err
	}
	if err := CheckHandler(bin); err != nil {
		cleanup()
		return "", noop, fmt.Errorf("program %s: %w", pkg, err)
	}
	return bin, cleanup, nil
}

// CheckHandler reports why the executable at path cannot be a runtime's
// handler: it must be linux/amd64 and link lithops (whose Main or Init
// serve as the runtime host).
func CheckHandler(path string) error {
	if !IsLinuxAMD64(path) {
		return fmt.Errorf("%s is not a linux/amd64 executable", path)
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: no Go build information: %w", path, err)
	}
	linked := bi.Main.Path == ModulePath
	for _, d := range bi.Deps {
		linked = linked || d.Path == ModulePath
	}
	if !linked {
		return fmt.Errorf("%s does not link %s: a runtime's handler is a lithops program (one that calls lithops.Main or lithops.Init)", path, ModulePath)
	}
	// Function names survive stripping (tracebacks need them).
	exe, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.Contains(exe, []byte(HostFunc)) {
		return fmt.Errorf("%s cannot serve as a runtime host: its main package must import _ %q", path, ModulePath+"/azure")
	}
	return nil
}

// HostFunc is the name of the function through which a program that
// imports github.com/lithops-go/lithops/azure serves as the runtime host;
// CheckHandler looks for it in an executable.
const HostFunc = ModulePath + "/azure.serveRuntimeHost"

// FileSHA256 hashes a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// UploadProgram stores the program gzipped at lithops.runtimes/bin/<sha256>
// unless it is already there, and returns the hash.
func UploadProgram(ctx context.Context, st *storage.Storage, path string) (string, error) {
	sha, err := FileSHA256(path)
	if err != nil {
		return "", fmt.Errorf("hash program: %w", err)
	}
	key := protocol.ProgramKey(sha)
	if _, err := st.Head(ctx, st.Bucket(), key); err == nil {
		return sha, nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	pr, pw := io.Pipe()
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		_, err := io.Copy(zw, f)
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	if err := st.Put(ctx, st.Bucket(), key, pr); err != nil {
		pr.CloseWithError(err)
		return "", fmt.Errorf("upload program: %w", err)
	}
	return sha, nil
}
