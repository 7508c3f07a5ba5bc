package localfs

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// holds lists the holds under root, sorted.
func holds(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, ".tmp", holdDir))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// dirsBelow lists the directories below root/b, slash-separated.
func dirsBelow(root string) []string {
	var dirs []string
	bdir := filepath.Join(root, "b")
	filepath.WalkDir(bdir, func(p string, de os.DirEntry, err error) error {
		if err == nil && de.IsDir() && p != bdir {
			rel, _ := filepath.Rel(bdir, p)
			dirs = append(dirs, filepath.ToSlash(rel))
		}
		return nil
	})
	return dirs
}

// TestTreeRemovalLeavesHold: removing the last key of a tree below a marked
// top (an executor's directory) leaves one hold in .tmp/hold and nothing
// in the bucket: the key space is as without holds. A Delete that leaves
// the tree standing makes none.
func TestTreeRemovalLeavesHold(t *testing.T) {
	root := markableRoot(t)
	ctx := t.Context()
	s := openBucket(t, root)
	for _, k := range []string{"jobs/e1/A/status/1", "jobs/e1/B/status/1", "jobs/e2/A/status/1"} {
		if err := s.PutBytes(ctx, "b", k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "b", "jobs/e1/A/status/1"); err != nil {
		t.Fatal(err)
	}
	if h := holds(t, root); len(h) != 0 {
		t.Errorf("holds after a Delete that left the tree: %v", h)
	}
	if _, err := s.DeletePrefix(ctx, "b", "jobs/e1/"); err != nil {
		t.Fatal(err)
	}
	if h := holds(t, root); len(h) != 1 {
		t.Errorf("holds after the tree's last key went: %v, want one", h)
	}
	if got, want := dirsBelow(root), []string{"jobs", "jobs/e2", "jobs/e2/A", "jobs/e2/A/status"}; !slices.Equal(got, want) {
		t.Errorf("directories left %v, want %v", got, want)
	}
	// The tree's name is free: it can be a key of its own.
	if err := s.PutBytes(ctx, "b", "jobs/e1", []byte("y")); err != nil {
		t.Errorf("Put of the removed tree's name: %v", err)
	}
	if _, err := s.DeletePrefix(ctx, "b", "jobs/"); err != nil {
		t.Fatal(err)
	}
	if got := dirsBelow(root); len(got) != 0 {
		t.Errorf("directories left %v, want none", got)
	}
	if h := holds(t, root); len(h) != 2 {
		t.Errorf("holds after the second tree went: %v, want two", h)
	}
}

// TestHoldsSwept: a hold's removal of a tree sweeps the holds older than
// holdFor, keeps the younger ones and leaves names that are not holds'.
func TestHoldsSwept(t *testing.T) {
	root := markableRoot(t)
	ctx := t.Context()
	hdir := filepath.Join(root, ".tmp", holdDir)
	old := fmt.Sprintf("%d-1", time.Now().Add(-holdFor-time.Second).Unix())
	young := fmt.Sprintf("%d-2", time.Now().Add(-holdFor+time.Minute).Unix())
	for _, name := range []string{old, young, "not-a-hold", "12-notempty"} {
		if err := os.MkdirAll(filepath.Join(hdir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(hdir, "12-notempty", "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := openBucket(t, root)
	if err := s.PutBytes(ctx, "b", "jobs/e/k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "b", "jobs/e/k"); err != nil {
		t.Fatal(err)
	}
	h := holds(t, root)
	if slices.Contains(h, old) || !slices.Contains(h, young) || !slices.Contains(h, "not-a-hold") || !slices.Contains(h, "12-notempty") || len(h) != 4 {
		t.Errorf("holds after the sweep: %v; want %s gone, %s, not-a-hold, 12-notempty and the new one", h, old, young)
	}
}

// TestSweepAtMostOnceAMinute: sweeps of one driver are a minute apart.
func TestSweepAtMostOnceAMinute(t *testing.T) {
	root := t.TempDir()
	d, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	hdir := filepath.Join(root, ".tmp", holdDir)
	now := time.Now().Add(61 * time.Second) // New swept just now
	mk := func(name string) {
		if err := os.MkdirAll(filepath.Join(hdir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mk("1-1")
	d.sweepHolds(hdir, now)
	mk("1-2")
	d.sweepHolds(hdir, now.Add(59*time.Second))
	if h := holds(t, root); !slices.Equal(h, []string{"1-2"}) {
		t.Errorf("holds after two sweeps 59 s apart: %v, want [1-2]", h)
	}
	d.sweepHolds(hdir, now.Add(61*time.Second))
	if h := holds(t, root); len(h) != 0 {
		t.Errorf("holds after a sweep a minute later: %v, want none", h)
	}
}

// TestHoldFailures: where a hold cannot be made or moved the tree goes as
// it did without holds, and nothing is left behind.
func TestHoldFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root string)
	}{
		{"hold directory is a file", func(t *testing.T, root string) {
			if err := os.WriteFile(filepath.Join(root, ".tmp", holdDir), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"hold cannot be made", func(t *testing.T, root string) {
			orig := holdMkdir
			holdMkdir = func(string) error { return unix.ENOSPC }
			t.Cleanup(func() { holdMkdir = orig })
		}},
		{".tmp removed", func(t *testing.T, root string) {
			if err := os.RemoveAll(filepath.Join(root, ".tmp")); err != nil {
				t.Fatal(err)
			}
		}},
		{"top not marked", func(t *testing.T, root string) {
			fd, err := unix.Open(filepath.Join(root, "b", "jobs"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			fl, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, fl&^fsTopdirFL); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := markableRoot(t)
			ctx := t.Context()
			if err := openBucket(t, root).PutBytes(ctx, "b", "jobs/e/k", []byte("x")); err != nil {
				t.Fatal(err)
			}
			s := openBucket(t, root) // a driver that did not mark the top
			tc.setup(t, root)
			if err := s.Delete(ctx, "b", "jobs/e/k"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if got := dirsBelow(root); len(got) != 0 {
				t.Errorf("directories left %v, want none", got)
			}
			if fi, err := os.Stat(filepath.Join(root, ".tmp", holdDir)); err == nil && fi.IsDir() {
				if h := holds(t, root); len(h) != 0 {
					t.Errorf("holds %v, want none", h)
				}
			}
		})
	}
}

// TestHoldMadeInsideTheTree: a hold is made inside the tree it holds (so
// ext4 places it in the tree's block group), then moved out.
func TestHoldMadeInsideTheTree(t *testing.T) {
	root := markableRoot(t)
	ctx := t.Context()
	var made []string
	orig := holdMkdir
	holdMkdir = func(path string) error { made = append(made, path); return orig(path) }
	defer func() { holdMkdir = orig }()
	s := openBucket(t, root)
	if err := s.PutBytes(ctx, "b", "jobs/e/A/k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "b", "jobs/e/A/k"); err != nil {
		t.Fatal(err)
	}
	if tree := filepath.Join(root, "b", "jobs", "e"); len(made) != 1 || filepath.Dir(made[0]) != tree {
		t.Errorf("holds made at %v, want one inside %s", made, tree)
	}
}

// TestHoldByAnotherDriver: a driver that did not mark the top (a process
// that only cleans) finds the mark and leaves a hold too.
func TestHoldByAnotherDriver(t *testing.T) {
	root := markableRoot(t)
	ctx := t.Context()
	if err := openBucket(t, root).PutBytes(ctx, "b", "jobs/e/k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := openBucket(t, root).Delete(ctx, "b", "jobs/e/k"); err != nil {
		t.Fatal(err)
	}
	if h := holds(t, root); len(h) != 1 {
		t.Errorf("holds %v, want one", h)
	}
}

// TestHoldLeftInsideByACrash: a hold left inside its tree (its process
// died before moving it) does not keep the tree: the next removal takes it.
func TestHoldLeftInsideByACrash(t *testing.T) {
	root := markableRoot(t)
	ctx := t.Context()
	s := openBucket(t, root)
	if err := s.PutBytes(ctx, "b", "jobs/e/k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for i := range 10 { // more than one read of the directory's names
		if err := os.Mkdir(filepath.Join(root, "b", "jobs", "e", fmt.Sprintf("%s1-%d", holdPrefix, i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "b", "jobs/e/k"); err != nil {
		t.Fatal(err)
	}
	if got := dirsBelow(root); len(got) != 0 {
		t.Errorf("directories left %v, want none", got)
	}
	if err := s.PutBytes(ctx, "b", "jobs/e", []byte("y")); err != nil {
		t.Errorf("Put of the removed tree's name: %v", err)
	}
}

// TestHoldsCapped: a tree emptied and filled again in a loop leaves at
// most maxHolds holds between two sweeps.
func TestHoldsCapped(t *testing.T) {
	root := markableRoot(t)
	ctx := t.Context()
	s := openBucket(t, root)
	for range maxHolds + 6 {
		if err := s.PutBytes(ctx, "b", "jobs/e/k", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "b", "jobs/e/k"); err != nil {
			t.Fatal(err)
		}
	}
	if h := holds(t, root); len(h) != maxHolds {
		t.Errorf("%d holds, want %d", len(h), maxHolds)
	}
}

// TestOpenSweepsHolds: opening the root sweeps the old holds.
func TestOpenSweepsHolds(t *testing.T) {
	root := t.TempDir()
	hdir := filepath.Join(root, ".tmp", holdDir)
	old := fmt.Sprintf("%d-1", time.Now().Add(-holdFor-time.Second).Unix())
	young := fmt.Sprintf("%d-2", time.Now().Unix())
	for _, name := range []string{old, young} {
		if err := os.MkdirAll(filepath.Join(hdir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(root); err != nil {
		t.Fatal(err)
	}
	if h := holds(t, root); !slices.Equal(h, []string{young}) {
		t.Errorf("holds after New: %v, want [%s]", h, young)
	}
}

// TestTreeEmpty: a tree is empty when it has no entries, or only holds a
// crash left inside it (removed); one that cannot be read is not known.
func TestTreeEmpty(t *testing.T) {
	for _, tc := range []struct {
		name            string
		entries         []string // directories; "x/f" a file in x
		wantEmpty, okay bool
		left            int // entries left after
	}{
		{"no entries", nil, true, true, 0},
		{"holds left by a crash", []string{holdPrefix + "1-1", holdPrefix + "1-2"}, true, true, 0},
		{"a hold and a key's directory", []string{holdPrefix + "1-1", "A000"}, false, true, 2}, // the hold goes if read first
		{"a hold that is not empty", []string{holdPrefix + "1-1", holdPrefix + "1-1/f"}, false, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, e := range tc.entries {
				if d, f, ok := strings.Cut(e, "/"); ok {
					if err := os.WriteFile(filepath.Join(dir, d, f), nil, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := os.Mkdir(filepath.Join(dir, e), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			empty, ok := treeEmpty(dir)
			if empty != tc.wantEmpty || ok != tc.okay {
				t.Errorf("treeEmpty = %v, %v; want %v, %v", empty, ok, tc.wantEmpty, tc.okay)
			}
			if left, _ := os.ReadDir(dir); len(left) > tc.left {
				t.Errorf("%d entries left, want at most %d", len(left), tc.left)
			}
		})
	}
	if _, ok := treeEmpty(filepath.Join(t.TempDir(), "missing")); ok {
		t.Error("treeEmpty of a missing directory: ok")
	}
}
