package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lithops-go/lithops"
)

func TestMain(m *testing.M) {
	lithops.Init()
	os.Exit(m.Run())
}

// run executes the CLI with args and returns its stdout.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHello(t *testing.T) {
	cfg := writeConfig(t, "localhost:\n  storage_root: "+t.TempDir()+"\n")
	out, err := run(t, "hello", "-c", cfg, "-m", "3")
	if err != nil || !strings.Contains(out, "Lithops is working as expected :) (backend: localhost, storage: localhost, 3 call(s)") {
		t.Fatalf("hello: %q, %v", out, err)
	}
	if _, err := run(t, "hello", "-m", "0"); err == nil {
		t.Fatal("hello -m 0 accepted")
	}
}

func TestVersion(t *testing.T) {
	out, err := run(t, "version")
	if err != nil || !strings.Contains(out, lithops.Version) {
		t.Fatalf("version: %q, %v", out, err)
	}
	// --version says the same.
	if flag, err := run(t, "--version"); err != nil || flag != out {
		t.Fatalf("--version: %q, %v; version: %q", flag, err, out)
	}
}

func TestConfigShowMasksSecrets(t *testing.T) {
	cfg := writeConfig(t, "azure_storage:\n  storage_account_name: acct\n  storage_account_key: SUPERSECRETKEY==\n  connection_string: AccountKey=OTHERSECRET\n")
	out, err := run(t, "config", "show", "-c", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "SUPERSECRETKEY") || strings.Contains(out, "OTHERSECRET") || !strings.Contains(out, "storage_account_key: '****'") {
		t.Fatalf("config show leaks or does not mask:\n%s", out)
	}
	if _, err := run(t, "config", "show", "-c", writeConfig(t, "lithops:\n  bakend: x\n")); err == nil || !strings.Contains(err.Error(), "lithops.bakend: unknown key") {
		t.Fatalf("bad config: %v", err)
	}
}

func TestStorageCommands(t *testing.T) {
	cfg := writeConfig(t, "localhost:\n  storage_root: "+t.TempDir()+"\n")
	src := filepath.Join(t.TempDir(), "data.txt")
	os.WriteFile(src, []byte("hello storage"), 0o644)
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"storage", "mkbucket", "b1"}, "bucket localhost://b1 ready"},
		{[]string{"storage", "put", src, "b1", "-k", "dir/data.txt"}, "uploaded"},
		{[]string{"storage", "put", src, "b1"}, "localhost://b1/data.txt"},
		{[]string{"storage", "list", "b1", "-p", "dir/"}, "dir/data.txt"},
		{[]string{"storage", "get", "b1", "dir/data.txt", "-o", "-"}, "hello storage"},
		{[]string{"storage", "delete", "b1", "-p", "dir/"}, "deleted 1 object(s)"},
		{[]string{"storage", "list", "b1"}, "Total objects: 1"},
		// Objects removed are counted, not keys asked for.
		{[]string{"storage", "delete", "b1", "data.txt", "nope.txt", "gone/too"}, "deleted 1 object(s)"},
		{[]string{"storage", "put", src, "b1"}, "uploaded"},
	}
	for _, s := range steps {
		out, err := run(t, append(s.args, "-c", cfg)...)
		if err != nil || !strings.Contains(out, s.want) {
			t.Fatalf("%v: %q, %v (want %q)", s.args, out, err, s.want)
		}
	}
	// Without -o the object lands in the working directory, and says so.
	t.Chdir(t.TempDir())
	if out, err := run(t, "storage", "get", "b1", "data.txt", "-c", cfg); err != nil || !strings.Contains(out, "downloaded localhost://b1/data.txt to data.txt") {
		t.Fatalf("get without -o: %q, %v", out, err)
	}
	if b, err := os.ReadFile("data.txt"); err != nil || string(b) != "hello storage" {
		t.Fatalf("downloaded file: %q, %v", b, err)
	}
	if _, err := run(t, "storage", "get", "b1", "missing", "-o", "-", "-c", cfg); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("get missing: %v", err)
	}
	if _, err := run(t, "storage", "delete", "b1", "-c", cfg); err == nil {
		t.Fatal("delete without keys or prefix accepted")
	}
}

// A mistyped subcommand is an error with a suggestion, not help and exit 0.
func TestUnknownSubcommand(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		suggest string
	}{
		{[]string{"storage", "lst"}, "list"},
		{[]string{"jobs", "foo"}, ""},
		{[]string{"runtime", "deplyo"}, "deploy"},
		{[]string{"config", "foo"}, ""},
		{[]string{"helo"}, "hello"},
	} {
		_, err := run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), "unknown command") || !strings.Contains(err.Error(), tc.suggest) {
			t.Errorf("%v: %v (want unknown command, suggesting %q)", tc.args, err, tc.suggest)
		}
	}
	// A group named alone shows its help.
	if out, err := run(t, "storage"); err != nil || !strings.Contains(out, "Available Commands") {
		t.Errorf("storage alone: %q, %v", out, err)
	}
}
