package localfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/driver"
	"github.com/lithops-go/lithops/storage/localfs"
	"github.com/lithops-go/lithops/storage/storagetest"
)

func newStorage(t *testing.T, dir string) *storage.Storage {
	t.Helper()
	d, err := localfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := storage.New(d, "localhost", "lithops-test")
	t.Cleanup(func() { s.Close() })
	if err := s.CreateBucket(t.Context(), s.Bucket()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storagetest.RunConformance(t, func(t *testing.T) *storage.Storage {
		return newStorage(t, t.TempDir())
	})
}

// A Put in progress is invisible: its bytes sit in <root>/.tmp until the
// link or rename, so neither List nor Head sees a partial object.
func TestTempFilesInvisible(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	s := newStorage(t, root)
	pr, pw := io.Pipe()
	putErr := make(chan error, 1)
	go func() { putErr <- s.Put(ctx, s.Bucket(), "dir/obj", pr) }()
	if _, err := pw.Write(bytes.Repeat([]byte("x"), 1<<20)); err != nil {
		t.Fatal(err)
	}
	// The writer has consumed 1 MiB; the object is half written.
	// Its bytes are in .tmp: a named temp file, or on Linux an unnamed
	// O_TMPFILE one that no directory lists.
	tmp, _ := os.ReadDir(filepath.Join(root, ".tmp"))
	if len(tmp) > 1 {
		t.Errorf("want at most one temp file during the Put, have %d", len(tmp))
	}
	for _, prefix := range []string{"", "dir", "dir/"} {
		if infos, err := s.List(ctx, s.Bucket(), prefix); err != nil || len(infos) != 0 {
			t.Errorf("List(%q) during a Put = %+v, %v; want nothing", prefix, infos, err)
		}
	}
	if _, err := s.Head(ctx, s.Bucket(), "dir/obj"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Head during a Put: err = %v, want ErrNotFound", err)
	}
	pw.Close()
	if err := <-putErr; err != nil {
		t.Fatal(err)
	}
	if infos, err := s.List(ctx, s.Bucket(), ""); err != nil || len(infos) != 1 || infos[0].Size != 1<<20 {
		t.Errorf("List after the Put = %+v, %v", infos, err)
	}
	if tmp, _ := os.ReadDir(filepath.Join(root, ".tmp")); len(tmp) != 0 {
		t.Errorf("%d temp files left after the Put", len(tmp))
	}
	// A failed Put removes its temp file.
	pr, pw = io.Pipe()
	go func() { pw.Write([]byte("partial")); pw.CloseWithError(errors.New("client went away")) }()
	if err := s.Put(ctx, s.Bucket(), "dir/failed", pr); err == nil {
		t.Error("Put from a failing reader succeeded")
	}
	if tmp, _ := os.ReadDir(filepath.Join(root, ".tmp")); len(tmp) != 0 {
		t.Errorf("%d temp files left after a failed Put", len(tmp))
	}
}

// Keys are paths below the bucket directory; nothing may reach outside it.
func TestPathTraversalRejected(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	s := newStorage(t, root)
	b := s.Bucket()
	// A file in a sibling bucket and one next to the root, as bait.
	other := newStorage(t, root)
	if err := other.CreateBucket(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if err := other.PutBytes(ctx, "other", "secret", []byte("s")); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(filepath.Dir(root), filepath.Base(root)+"-outside")
	t.Cleanup(func() { os.Remove(outside) })

	for _, key := range []string{"../x", "../other/secret", "a/../../x", "a/../b", "./a", "a/./b", "/abs", "a//b", "a/", "..", "."} {
		err := s.PutBytes(ctx, b, key, []byte("evil"))
		if err == nil {
			t.Errorf("Put(%q) succeeded", key)
		}
		if _, err := s.GetBytes(ctx, b, key); err == nil {
			t.Errorf("Get(%q) succeeded", key)
		}
		if _, err := s.Head(ctx, b, key); err == nil {
			t.Errorf("Head(%q) succeeded", key)
		}
		if err := s.Delete(ctx, b, key); err == nil {
			t.Errorf("Delete(%q) succeeded", key)
		}
	}
	if got, _ := other.GetBytes(ctx, "other", "secret"); string(got) != "s" {
		t.Errorf("the other bucket's object was changed: %q", got)
	}
	for _, prefix := range []string{"../", "../other", "..", "a/../../", "./"} {
		infos, err := s.List(ctx, b, prefix)
		if err != nil || len(infos) != 0 {
			t.Errorf("List(%q) = %+v, %v; want nothing", prefix, infos, err)
		}
	}
	if _, err := os.Stat(outside); err == nil {
		t.Errorf("a file was written outside the root: %s", outside)
	}
	entries, _ := os.ReadDir(filepath.Join(root, b))
	if len(entries) != 0 {
		t.Errorf("bucket directory not empty after rejected writes: %v", entries)
	}
}

// A key cannot be both an object and a "directory" of other keys.
func TestKeyDirectoryConflict(t *testing.T) {
	ctx := t.Context()
	s := newStorage(t, t.TempDir())
	b := s.Bucket()
	if err := s.PutBytes(ctx, b, "a", []byte("file")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBytes(ctx, b, "a/b", []byte("x")); err == nil || !strings.Contains(err.Error(), "collides") {
		t.Errorf("Put(a/b) over object a: err = %v, want a collision error", err)
	}
	if err := s.PutBytes(ctx, b, "c/d", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBytes(ctx, b, "c", []byte("x")); err == nil || !strings.Contains(err.Error(), "collides") {
		t.Errorf("Put(c) over directory c: err = %v, want a collision error", err)
	}
	if got, _ := s.GetBytes(ctx, b, "a"); string(got) != "file" {
		t.Errorf("object a = %q after the refused Put", got)
	}
}

// Deleting the last key of a directory removes the directory; a concurrent
// Put into that directory must still succeed.
func TestPutRacesDirectoryRemoval(t *testing.T) {
	ctx := t.Context()
	s := newStorage(t, t.TempDir())
	b := s.Bucket()
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		key := fmt.Sprintf("jobs/j%d/status", i%4)
		wg.Go(func() { errs <- s.PutBytes(ctx, b, key, []byte("x")) })
		wg.Go(func() { errs <- s.Delete(ctx, b, key) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// Objects are ordinary files under <root>/<bucket>/<key>.
func TestLayout(t *testing.T) {
	root := t.TempDir()
	s := newStorage(t, root)
	if err := s.PutBytes(context.Background(), s.Bucket(), "x/y.txt", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, s.Bucket(), "x", "y.txt"))
	if err != nil || string(b) != "hi" {
		t.Errorf("file = %q, %v", b, err)
	}
}

// dirsUnder lists the directories under the bucket of s at root.
func dirsUnder(s *storage.Storage, root string) []string {
	var dirs []string
	bdir := filepath.Join(root, s.Bucket())
	filepath.WalkDir(bdir, func(p string, de os.DirEntry, err error) error {
		if err == nil && de.IsDir() && p != bdir {
			rel, _ := filepath.Rel(bdir, p)
			dirs = append(dirs, filepath.ToSlash(rel))
		}
		return nil
	})
	return dirs
}

// TestPrepare: Prepare makes a prefix's directory; Unprepare removes it
// and the parents it leaves empty, never what holds a key, nor the bucket;
// a prefix that is not a directory's, or runs into a key, is refused.
func TestPrepare(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name      string
		put       []string // keys written before
		prepare   string
		after     []string // keys written after Prepare
		dirsMade  []string // directories after Prepare
		dirsLeft  []string // directories after Unprepare
		wantError string   // Prepare's
		unprepare string   // the prefix unprepared, if not prepare
	}{
		{"in a new tree", nil, "lithops.jobs/e/A001/", nil, []string{"lithops.jobs", "lithops.jobs/e", "lithops.jobs/e/A001"}, nil, "", ""},
		{"beside a job", []string{"lithops.jobs/e/A000/job.json"}, "lithops.jobs/e/A001/", nil,
			[]string{"lithops.jobs", "lithops.jobs/e", "lithops.jobs/e/A000", "lithops.jobs/e/A001"}, []string{"lithops.jobs", "lithops.jobs/e", "lithops.jobs/e/A000"}, "", ""},
		{"taken by a job", nil, "lithops.jobs/e/A001/", []string{"lithops.jobs/e/A001/job.json"},
			[]string{"lithops.jobs", "lithops.jobs/e", "lithops.jobs/e/A001"}, []string{"lithops.jobs", "lithops.jobs/e", "lithops.jobs/e/A001"}, "", ""},
		{"not a directory's prefix", nil, "lithops.jobs/e/A0", nil, nil, nil, `ends with "/"`, ""},
		{"into a key", []string{"lithops.jobs/e"}, "lithops.jobs/e/A001/", nil, []string{"lithops.jobs"}, []string{"lithops.jobs"}, "collides", ""},
		{"a key's own name", []string{"lithops.jobs/e/A001"}, "lithops.jobs/e/A001/", nil, []string{"lithops.jobs", "lithops.jobs/e"}, nil, "collides", ""},
		{"the empty directories under it", []string{"x/a/k", "x/d/k"}, "x/b/c/", nil,
			[]string{"x", "x/a", "x/b", "x/b/c", "x/d"}, []string{"x", "x/a", "x/d"}, "", "x/"},
		{"a bad segment", nil, "lithops.jobs/../x/", nil, nil, nil, "segments", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			s := newStorage(t, root)
			p := s.Driver().(driver.Preparer)
			for _, k := range tc.put {
				if err := s.PutBytes(ctx, s.Bucket(), k, []byte(k)); err != nil {
					t.Fatal(err)
				}
			}
			err := p.Prepare(ctx, s.Bucket(), tc.prepare)
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("Prepare: %v, want an error with %q", err, tc.wantError)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := dirsUnder(s, root); fmt.Sprint(got) != fmt.Sprint(tc.dirsMade) {
				t.Fatalf("directories after Prepare %v, want %v", got, tc.dirsMade)
			}
			for _, k := range tc.after {
				if err := s.PutBytes(ctx, s.Bucket(), k, []byte(k)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.wantError != "" {
				return
			}
			un := tc.prepare
			if tc.unprepare != "" {
				un = tc.unprepare
			}
			if err := p.Unprepare(ctx, s.Bucket(), un); err != nil {
				t.Fatal(err)
			}
			if got := dirsUnder(s, root); fmt.Sprint(got) != fmt.Sprint(tc.dirsLeft) {
				t.Fatalf("directories after Unprepare %v, want %v", got, tc.dirsLeft)
			}
		})
	}
}

// Delete removes the directories its keys leave empty, however the keys
// are ordered, and leaves alone directories that still hold a key; a key
// that does not exist, or names a directory, is no error.
func TestDeleteRemovesEmptyDirectories(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name     string
		put, del []string
		dirsLeft []string // directories under the bucket after the delete
	}{
		{"siblings, then their parent", []string{"j/status/1", "j/lease/1", "j/inputs"}, []string{"j/status/1", "j/lease/1", "j/inputs"}, nil},
		{"parent key first", []string{"j/inputs", "j/status/1", "j/lease/1"}, []string{"j/inputs", "j/lease/1", "j/status/1"}, nil},
		{"a key stays", []string{"j/status/1", "j/status/2", "j/lease/1"}, []string{"j/status/1", "j/lease/1"}, []string{"j", "j/status"}},
		{"missing and directory keys", []string{"j/status/1"}, []string{"j/nothing", "nothing/at/all", "j/status"}, []string{"j", "j/status"}},
		{"deep", []string{"a/b/c/d/e"}, []string{"a/b/c/d/e"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			s := newStorage(t, root)
			for _, k := range tc.put {
				if err := s.PutBytes(ctx, s.Bucket(), k, []byte(k)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Delete(ctx, s.Bucket(), tc.del...); err != nil {
				t.Fatal(err)
			}
			if dirs := dirsUnder(s, root); fmt.Sprint(dirs) != fmt.Sprint(tc.dirsLeft) {
				t.Errorf("directories left %v, want %v", dirs, tc.dirsLeft)
			}
		})
	}
}

// Create-if-absent writes, the status record of every call, leave nothing
// behind in .tmp, whether they win or lose.
func TestPutIfAbsentLeavesNoTempFiles(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	s := newStorage(t, root)
	var wg sync.WaitGroup
	var won sync.Map
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.PutIfAbsent(ctx, s.Bucket(), "job/status/00001.json", strings.NewReader(fmt.Sprint(i)))
			if err == nil {
				won.Store(i, true)
			} else if !errors.Is(err, storage.ErrExists) {
				t.Errorf("writer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	n := 0
	won.Range(func(k, v any) bool { n++; return true })
	if n != 1 {
		t.Errorf("%d writers won, want 1", n)
	}
	if tmp, _ := os.ReadDir(filepath.Join(root, ".tmp")); len(tmp) != 0 {
		t.Errorf("%d temp files left", len(tmp))
	}
}
