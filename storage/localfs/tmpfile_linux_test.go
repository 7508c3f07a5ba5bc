package localfs

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lithops-go/lithops/storage"
	"github.com/lithops-go/lithops/storage/storagetest"
	"golang.org/x/sys/unix"
)

// TestConformanceEachLink: the conformance suite with each way of linking
// an O_TMPFILE file into place: by descriptor (AT_EMPTY_PATH, a process
// with CAP_DAC_READ_SEARCH) and by its /proc/self/fd name (any other).
func TestConformanceEachLink(t *testing.T) {
	if !haveProcFD() {
		t.Skip("no /proc/self/fd: Put takes the portable path")
	}
	defer emptyPathLink.Store(emptyPathLink.Load())
	for _, mode := range []struct {
		name string
		v    int32
	}{{"by name", emptyPathNo}, {"unknown", emptyPathUnknown}} {
		t.Run(mode.name, func(t *testing.T) {
			emptyPathLink.Store(mode.v)
			storagetest.RunConformance(t, func(t *testing.T) *storage.Storage {
				d, err := New(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				return storage.New(d, "localhost", "b")
			})
			if mode.v == emptyPathNo && emptyPathLink.Load() != emptyPathNo {
				t.Fatal("a process told to link by name linked by descriptor")
			}
		})
	}
}

// TestLinkRefusedAfterItWorked: a process whose links by descriptor worked
// and then are refused (ENOENT, as the kernel answers without
// CAP_DAC_READ_SEARCH) still puts every object, new directories and
// existing ones, by name, and links by name from then on.
func TestLinkRefusedAfterItWorked(t *testing.T) {
	if !haveProcFD() {
		t.Skip("no /proc/self/fd: Put takes the portable path")
	}
	defer func(old func(int, string) error, mode int32) {
		linkByFD = old
		emptyPathLink.Store(mode)
	}(linkByFD, emptyPathLink.Load())
	linkByFD = func(int, string) error { return unix.ENOENT }
	emptyPathLink.Store(emptyPathYes)
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := storage.New(d, "localhost", "b")
	ctx := context.Background()
	if err := st.CreateBucket(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"new/dir/a", "new/dir/b", "top"} {
		if err := st.PutIfAbsent(ctx, "b", key, strings.NewReader(key)); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		if got, err := st.GetBytes(ctx, "b", key); err != nil || string(got) != key {
			t.Fatalf("get %s: %q, %v", key, got, err)
		}
	}
	if err := st.PutIfAbsent(ctx, "b", "top", strings.NewReader("again")); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second put: %v, want ErrExists", err)
	}
	if emptyPathLink.Load() != emptyPathNo {
		t.Fatal("still linking by descriptor after it was refused")
	}
}

// TestFirstSegmentMarkedTop: where the file system knows the mark (ext4),
// the directory of a bucket's first key segment is marked the top of
// directory hierarchies before a directory below it is made, by a write
// or a Prepare; nothing else is.
func TestFirstSegmentMarkedTop(t *testing.T) {
	root := t.TempDir()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, ferr := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	unix.Close(fd)
	if ferr != nil {
		t.Skipf("the temporary directory's file system keeps no inode flags: %v", ferr)
	}
	d, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	s := storage.New(d, "localhost", "b")
	ctx := t.Context()
	if err := s.CreateBucket(ctx, s.Bucket()); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBytes(ctx, s.Bucket(), "flat/key", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBytes(ctx, s.Bucket(), "lithops.jobs/e1/A000/job.json", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(ctx, s.Bucket(), "data/set/"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutIfAbsent(ctx, s.Bucket(), "records/a/b", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	top := func(rel string) bool {
		fd, err := unix.Open(filepath.Join(root, s.Bucket(), rel), unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		defer unix.Close(fd)
		fl, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		return fl&fsTopdirFL != 0
	}
	for rel, want := range map[string]bool{
		"flat":         false, // no directory below it was made
		"lithops.jobs": true, "lithops.jobs/e1": false, "lithops.jobs/e1/A000": false,
		"data": true, "data/set": false,
		"records": true, "records/a": false,
	} {
		if got := top(rel); got != want {
			t.Errorf("%s marked top: %v, want %v", rel, got, want)
		}
	}
}

// TestTopMarkedAgain: a first segment's directory that Delete removed (it
// held nothing more) is marked again when a write makes it again.
func TestTopMarkedAgain(t *testing.T) {
	root := t.TempDir()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, ferr := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	unix.Close(fd)
	if ferr != nil {
		t.Skipf("the temporary directory's file system keeps no inode flags: %v", ferr)
	}
	d, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	s := storage.New(d, "localhost", "b")
	ctx := t.Context()
	s.CreateBucket(ctx, "b")
	for round := range 2 {
		if err := s.PutBytes(ctx, "b", "jobs/e/A000/status.json", []byte("x")); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(filepath.Join(root, "b", "jobs"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fl, _ := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
		unix.Close(fd)
		if fl&fsTopdirFL == 0 {
			t.Fatalf("round %d: jobs/ is not marked top", round)
		}
		if _, err := s.DeletePrefix(ctx, "b", "jobs/"); err != nil {
			t.Fatal(err)
		}
	}
}
