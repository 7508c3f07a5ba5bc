//go:build unix

package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/procpool"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/memory"
)

// putPrograms stores n distinct programs of size bytes each and returns
// their hashes, named A, B, … in order.
func putPrograms(t *testing.T, st *storage.Storage, n, size int) map[string]string {
	t.Helper()
	shas := map[string]string{}
	for i := range n {
		prog := []byte(fmt.Sprintf("#!/bin/sh\n# program %d\n", i))
		prog = append(prog, strings.Repeat("#", max(0, size-len(prog)))...)
		sum := sha256.Sum256(prog)
		sha := hex.EncodeToString(sum[:])
		if err := st.PutBytes(context.Background(), "b", protocol.ProgramKey(sha), gz(prog)); err != nil {
			t.Fatal(err)
		}
		shas[string(rune('A'+i))] = sha
	}
	return shas
}

// TestProgramCacheBound: beyond its count or byte bound the cache drops
// the least recently used programs, never one in use (pinned here or
// locked by another host process sharing the directory). On Unix a pin is
// also a file lock, so either keeps a program in use.
func TestProgramCacheBound(t *testing.T) {
	st := storage.New(memory.New(), "memory", "b")
	st.CreateBucket(context.Background(), "b")
	shas := putPrograms(t, st, 5, 1000)
	tests := []struct {
		name     string
		maxCount int
		maxBytes int64
		// steps: "+X" gets (and pins) X, "-X" releases it, "lock X" takes
		// another process's lock on X, "unlock X" drops it.
		steps []string
		want  string // programs on disk after the steps, sorted
	}{
		{"count: least recently used goes", 2, 1 << 20, []string{"+A", "-A", "+B", "-B", "+C", "-C"}, "BC"},
		{"count: a use makes it recent", 2, 1 << 20, []string{"+A", "-A", "+B", "-B", "+A", "-A", "+C", "-C"}, "AC"},
		{"bytes: least recently used goes", 10, 2500, []string{"+A", "-A", "+B", "-B", "+C", "-C"}, "BC"},
		{"in use stays over the bound", 1, 1 << 20, []string{"+A", "+B", "+C"}, "ABC"},
		{"released goes once the bound allows", 1, 1 << 20, []string{"+A", "+B", "+C", "-A", "-C"}, "B"},
		{"pinned twice stays until both release", 1, 1 << 20, []string{"+A", "+A", "-A", "+B", "-B"}, "A"},
		{"pinned twice goes after both release", 1, 1 << 20, []string{"+A", "+A", "-A", "+B", "-A", "-B"}, "B"},
		{"another process's lock keeps it", 1, 1 << 20, []string{"+A", "-A", "lock A", "+B", "-B", "+C", "-C"}, "A"},
		{"and then it goes", 1, 1 << 20, []string{"+A", "-A", "lock A", "+B", "-B", "unlock A", "+C", "-C"}, "C"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := newProgramCache(st, t.TempDir(), discard(), tc.maxCount, tc.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			locks := map[string]*os.File{}
			defer func() {
				for _, f := range locks {
					f.Close()
				}
			}()
			for _, step := range tc.steps {
				switch op, name, _ := strings.Cut(step, " "); {
				case step[0] == '+':
					path, err := pc.get(context.Background(), shas[step[1:]])
					if err != nil {
						t.Fatalf("%s: %v", step, err)
					}
					if _, err := os.Stat(path); err != nil {
						t.Fatalf("%s: a program just got is not on disk: %v", step, err)
					}
				case step[0] == '-':
					pc.release(shas[step[1:]])
				case op == "lock":
					f, err := lockShared(filepath.Join(pc.dir, shas[name]))
					if err != nil || f == nil {
						t.Fatalf("%s: %v", step, err)
					}
					locks[name] = f
				case op == "unlock":
					locks[name].Close()
					delete(locks, name)
				}
			}
			if got := onDisk(t, pc.dir, shas); got != tc.want {
				t.Fatalf("on disk: %q, want %q", got, tc.want)
			}
		})
	}
}

// onDisk names the programs of shas in dir, sorted.
func onDisk(t *testing.T, dir string, shas map[string]string) string {
	t.Helper()
	var got []string
	for name, sha := range shas {
		if _, err := os.Stat(filepath.Join(dir, sha)); err == nil {
			got = append(got, name)
		}
	}
	slices.Sort(got)
	return strings.Join(got, "")
}

// TestProgramCacheBoundAtStart: programs an earlier host left in the
// directory count, and the least recently used go when a host starts.
func TestProgramCacheBoundAtStart(t *testing.T) {
	st := storage.New(memory.New(), "memory", "b")
	st.CreateBucket(context.Background(), "b")
	shas := putPrograms(t, st, 3, 100)
	dir := t.TempDir()
	old, err := newProgramCache(st, dir, discard(), 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"A", "B", "C"} {
		if _, err := old.get(context.Background(), shas[name]); err != nil {
			t.Fatal(err)
		}
		old.release(shas[name])
		// Uses an hour apart, B the oldest.
		at := time.Now().Add(time.Duration([]int{-1, -2, 0}[i]) * time.Hour)
		os.Chtimes(filepath.Join(dir, shas[name]), at, at)
	}
	os.WriteFile(filepath.Join(dir, ".fetch-123"), []byte("partial"), 0o600) // not a program: left alone
	if _, err := newProgramCache(st, dir, discard(), 2, 1<<20); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, dir, shas); got != "AC" {
		t.Fatalf("on disk after a start with a bound of 2: %q, want AC", got)
	}
	if _, err := os.Stat(filepath.Join(dir, ".fetch-123")); err != nil {
		t.Fatal("a file that is not a program was removed")
	}
}

// answeringProgram writes a worker program that answers every call with
// an error response (the pool keeps such a worker for the next call).
func answeringProgram(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	script := "#!/bin/sh\nwhile read -r line <&3; do printf '{\"error\":\"no\"}\\n' >&4; done\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestResidentProgramsBound: the host keeps the worker pools of at most
// MaxResidentPrograms programs; beyond that the least recently used pool
// that no run uses is closed (its resident workers stop).
func TestResidentProgramsBound(t *testing.T) {
	tests := []struct {
		name string
		max  int
		// steps: "+X" takes X's pool for a run (and runs a call on it, so
		// that a worker is resident), "-X" ends that run.
		steps []string
		want  string // resident programs after the steps, sorted
	}{
		{"least recently used goes", 2, []string{"+A", "-A", "+B", "-B", "+C", "-C"}, "BC"},
		{"a run makes it recent", 2, []string{"+A", "-A", "+B", "-B", "+A", "-A", "+C", "-C"}, "AC"},
		{"in use stays over the bound", 1, []string{"+A", "+B", "+C"}, "ABC"},
		{"goes once its run ends", 1, []string{"+A", "+B", "+C", "-A", "-B"}, "C"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := storage.New(memory.New(), "memory", "b")
			h, err := New(Options{Storage: st, CacheDir: t.TempDir(), Workers: 1, MaxResidentPrograms: tc.max, Logger: discard()})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			progs := map[string]string{}
			pools := map[string]*procpool.Pool{}
			releases := map[string]func(){}
			for _, step := range tc.steps {
				name := step[1:]
				if progs[name] == "" {
					progs[name] = answeringProgram(t, name)
				}
				if step[0] == '-' {
					releases[name]()
					continue
				}
				p, release, err := h.pool(progs[name])
				if err != nil {
					t.Fatal(err)
				}
				pools[name], releases[name] = p, release
				runOne(t, p)
				if p.Stats().Processes != 1 {
					t.Fatalf("%s: no resident worker after a call", step)
				}
			}
			var got []string
			h.mu.Lock()
			for name, prog := range progs {
				if h.pools[prog] != nil {
					got = append(got, name)
				}
			}
			h.mu.Unlock()
			slices.Sort(got)
			if strings.Join(got, "") != tc.want {
				t.Fatalf("resident: %v, want %s", got, tc.want)
			}
			for name, p := range pools {
				if gone := !strings.Contains(tc.want, name); gone && p.Stats().Processes != 0 {
					t.Fatalf("program %s was evicted but its worker still runs", name)
				}
			}
		})
	}
}

// runOne runs a call on p and waits for its answer.
func runOne(t *testing.T, p *procpool.Pool) {
	t.Helper()
	done := make(chan procpool.Result, 1)
	inv := protocol.Invocation{Version: protocol.Version, Bucket: "b", ExecutorID: "e", JobID: "j", Calls: []protocol.Call{{ID: "00000"}}}
	if err := p.Submit(&procpool.Task{Ctx: context.Background(), Invocation: inv, Done: func(r procpool.Result) { done <- r }}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.Err != nil || r.Response.Error != "no" {
			t.Fatalf("call: %+v, %v", r.Response, r.Err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the call did not end")
	}
}

func TestHostDefaults(t *testing.T) {
	st := storage.New(memory.New(), "memory", "b")
	tests := []struct {
		idle, wantIdle time.Duration
		resident       int
		wantResident   int
	}{
		{0, DefaultWorkerIdleTimeout, 0, DefaultMaxResidentPrograms},
		{-1, 0, 3, 3},
		{time.Second, time.Second, -1, DefaultMaxResidentPrograms},
	}
	for _, tc := range tests {
		h, err := New(Options{Storage: st, CacheDir: t.TempDir(), WorkerIdleTimeout: tc.idle, MaxResidentPrograms: tc.resident})
		if err != nil {
			t.Fatal(err)
		}
		if h.opts.WorkerIdleTimeout != tc.wantIdle || h.opts.MaxResidentPrograms != tc.wantResident {
			t.Errorf("idle %v, resident %d: got %v, %d; want %v, %d", tc.idle, tc.resident, h.opts.WorkerIdleTimeout, h.opts.MaxResidentPrograms, tc.wantIdle, tc.wantResident)
		}
		if h.programs.maxCount != DefaultMaxCachedPrograms || h.programs.maxBytes != DefaultMaxCacheBytes {
			t.Errorf("cache bounds %d, %d; want the defaults", h.programs.maxCount, h.programs.maxBytes)
		}
	}
}
