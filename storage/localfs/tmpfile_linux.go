package localfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/lithops-go/lithops/internal/quietsys"
	"github.com/lithops-go/lithops/storage/driver"
)

// putNew writes a create-if-absent object through an unnamed O_TMPFILE
// file that is linked into place once complete: one directory change per
// object (the link) instead of three (create a temp name, link, unlink the
// temp name). This is the status record every call writes. ok is false
// where the file system or kernel cannot do it; the caller then takes the
// portable path.
//
// With replace (a plain Put) a key that exists is replaced: the complete
// file is linked under a temporary name and renamed over it, as the
// portable path does; a new key, the common case (manifests, inputs), still
// costs one link.
func (d *Driver) putNew(ctx ctxReader, key, p string, replace bool) (ok bool, err error) {
	if !haveProcFD() {
		return false, nil
	}
	// Nothing of ctx is read before ok is known: the portable path needs it whole.
	//
	// The unnamed file is made in the key's own directory, so that ext4
	// allocates its inode in that directory's block group (see markTop)
	// rather than in the one of a shared temporary directory, where the
	// records every earlier job deleted lie.
	if err := ctx.ctx.Err(); err != nil {
		return true, err // a cancelled Put makes nothing, not even a directory
	}
	dir := filepath.Dir(p)
	sys := &plainCalls
	if d.quietAt(dir) {
		sys = &rawCalls
	}
	var fd int
	made := false // dir made here: a Put that fails, or goes the portable way, removes it again
	defer func() {
		if made && (err != nil || !ok) {
			d.prune(strings.TrimSuffix(p, string(filepath.Separator)+filepath.FromSlash(key)), map[string]bool{dir: true})
		}
	}()
	for attempt := 1; ; attempt++ {
		fd, err = sys.openat(unix.AT_FDCWD, dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
		if err == nil {
			break
		}
		switch {
		case errors.Is(err, unix.ENOTDIR):
			return true, keyConflict(key, &fs.PathError{Op: "open", Path: dir, Err: err})
		case errors.Is(err, unix.ENOENT) && attempt < 100:
			existed, merr := d.mkdir(key, dir)
			if merr != nil {
				return true, merr
			}
			made = made || !existed
		default:
			return false, nil // no unnamed files here: the portable path
		}
	}
	// The raw descriptor, not an *os.File: a regular file gains nothing from
	// the poller, and a status record is a handful of system calls.
	defer sys.close(fd)
	if err := writeAll(fdWriter{fd, sys}, ctx); err != nil {
		return true, err
	}
	proc := "/proc/self/fd/" + strconv.Itoa(fd)
	// link links the file at p, by descriptor where that works (byName:
	// not this time).
	link := func(byName bool) error {
		if mode := emptyPathLink.Load(); mode != emptyPathNo && !byName {
			err := linkByFD(sys, fd, p)
			if err == nil || errors.Is(err, unix.EEXIST) {
				emptyPathLink.Store(emptyPathYes)
				return err
			}
			if mode == emptyPathYes && errors.Is(err, unix.ENOENT) {
				return err // most likely the directory: the caller makes it and says
			}
			// ENOENT is a missing directory or a missing capability, EPERM
			// or EINVAL a kernel or sandbox that refuses: by name says which.
		}
		err := sys.linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, p, unix.AT_SYMLINK_FOLLOW)
		if err == nil || errors.Is(err, unix.EEXIST) {
			// By name it links where by descriptor it could not: this
			// process lacks CAP_DAC_READ_SEARCH, which AT_EMPTY_PATH needs.
			emptyPathLink.Store(emptyPathNo)
		}
		return err
	}
	// The directory exists now, unless a concurrent Delete removed it
	// (see Put): then it is made again.
	byName, sawDir := false, false
	for attempt := 1; ; attempt++ {
		err := link(byName)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EEXIST) && replace:
			return true, d.replaceWith(proc, key, p)
		case errors.Is(err, unix.EEXIST):
			return true, driver.ErrExists
		case errors.Is(err, unix.ENOTDIR):
			return true, keyConflict(key, &fs.PathError{Op: "link", Path: p, Err: err})
		case errors.Is(err, unix.ENOENT) && attempt < 100:
			existed, merr := d.mkdir(key, dir)
			if merr != nil {
				return true, merr
			}
			if existed {
				// The directory was there: a concurrent Put made it (the
				// link is tried again), or, the second time, the link by
				// descriptor is refused (a capability lost): by name tells.
				byName = sawDir
				sawDir = true
			}
			continue
		}
		return true, &fs.PathError{Op: "link", Path: p, Err: err}
	}
}

// linkByFD links the O_TMPFILE file fd at p by descriptor (a variable for
// tests: a process that loses CAP_DAC_READ_SEARCH).
var linkByFD = func(sys *fileCalls, fd int, p string) error {
	return sys.linkat(fd, "", unix.AT_FDCWD, p, unix.AT_EMPTY_PATH)
}

// fileCalls are the system calls of a record's write.
type fileCalls struct {
	openat func(dirfd int, path string, flags int, mode uint32) (int, error)
	linkat func(olddirfd int, oldpath string, newdirfd int, newpath string, flags int) error
	write  func(fd int, b []byte) (int, error)
	close  func(fd int) error
}

var (
	// rawCalls leave the runtime's monitor asleep (quietsys): for a root
	// on a local file system.
	rawCalls = fileCalls{quietsys.Openat, quietsys.Linkat, quietsys.Write, quietsys.Close}
	// plainCalls are the runtime's, for a root that may wait on a network.
	plainCalls = fileCalls{unix.Openat, unix.Linkat, unix.Write, unix.Close}
)

// emptyPathLink says whether linkat(fd, "", AT_EMPTY_PATH) works for this
// process (it needs CAP_DAC_READ_SEARCH): it links an O_TMPFILE file
// without resolving /proc/self/fd/N, a path walk through procfs that costs
// as much as the rest of the link. Unknown until a link tells.
var emptyPathLink atomic.Int32

const (
	emptyPathUnknown = iota
	emptyPathYes
	emptyPathNo
)

// writeAll writes what ctx reads to w: an in-memory value (bytes.Reader,
// what every record is) without a copy buffer.
func writeAll(w fdWriter, ctx ctxReader) error {
	if br, ok := ctx.r.(*bytes.Reader); ok {
		if err := ctx.ctx.Err(); err != nil {
			return err
		}
		_, err := br.WriteTo(w)
		return err
	}
	_, err := io.Copy(w, ctx)
	return err
}

// fdWriter writes to a raw file descriptor, small writes with sys's write.
type fdWriter struct {
	fd  int
	sys *fileCalls
}

func (w fdWriter) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		write := unix.Write
		if len(b)-n <= quietWrite {
			write = w.sys.write // a record's few bytes: to the page cache at once
		}
		m, err := write(w.fd, b[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, &fs.PathError{Op: "write", Path: "put-tmpfile", Err: err}
		}
		if m <= 0 {
			return n, io.ErrShortWrite
		}
		n += m
	}
	return n, nil
}

// quietWrite is the largest write made raw (quietsys): the larger a write,
// the likelier it waits for the disk (dirty-page throttling), holding its
// processor all that time if it is raw.
const quietWrite = 64 << 10

// haveProcFD: linking an O_TMPFILE file by name needs /proc/self/fd.
var haveProcFD = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/self/fd")
	return err == nil
})

// replaceWith puts the file behind proc at p, which exists, through a
// temporary name and a rename. Once named, the file is moved as the
// portable path moves it (place), directory races included: an unnamed file
// that was linked once cannot be linked again.
func (d *Driver) replaceWith(proc, key, p string) error {
	for range 100 {
		tmp := filepath.Join(d.root, ".tmp", fmt.Sprintf("put-%d", rand.Uint64()))
		err := unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, tmp, unix.AT_SYMLINK_FOLLOW)
		if errors.Is(err, unix.EEXIST) {
			continue // a name another Put drew
		}
		if err != nil {
			return &fs.PathError{Op: "link", Path: tmp, Err: err}
		}
		for attempt := 1; ; attempt++ {
			err = d.place(key, tmp, p, false)
			if err == nil || !errors.Is(err, errDirVanished) || attempt == 100 {
				break
			}
		}
		if err != nil {
			os.Remove(tmp)
		}
		return err
	}
	return fmt.Errorf("localfs: no free temporary name in %s", filepath.Join(d.root, ".tmp"))
}

// fsTopdirFL is FS_TOPDIR_FL: the directory is the top of hierarchies for
// ext4's Orlov allocator (chattr +T).
const fsTopdirFL = 0x00020000

// markTopDir marks dir as the top of directory hierarchies where the file
// system knows the mark (ext4); elsewhere it does nothing. It reports
// whether dir is a directory, and whether it now has the mark.
func markTopDir(dir string) (isDir, marked bool) { return topFlag(dir, true) }

// topMarked reports whether dir has the top-of-hierarchies mark.
func topMarked(dir string) bool {
	_, marked := topFlag(dir, false)
	return marked
}

// topFlag reads dir's top-of-hierarchies mark, and with set adds it where
// it is missing.
func topFlag(dir string, set bool) (isDir, marked bool) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, false
	}
	defer unix.Close(fd)
	fl, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	switch {
	case err != nil:
		return true, false
	case fl&fsTopdirFL != 0:
		return true, true
	case !set:
		return true, false
	}
	return true, unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, fl|fsTopdirFL) == nil
}
