// Package build makes what a runtime deploys: the function app package
// (host.json, the queue or HTTPS binding, the handler, the runtime spec's
// files, a manifest) and the linux/amd64 programs in it, and uploads user
// programs to storage by hash. A handler is always a lithops program that
// imports github.com/lithops-go/lithops/azure (CheckHandler).
package build

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"go.yaml.in/yaml/v3"
)

// App package layout. The handler is a lithops program: started by the
// Functions host with FUNCTIONS_CUSTOMHANDLER_PORT set, lithops.Main (or
// Init) serves as the runtime host.
const (
	HandlerFile  = "handler"              // the handler executable, at the package root
	ManifestFile = "lithops-runtime.json" // the package's Manifest, beside the handler
	FunctionDir  = "lithops_handler"      // the function's directory (function.json)
)

// Queue trigger settings written to host.json.
const (
	// MaxDequeue is how many deliveries of a message the platform makes
	// before it moves the message to the poison queue (maxDequeueCount).
	MaxDequeue = 5
	// RetryDelaySecs is how long a failed message stays invisible before
	// its next delivery (visibilityTimeout), in seconds.
	RetryDelaySecs = 5
)

// Spec is a runtime spec file, the Go counterpart of a Lithops runtime's
// requirements: what a custom runtime adds to the default one.
type Spec struct {
	// Program is a Go main package compiled into the runtime: its calls need
	// no fetch (fastest cold start).
	Program string `yaml:"program" json:"program,omitempty"`
	// Files are copied into the app: "src" (local path) to "dst" (path in
	// the app, relative).
	Files []SpecFile `yaml:"files" json:"files,omitempty"`
	// Executables are copied into bin/ with mode 0755.
	Executables []string `yaml:"executables" json:"executables,omitempty"`
	// Env becomes app settings of the function app.
	Env map[string]string `yaml:"env" json:"env,omitempty"`
}

// SpecFile is one extra file of a Spec.
type SpecFile struct {
	Src string `yaml:"src" json:"src"`
	Dst string `yaml:"dst" json:"dst"`
}

// Manifest is written into the app package: what deploy needs to know.
type Manifest struct {
	Runtime    string            `json:"runtime"`
	Version    string            `json:"lithops_version"`
	Trigger    string            `json:"trigger"`
	ProgramSHA string            `json:"program_sha256,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	Built      time.Time         `json:"built"`
}

// Options configure App.
type Options struct {
	Runtime string
	Version string
	// File is -f: a Go main package directory or a runtime spec file ("":
	// the default runtime).
	File string
	// Trigger is "pub/sub" (queue, default) or "https".
	Trigger string
	// TimeoutSeconds is the function timeout (default 1800).
	TimeoutSeconds int
	// HostPath is the handler to ship when File names no program: a
	// linux/amd64 program that links lithops (the default runtime deployed
	// by a client ships the client's own program). "" means this executable
	// if it is a static linux/amd64 lithops program, else a cross-build of
	// cmd/lithops-handler in the working directory's module.
	HostPath string
}

// ParseSpec reads a runtime spec file (YAML), rejecting unknown keys.
func ParseSpec(path string) (*Spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var s Spec
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("runtime spec %s: %w", path, err)
	}
	base := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	if s.Program != "" && !strings.HasPrefix(s.Program, "github.com/") {
		s.Program = rel(s.Program)
	}
	for i := range s.Files {
		if s.Files[i].Src == "" || s.Files[i].Dst == "" {
			return nil, fmt.Errorf("runtime spec %s: files[%d] needs src and dst", path, i)
		}
		if strings.Contains(s.Files[i].Dst, "..") || filepath.IsAbs(s.Files[i].Dst) {
			return nil, fmt.Errorf("runtime spec %s: files[%d].dst %q must be a relative path inside the app", path, i, s.Files[i].Dst)
		}
		s.Files[i].Src = rel(s.Files[i].Src)
	}
	for i := range s.Executables {
		s.Executables[i] = rel(s.Executables[i])
	}
	for k := range s.Env {
		if appsettings.Reserved(k) {
			return nil, fmt.Errorf("runtime spec %s: env %s is managed by the platform or by lithops", path, k)
		}
	}
	return &s, nil
}

// specFor interprets -f: a directory with Go files is a main package, any
// other file a spec.
func specFor(file string) (*Spec, error) {
	if file == "" {
		return &Spec{}, nil
	}
	fi, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("runtime build -f %s: %w", file, err)
	}
	if fi.IsDir() {
		if m, _ := filepath.Glob(filepath.Join(file, "*.go")); len(m) == 0 {
			return nil, fmt.Errorf("runtime build -f %s: a directory must be a Go main package", file)
		}
		return &Spec{Program: file}, nil
	}
	return ParseSpec(file)
}

// HostJSON renders host.json.
func HostJSON(timeoutSeconds int) ([]byte, error) {
	if timeoutSeconds <= 0 {
		timeoutSeconds = 1800
	}
	d := time.Duration(timeoutSeconds) * time.Second
	h := map[string]any{
		"version": "2.0",
		"customHandler": map[string]any{
			"description": map[string]any{
				"defaultExecutablePath": HandlerFile,
				"arguments":             []string{},
				"workingDirectory":      "",
			},
			"enableForwardingHttpRequest": false,
		},
		"functionTimeout": fmt.Sprintf("%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60),
		"extensions": map[string]any{
			"queues": map[string]any{
				"maxPollingInterval": "00:00:02",
				"visibilityTimeout":  fmt.Sprintf("00:00:%02d", RetryDelaySecs),
				"batchSize":          1,
				"newBatchThreshold":  0,
				"maxDequeueCount":    MaxDequeue,
				"messageEncoding":    "base64",
			},
		},
		"extensionBundle": map[string]any{"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"},
	}
	return json.MarshalIndent(h, "", "  ")
}

// FunctionJSON renders lithops_handler/function.json for the trigger.
func FunctionJSON(trigger string) ([]byte, error) {
	var b []map[string]any
	switch trigger {
	case "", "pub/sub", "queue":
		b = []map[string]any{{"name": "msgIn", "type": "queueTrigger", "direction": "in",
			"queueName": "%" + appsettings.Queue + "%", "connection": appsettings.HostStorage}}
	case "https", "http":
		b = []map[string]any{
			{"name": "req", "type": "httpTrigger", "direction": "in", "authLevel": "function", "methods": []string{"post"}},
			{"name": "res", "type": "http", "direction": "out"},
		}
	default:
		return nil, fmt.Errorf("unknown trigger %q (known: pub/sub, https)", trigger)
	}
	return json.MarshalIndent(map[string]any{"bindings": b}, "", "  ")
}

// App builds the function app package: host.json, the function's binding,
// the host binary (linux/amd64, mode 0755), and what -f adds.
func App(ctx context.Context, o Options) ([]byte, *Manifest, error) {
	spec, err := specFor(o.File)
	if err != nil {
		return nil, nil, err
	}
	hostJSON, err := HostJSON(o.TimeoutSeconds)
	if err != nil {
		return nil, nil, err
	}
	fnJSON, err := FunctionJSON(o.Trigger)
	if err != nil {
		return nil, nil, err
	}
	m := &Manifest{Runtime: o.Runtime, Version: o.Version, Trigger: o.Trigger, Env: spec.Env, Built: time.Now().UTC()}
	if m.Trigger == "" {
		m.Trigger = "pub/sub"
	}

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, mode os.FileMode, r io.Reader) error {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: m.Built}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, r)
		return err
	}
	addFile := func(name string, mode os.FileMode, path string) error {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("runtime build: %w", err)
		}
		defer f.Close()
		return add(name, mode, f)
	}
	if err := add("host.json", 0o644, bytes.NewReader(hostJSON)); err != nil {
		return nil, nil, err
	}
	if err := add(FunctionDir+"/function.json", 0o644, bytes.NewReader(fnJSON)); err != nil {
		return nil, nil, err
	}
	// A runtime with a program compiled in ships that program as its
	// handler (one binary: it serves and it runs its own calls without a
	// fetch); otherwise the handler only hosts programs fetched by hash.
	var handler string
	if spec.Program != "" {
		prog, cleanup, err := Program(ctx, spec.Program, "")
		if err != nil {
			return nil, nil, err
		}
		defer cleanup()
		if m.ProgramSHA, err = FileSHA256(prog); err != nil {
			return nil, nil, err
		}
		handler = prog
	} else {
		h, cleanup, err := hostBinary(ctx, o.HostPath)
		if err != nil {
			return nil, nil, err
		}
		defer cleanup()
		handler = h
	}
	if err := addFile(HandlerFile, 0o755, handler); err != nil {
		return nil, nil, err
	}
	for _, f := range spec.Files {
		if err := addFile("files/"+filepath.ToSlash(f.Dst), 0o644, f.Src); err != nil {
			return nil, nil, err
		}
	}
	for _, x := range spec.Executables {
		if err := addFile("bin/"+filepath.Base(x), 0o755, x); err != nil {
			return nil, nil, err
		}
	}
	mj, _ := json.MarshalIndent(m, "", "  ")
	if err := add(ManifestFile, 0o644, bytes.NewReader(mj)); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), m, nil
}

// HandlerPackage is the main package of the default runtime's handler when
// no program is at hand: it imports only the root package and package
// azure, so it builds in any module that builds a lithops program for
// Azure.
const HandlerPackage = "github.com/lithops-go/lithops/cmd/lithops-handler"

// hostBinary returns the handler of a runtime without a compiled-in
// program: the given lithops program, this executable if it is a static
// linux/amd64 lithops program, or a cross-build of HandlerPackage.
func hostBinary(ctx context.Context, path string) (string, func(), error) {
	if path != "" {
		if err := CheckHandler(path); err != nil {
			return "", func() {}, err
		}
		return path, func() {}, nil
	}
	if exe, err := os.Executable(); err == nil && IsStaticLinuxAMD64(exe) && CheckHandler(exe) == nil {
		return exe, func() {}, nil
	}
	bin, cleanup, err := CrossBuild(ctx, HandlerPackage, "")
	if err != nil {
		return "", func() {}, fmt.Errorf("%w\n(the default runtime's handler is built in a Go module that requires github.com/lithops-go/lithops: run this in your module, or pass -f with your main package)", err)
	}
	return bin, cleanup, nil
}

// ReadManifest reads the manifest of a built app package.
func ReadManifest(pkg []byte) (*Manifest, error) {
	zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
	if err != nil {
		return nil, err
	}
	f, err := zr.Open(ManifestFile)
	if err != nil {
		return nil, fmt.Errorf("no %s: not a lithops runtime package", ManifestFile)
	}
	defer f.Close()
	var m Manifest
	if err := json.NewDecoder(f).Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	return &m, nil
}
