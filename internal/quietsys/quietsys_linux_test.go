package quietsys

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPipeRoundTrip writes more than a pipe holds through Writer while
// Reader reads it: the writer waits in the poller when the pipe is full,
// the reader when it is empty, and the reader sees EOF once the writer
// closes.
func TestPipeRoundTrip(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	qr, qw := Reader(r), Writer(w)
	if _, ok := qr.(*reader); !ok {
		t.Fatalf("Reader of os.Pipe = %T, want the raw reader", qr)
	}
	if _, ok := qw.(*writer); !ok {
		t.Fatalf("Writer of os.Pipe = %T, want the raw writer", qw)
	}
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: 16 pipes full
	done := make(chan error, 1)
	go func() {
		n, err := qw.Write(want)
		if err == nil && n != len(want) {
			err = io.ErrShortWrite
		}
		w.Close()
		done <- err
	}()
	got, err := io.ReadAll(qr)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want the %d written", len(got), len(want))
	}
	if n, err := qr.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("read after EOF = %d, %v; want 0, EOF", n, err)
	}
}

// TestWriteBrokenPipe: a write whose reader has gone fails with EPIPE,
// naming the file, as os.File's does.
func TestWriteBrokenPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r.Close()
	_, err = Writer(w).Write([]byte("x"))
	var pe *os.PathError
	if !errors.Is(err, syscall.EPIPE) || !errors.As(err, &pe) || pe.Path != w.Name() {
		t.Fatalf("write to a pipe without reader: %v, want EPIPE on %s", err, w.Name())
	}
}

// TestClosedFile: reading or writing a closed file fails as os.File does.
func TestClosedFile(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	qr, qw := Reader(r), Writer(w)
	r.Close()
	w.Close()
	if _, err := qr.Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("read of a closed pipe: %v, want os.ErrClosed", err)
	}
	if _, err := qw.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write to a closed pipe: %v, want os.ErrClosed", err)
	}
}

// TestNotPollable: a descriptor that blocks (a regular file, a pipe left
// blocking) is read and written the ordinary way, never raw: a raw call
// that blocked would hold its processor.
func TestNotPollable(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "plain")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := Reader(f); got != io.Reader(f) {
		t.Errorf("Reader of a regular file = %T, want the file", got)
	}
	if got := Writer(f); got != io.Writer(f) {
		t.Errorf("Writer of a regular file = %T, want the file", got)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil { // blocking
		t.Fatal(err)
	}
	br, bw := os.NewFile(uintptr(p[0]), "blocking-r"), os.NewFile(uintptr(p[1]), "blocking-w")
	defer br.Close()
	defer bw.Close()
	if got := Reader(br); got != io.Reader(br) {
		t.Errorf("Reader of a blocking pipe = %T, want the file", got)
	}
	if got := Writer(bw); got != io.Writer(bw) {
		t.Errorf("Writer of a blocking pipe = %T, want the file", got)
	}
}

// TestFileCalls: the raw file calls return what the ordinary ones do,
// errors included.
func TestFileCalls(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sub); err != nil || !fi.IsDir() || fi.Mode().Perm()&0o700 != 0o700 {
		t.Fatalf("Mkdir made %v, %v", fi, err)
	}
	var pe *fs.PathError
	if err := Mkdir(sub, 0o755); !errors.Is(err, fs.ErrExist) || !errors.As(err, &pe) || pe.Path != sub {
		t.Errorf("Mkdir of an existing directory: %v, want ErrExist naming it", err)
	}
	if err := Mkdir(filepath.Join(dir, "no", "such"), 0o755); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Mkdir under a missing directory: %v, want ErrNotExist", err)
	}
	if err := Mkdir("bad\x00name", 0o755); err == nil {
		t.Errorf("Mkdir of a name with NUL: no error")
	}

	fd, err := Openat(unix.AT_FDCWD, filepath.Join(sub, "f"), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := Write(fd, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if n, err := Write(fd, nil); n != 0 || err != nil {
		t.Fatalf("Write of nothing = %d, %v", n, err)
	}
	if err := Close(fd); err != nil {
		t.Fatal(err)
	}
	if err := Close(fd); !errors.Is(err, unix.EBADF) {
		t.Errorf("second Close: %v, want EBADF", err)
	}
	if _, err := Openat(unix.AT_FDCWD, filepath.Join(sub, "f"), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Openat O_EXCL of an existing file: %v, want ErrExist", err)
	}
	if err := Linkat(unix.AT_FDCWD, filepath.Join(sub, "f"), unix.AT_FDCWD, filepath.Join(sub, "g"), 0); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(sub, "g")); err != nil || string(b) != "hello" {
		t.Fatalf("linked file holds %q, %v", b, err)
	}
	if err := Linkat(unix.AT_FDCWD, filepath.Join(sub, "f"), unix.AT_FDCWD, filepath.Join(sub, "g"), 0); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Linkat onto an existing name: %v, want ErrExist", err)
	}

	rfd, err := Openat(unix.AT_FDCWD, filepath.Join(sub, "g"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer Close(rfd)
	buf := make([]byte, 16)
	if n, err := Read(rfd, buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if n, err := Read(rfd, buf); n != 0 || err != nil {
		t.Fatalf("Read at the end = %d, %v; want 0, nil", n, err)
	}
}

// TestIoctlAndRusage: FIONREAD says what a pipe holds; getrusage reports
// this process's peak resident set.
func TestIoctlAndRusage(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	w.Write([]byte("12345"))
	if n, err := IoctlGetInt(int(r.Fd()), unix.TIOCINQ); n != 5 || err != nil {
		t.Errorf("FIONREAD = %d, %v; want 5", n, err)
	}
	if _, err := IoctlGetInt(-1, unix.TIOCINQ); !errors.Is(err, unix.EBADF) {
		t.Errorf("FIONREAD of a bad descriptor: %v, want EBADF", err)
	}
	var ru syscall.Rusage
	if err := Getrusage(syscall.RUSAGE_SELF, &ru); err != nil || ru.Maxrss <= 0 {
		t.Errorf("Getrusage: maxrss %d, %v", ru.Maxrss, err)
	}
	if err := Getrusage(12345, &ru); !errors.Is(err, unix.EINVAL) {
		t.Errorf("Getrusage of an unknown who: %v, want EINVAL", err)
	}
}

// TestPollable: only a non-blocking pipe or socket is read and written
// raw; a regular file is not, even non-blocking (its reads may wait for a
// disk or an NFS server without saying EAGAIN).
func TestPollable(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	sock := os.NewFile(uintptr(sp[0]), "socket")
	defer sock.Close()
	unix.Close(sp[1])
	reg, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	regNB, err := os.OpenFile(reg.Name(), os.O_RDWR|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer regNB.Close()
	for _, c := range []struct {
		name string
		f    *os.File
		want bool
	}{
		{"pipe", r, true},
		{"socket", sock, true},
		{"regular file", reg, false},
		{"regular file opened non-blocking", regNB, false},
	} {
		if got := Pollable(c.f); got != c.want {
			t.Errorf("Pollable(%s) = %v, want %v", c.name, got, c.want)
		}
	}
	if _, ok := Reader(regNB).(*reader); ok {
		t.Errorf("a non-blocking regular file is read raw")
	}

	// Made non-blocking after os.NewFile saw it blocking, a pipe is not
	// the poller's: a read that would block could not wait there.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	late := os.NewFile(uintptr(p[0]), "late")
	defer late.Close()
	defer unix.Close(p[1])
	unix.SetNonblock(p[0], true)
	if Pollable(late) {
		t.Errorf("a pipe made non-blocking after os.NewFile counted as pollable")
	}
}

// TestPipe: an inherited blocking pipe becomes non-blocking and closed on
// exec, so raw reads wait in the poller and no child shares it; any other
// descriptor is left as it is.
func TestPipe(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], 0); err != nil { // blocking, inherited on exec
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	f := Pipe(uintptr(p[0]), "inherited")
	defer f.Close()
	fl, _ := unix.FcntlInt(uintptr(p[0]), unix.F_GETFL, 0)
	fd, _ := unix.FcntlInt(uintptr(p[0]), unix.F_GETFD, 0)
	if fl&unix.O_NONBLOCK == 0 || fd&unix.FD_CLOEXEC == 0 {
		t.Errorf("Pipe left flags %#x, fd flags %#x: want O_NONBLOCK and FD_CLOEXEC", fl, fd)
	}
	if _, ok := Reader(f).(*reader); !ok {
		t.Errorf("Reader of Pipe's file is %T, want the raw reader", Reader(f))
	}

	reg, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	rfd, err := unix.Dup(int(reg.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	g := Pipe(uintptr(rfd), "regular")
	defer g.Close()
	fl, _ = unix.FcntlInt(uintptr(rfd), unix.F_GETFL, 0)
	fd, _ = unix.FcntlInt(uintptr(rfd), unix.F_GETFD, 0)
	if fl&unix.O_NONBLOCK != 0 || fd&unix.FD_CLOEXEC == 0 {
		t.Errorf("Pipe of a regular file left flags %#x, fd flags %#x: want blocking, closed on exec", fl, fd)
	}
	if Pipe(uintptr(rfd+1000), "not open") != nil {
		t.Errorf("Pipe of a descriptor not open returned a file")
	}
}

// TestLocalTypes: the file systems whose calls may be raw are local disks
// and memory, never network or user-space ones; LITHOPS_QUIET_SYSCALLS=0
// makes none local.
func TestLocalTypes(t *testing.T) {
	for _, c := range []struct {
		name string
		t    int64
		want bool
	}{
		{"ext4", unix.EXT4_SUPER_MAGIC, true},
		{"xfs", unix.XFS_SUPER_MAGIC, true},
		{"btrfs", unix.BTRFS_SUPER_MAGIC, true},
		{"tmpfs", unix.TMPFS_MAGIC, true},
		{"f2fs", unix.F2FS_SUPER_MAGIC, true},
		{"overlayfs", unix.OVERLAYFS_SUPER_MAGIC, true},
		{"nfs", unix.NFS_SUPER_MAGIC, false},
		{"cifs", unix.CIFS_SUPER_MAGIC, false},
		{"smb2", unix.SMB2_SUPER_MAGIC, false},
		{"fuse", unix.FUSE_SUPER_MAGIC, false},
		{"9p", unix.V9FS_MAGIC, false},
		{"ceph", unix.CEPH_SUPER_MAGIC, false},
		{"procfs", unix.PROC_SUPER_MAGIC, false},
	} {
		if got := localType(c.t); got != c.want {
			t.Errorf("localType(%s) = %v, want %v", c.name, got, c.want)
		}
	}
	if local, err := Local("/proc"); local || err != nil {
		t.Errorf("Local(/proc) = %v, %v; want false", local, err)
	}
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) == nil && st.Type == unix.TMPFS_MAGIC {
		if local, err := Local("/dev/shm"); !local || err != nil {
			t.Errorf("Local(/dev/shm) = %v, %v; want true (tmpfs)", local, err)
		}
		t.Setenv(Env, "0")
		if local, _ := Local("/dev/shm"); local {
			t.Errorf("with %s=0, Local(/dev/shm) is true", Env)
		}
	}
}
