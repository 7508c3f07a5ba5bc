package main

import (
	"archive/zip"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const azureCfg = "lithops:\n  backend: azure_functions\n  storage: azure_storage\nazure_storage:\n  storage_account_name: acct\n  storage_account_key: a2V5\nazure_functions:\n  runtime_timeout: 600\n"

func readZip(t *testing.T, path string) map[string]*zip.File {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zr.Close() })
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[f.Name] = f
	}
	return files
}

func jsonOf(t *testing.T, f *zip.File) map[string]any {
	t.Helper()
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var v map[string]any
	if err := json.NewDecoder(rc).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// checkStaticELF asserts f is a static linux/amd64 executable with mode 0755.
func checkStaticELF(t *testing.T, f *zip.File) {
	t.Helper()
	if f.Mode().Perm() != 0o755 {
		t.Errorf("%s has mode %v, want 0755", f.Name, f.Mode().Perm())
	}
	rc, _ := f.Open()
	tmp := filepath.Join(t.TempDir(), "bin")
	out, _ := os.Create(tmp)
	io.Copy(out, rc)
	out.Close()
	rc.Close()
	e, err := elf.Open(tmp)
	if err != nil {
		t.Fatalf("%s is not ELF: %v", f.Name, err)
	}
	if e.Section(".symtab") != nil {
		t.Errorf("%s is not stripped (has .symtab): builds for upload use -ldflags=-s -w", f.Name)
	}
	defer e.Close()
	if e.Machine != elf.EM_X86_64 {
		t.Errorf("%s is for %v, want x86-64", f.Name, e.Machine)
	}
	for _, p := range e.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked", f.Name)
		}
	}
}

func TestRuntimeBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds")
	}
	cfg := writeConfig(t, azureCfg)
	dir := t.TempDir()
	extra := filepath.Join(dir, "model.txt")
	os.WriteFile(extra, []byte("weights"), 0o644)
	spec := filepath.Join(dir, "runtime.yaml")
	os.WriteFile(spec, []byte("program: ../../../testdata/otherprog\nfiles:\n  - src: model.txt\n    dst: data/model.txt\nenv:\n  MODEL: data/model.txt\n"), 0o644)
	// The spec's program path is relative to the spec file.
	spec2 := filepath.Join(dir, "runtime2.yaml")
	abs, _ := filepath.Abs("../../testdata/otherprog")
	os.WriteFile(spec2, []byte("program: "+abs+"\nfiles:\n  - src: model.txt\n    dst: data/model.txt\nenv:\n  MODEL: data/model.txt\n"), 0o644)

	tests := []struct {
		name, file, trigger string
		program             bool
	}{
		{"default", "", "", false},
		{"https", "", "https", false},
		{"spec", spec2, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "app.zip")
			args := []string{"runtime", "build", "-c", cfg, "-o", out, "my-runtime"}
			if tc.file != "" {
				args = append(args, "-f", tc.file)
			}
			if tc.trigger != "" {
				args = append(args, "--trigger", tc.trigger)
			}
			msg, err := run(t, args...)
			if err != nil || !strings.Contains(msg, "runtime my-runtime built") {
				t.Fatalf("build: %q, %v", msg, err)
			}
			files := readZip(t, out)
			h := jsonOf(t, files["host.json"])
			ch := h["customHandler"].(map[string]any)["description"].(map[string]any)
			if ch["defaultExecutablePath"] != "handler" || h["functionTimeout"] != "00:10:00" {
				t.Errorf("host.json %v", h)
			}
			q := h["extensions"].(map[string]any)["queues"].(map[string]any)
			if q["batchSize"] != 1.0 || q["maxDequeueCount"] != 5.0 || q["messageEncoding"] != "base64" || q["visibilityTimeout"] != "00:00:05" {
				t.Errorf("queue settings %v", q)
			}
			fn := jsonOf(t, files["lithops_handler/function.json"])
			b := fn["bindings"].([]any)[0].(map[string]any)
			if tc.trigger == "https" {
				if b["type"] != "httpTrigger" || b["authLevel"] != "function" {
					t.Errorf("http binding %v", b)
				}
			} else if b["type"] != "queueTrigger" || b["queueName"] != "%LITHOPS_QUEUE%" || b["connection"] != "AzureWebJobsStorage" {
				t.Errorf("queue binding %v", b)
			}
			if files["handler"] == nil {
				t.Fatalf("no handler in the package: %v", files)
			}
			checkStaticELF(t, files["handler"])
			if tc.program {
				// The compiled-in program is the handler itself.
				if files["program"] != nil {
					t.Error("a separate program file next to the handler")
				}
				if files["files/data/model.txt"] == nil {
					t.Error("extra file missing")
				}
				m := jsonOf(t, files["lithops-runtime.json"])
				if m["program_sha256"] == "" || m["env"].(map[string]any)["MODEL"] != "data/model.txt" {
					t.Errorf("manifest %v", m)
				}
			}
		})
	}
	if _, err := run(t, "runtime", "build", "-c", cfg, "-f", filepath.Join(dir, "missing.yaml"), "x"); err == nil {
		t.Error("missing -f file accepted")
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("programm: x\n"), 0o644)
	if _, err := run(t, "runtime", "build", "-c", cfg, "-f", bad, "x"); err == nil || !strings.Contains(err.Error(), "programm") {
		t.Errorf("unknown spec key: %v", err)
	}
	// A library package is not a program (it used to pack an ar archive).
	if _, err := run(t, "runtime", "build", "-c", cfg, "-f", "../../storage/memory", "x"); err == nil || !strings.Contains(err.Error(), "not a main package") {
		t.Errorf("library package as -f: %v", err)
	}
	if _, err := run(t, "runtime", "build", "x"); err == nil || !strings.Contains(err.Error(), "-b azure_functions") {
		t.Errorf("localhost runtime build: %v", err)
	}
}
