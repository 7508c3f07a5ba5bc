package localfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lithops-go/lithops/internal/quietsys"
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
	defer func(old func(*fileCalls, int, string) error, mode int32) {
		linkByFD = old
		emptyPathLink.Store(mode)
	}(linkByFD, emptyPathLink.Load())
	linkByFD = func(*fileCalls, int, string) error { return unix.ENOENT }
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
	root := markableRoot(t)
	s := openBucket(t, root)
	ctx := t.Context()
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
	for rel, want := range map[string]bool{
		"flat":         false, // no directory below it was made
		"lithops.jobs": true, "lithops.jobs/e1": false, "lithops.jobs/e1/A000": false,
		"data": true, "data/set": false,
		"records": true, "records/a": false,
	} {
		if got := isTop(t, filepath.Join(root, s.Bucket(), rel)); got != want {
			t.Errorf("%s marked top: %v, want %v", rel, got, want)
		}
	}
}

// markableRoot returns a temporary directory on a file system that keeps
// the top-of-hierarchies mark (ext4), or skips the test.
func markableRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	probe := filepath.Join(root, "probe")
	if err := os.Mkdir(probe, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(probe)
	if _, marked := markTopDir(probe); !marked || !isTop(t, probe) {
		t.Skip("the temporary directory's file system does not keep the top-of-hierarchies mark")
	}
	return root
}

func isTop(t *testing.T, dir string) bool {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	defer unix.Close(fd)
	fl, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	return err == nil && fl&fsTopdirFL != 0
}

// TestTopMarkedAgain: a first segment's directory that a Delete removed
// (it held nothing more), this driver's or another process's, is marked
// again when a write makes it again.
func TestTopMarkedAgain(t *testing.T) {
	for _, other := range []bool{false, true} {
		root := markableRoot(t)
		ctx := t.Context()
		writer := openBucket(t, root)
		deleter := writer
		if other {
			deleter = openBucket(t, root)
		}
		for round := range 2 {
			if err := writer.PutBytes(ctx, "b", "jobs/e/A000/status.json", []byte("x")); err != nil {
				t.Fatal(err)
			}
			if !isTop(t, filepath.Join(root, "b", "jobs")) {
				t.Fatalf("deleted by another driver %v, round %d: jobs/ is not marked top", other, round)
			}
			if _, err := deleter.DeletePrefix(ctx, "b", "jobs/"); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// openBucket returns a Storage over a new driver at root, bucket "b"
// created.
func openBucket(t *testing.T, root string) *storage.Storage {
	t.Helper()
	d, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	s := storage.New(d, "localhost", "b")
	if err := s.CreateBucket(t.Context(), "b"); err != nil {
		t.Fatal(err)
	}
	return s
}

// failingReader fails after its first bytes.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		return 0, errors.New("reader broke")
	}
	r.n = len(p)
	return copy(p, "partial"), nil
}

// TestFailedPutLeavesNoDirectory: a Put that fails, or is cancelled, makes
// no directory that stays (it would take the name of a key: x/y below).
func TestFailedPutLeavesNoDirectory(t *testing.T) {
	root := t.TempDir()
	s := openBucket(t, root)
	ctx := t.Context()
	if err := s.PutIfAbsent(ctx, "b", "x/y/z", &failingReader{}); err == nil {
		t.Fatal("a Put whose reader fails: no error")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.PutBytes(cancelled, "b", "p/q/r", []byte("x")); err == nil {
		t.Fatal("a cancelled Put: no error")
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "b")); len(ents) != 0 {
		t.Fatalf("left in the bucket: %v", ents)
	}
	if err := s.PutBytes(ctx, "b", "x/y", []byte("a key")); err != nil {
		t.Fatalf("a key where the failed Put's directory was: %v", err)
	}
}

// TestConformancePlainCalls runs the conformance suite with the runtime's
// own system calls, as on a root that may wait on a network (quietsys.Local
// false); TestConformance runs it with raw ones where /tmp is local.
func TestConformancePlainCalls(t *testing.T) {
	storagetest.RunConformance(t, func(t *testing.T) *storage.Storage {
		d, err := New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		d.quiet = false
		s := storage.New(d, "localhost", "lithops-test")
		t.Cleanup(func() { s.Close() })
		if err := s.CreateBucket(t.Context(), s.Bucket()); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestLocalRootIsQuiet: a root on a local file system gets raw calls, one
// on a file system that may wait on a network or a server does not.
func TestLocalRootIsQuiet(t *testing.T) {
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !d.quiet {
		t.Skip("the temporary directory is not on a file system quietsys knows as local")
	}
	if local, _ := quietsys.Local("/proc"); local {
		t.Errorf("procfs counted as a local file system for raw calls")
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if local, err := quietsys.Local(missing); local || err == nil {
		t.Errorf("Local of a missing path = %v, %v; want false and an error", local, err)
	}
	// A directory not made yet is not remembered as not local: once made,
	// its records' calls are raw.
	if d.quietAt(filepath.Join(d.root, "b", "later", "x")) {
		t.Errorf("a directory not made yet was taken as local")
	}
	if err := os.MkdirAll(filepath.Join(d.root, "b", "later", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if !d.quietAt(filepath.Join(d.root, "b", "later", "x")) {
		t.Errorf("a local directory, once made, not taken as local")
	}
	t.Setenv(quietsys.Env, "0")
	if d2, err := New(t.TempDir()); err != nil || d2.quiet {
		t.Errorf("with %s=0 the root is taken as local (%v)", quietsys.Env, err)
	}
}
