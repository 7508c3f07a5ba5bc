package quietsys

import (
	"errors"
	"io"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reader returns a reader of f whose reads are raw system calls when f is
// pollable (a pipe os.Pipe made, or one made non-blocking before
// os.NewFile), and f itself otherwise.
func Reader(f *os.File) io.Reader {
	rc, ok := pollable(f)
	if !ok {
		return f
	}
	return &reader{f: f, rc: rc}
}

// Writer returns a writer to f whose writes are raw system calls when f is
// pollable, and f itself otherwise.
func Writer(f *os.File) io.Writer {
	rc, ok := pollable(f)
	if !ok {
		return f
	}
	return &writer{f: f, rc: rc}
}

// Pollable reports whether f is a pipe or socket in non-blocking mode:
// what the runtime's poller waits for, and what Reader and Writer read
// and write raw.
func Pollable(f *os.File) bool {
	_, ok := pollable(f)
	return ok
}

// pollable is Pollable, and f's raw connection when it is. The file must
// be the poller's (a deadline can be set: os.NewFile saw it non-blocking)
// and still non-blocking (Fd, called on it since, makes it blocking).
func pollable(f *os.File) (syscall.RawConn, bool) {
	if f.SetDeadline(time.Time{}) != nil {
		return nil, false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, false
	}
	ok := false
	if err := rc.Control(func(fd uintptr) {
		ok = pollableFD(int(fd))
	}); err != nil {
		return nil, false
	}
	return rc, ok
}

// pollableFD reports whether fd is a pipe or socket in non-blocking mode.
// A non-blocking regular file is not: its reads may wait for a disk, or
// for an NFS server, without ever saying EAGAIN.
func pollableFD(fd int) bool {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil || fl&unix.O_NONBLOCK == 0 {
		return false
	}
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && pipeOrSocket(st.Mode)
}

// pipeOrSocket reports whether a file of mode waits in the poller.
func pipeOrSocket(mode uint32) bool {
	kind := mode & unix.S_IFMT
	return kind == unix.S_IFIFO || kind == unix.S_IFSOCK
}

// Pipe makes descriptor fd, inherited from the parent process, a file
// closed on exec (no process the program starts shares it, nor its mode)
// and, if it is a pipe or socket, non-blocking, so that the poller waits
// for it and Reader or Writer reads or writes it raw. It returns nil if fd
// is not open.
func Pipe(fd uintptr, name string) *os.File {
	var st unix.Stat_t
	if err := unix.Fstat(int(fd), &st); err != nil {
		return nil // not open
	}
	unix.CloseOnExec(int(fd))
	if pipeOrSocket(st.Mode) {
		unix.SetNonblock(int(fd), true)
	}
	return os.NewFile(fd, name)
}

type reader struct {
	f  *os.File
	rc syscall.RawConn
}

func (r *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			m, e := rw(unix.SYS_READ, int(fd), p)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // wait in the poller
			}
			n, errno = m, e
			return true
		}
	})
	switch {
	case err != nil:
		return 0, wrapErr("read", r.f, err)
	case errno != 0:
		return 0, &os.PathError{Op: "read", Path: r.f.Name(), Err: errno}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

type writer struct {
	f  *os.File
	rc syscall.RawConn
}

func (w *writer) Write(p []byte) (int, error) {
	n := 0
	var errno syscall.Errno
	err := w.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, e := rw(unix.SYS_WRITE, int(fd), p[n:])
			switch e {
			case 0:
				n += m
			case unix.EINTR:
			case unix.EAGAIN:
				return false // the pipe is full: wait in the poller
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return n, wrapErr("write", w.f, err)
	case errno != 0:
		return n, &os.PathError{Op: "write", Path: w.f.Name(), Err: errno}
	}
	return n, nil
}

// wrapErr is the error of the poller's wait on f, as os.File's is: a
// closed file is os.ErrClosed (the poller's own error is internal).
func wrapErr(op string, f *os.File, err error) error {
	if _, serr := f.Stat(); errors.Is(serr, os.ErrClosed) {
		err = os.ErrClosed
	}
	return &os.PathError{Op: op, Path: f.Name(), Err: err}
}

// Getrusage is syscall.Getrusage.
func Getrusage(who int, ru *syscall.Rusage) error {
	_, _, e := unix.RawSyscall(unix.SYS_GETRUSAGE, uintptr(who), uintptr(unsafe.Pointer(ru)), 0)
	return errnoErr(e)
}

// IoctlGetInt is unix.IoctlGetInt.
func IoctlGetInt(fd int, req uint) (int, error) {
	var v int32
	_, _, e := unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&v)))
	return int(v), errnoErr(e)
}

// Openat is unix.Openat.
func Openat(dirfd int, path string, flags int, mode uint32) (int, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return -1, err
	}
	fd, _, e := unix.RawSyscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(flags|unix.O_LARGEFILE), uintptr(mode), 0, 0)
	return int(fd), errnoErr(e)
}

// Linkat is unix.Linkat.
func Linkat(olddirfd int, oldpath string, newdirfd int, newpath string, flags int) error {
	o, err := unix.BytePtrFromString(oldpath)
	if err != nil {
		return err
	}
	n, err := unix.BytePtrFromString(newpath)
	if err != nil {
		return err
	}
	_, _, e := unix.RawSyscall6(unix.SYS_LINKAT, uintptr(olddirfd), uintptr(unsafe.Pointer(o)), uintptr(newdirfd), uintptr(unsafe.Pointer(n)), uintptr(flags), 0)
	return errnoErr(e)
}

// Mkdir is os.Mkdir (without its retry on EINTR, which mkdir does not
// return on a local file system).
func Mkdir(path string, perm os.FileMode) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return &os.PathError{Op: "mkdir", Path: path, Err: err}
	}
	atFDCWD := unix.AT_FDCWD
	_, _, e := unix.RawSyscall(unix.SYS_MKDIRAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(p)), uintptr(perm.Perm()))
	if e != 0 {
		return &os.PathError{Op: "mkdir", Path: path, Err: e}
	}
	return nil
}

// Read is unix.Read.
func Read(fd int, b []byte) (int, error) {
	n, e := rw(unix.SYS_READ, fd, b)
	return n, errnoErr(e)
}

// Write is unix.Write, for a regular file.
func Write(fd int, b []byte) (int, error) {
	n, e := rw(unix.SYS_WRITE, fd, b)
	return n, errnoErr(e)
}

// rw makes the read or write trap of b on fd.
func rw(trap uintptr, fd int, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// Close is unix.Close.
func Close(fd int) error {
	_, _, e := unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
	return errnoErr(e)
}

// errnoErr returns e as an error, nil when it is 0 (an Errno is a
// non-nil error even when 0).
func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// Local reports whether path is on a file system whose metadata calls do
// not wait on a network or a user-space server (ext4, XFS, btrfs, tmpfs,
// F2FS, overlayfs over them): only there may a record's file calls be raw.
// A raw call that waited on an NFS server would hold its processor, and a
// garbage collection that must stop every processor would wait with it.
// With LITHOPS_QUIET_SYSCALLS=0 in the environment nothing is local. An
// error says path could not be examined (it does not exist yet).
func Local(path string) (bool, error) {
	if os.Getenv(Env) == "0" {
		return false, nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return localType(int64(st.Type)), nil
}

// localType reports whether a statfs file system type is one of Local's.
func localType(t int64) bool {
	switch uint32(t) {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC, unix.TMPFS_MAGIC, unix.F2FS_SUPER_MAGIC, unix.OVERLAYFS_SUPER_MAGIC:
		return true
	}
	return false
}
