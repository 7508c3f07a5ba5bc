// Package localfs is the storage driver of the localhost backend: a directory
// tree in which bucket "b" is the directory <root>/b and key "x/y" is the file
// <root>/b/x/y, so stored objects can be inspected with ordinary tools.
//
// Writes go to a temporary file and are linked or renamed into place, so a
// reader sees either the old or the new object, never a torn one, and a
// crashed writer leaves no partial object behind: on Linux an unnamed file
// (O_TMPFILE) in the key's own directory, elsewhere, and to replace an
// object, a named one under <root>/.tmp. Create-if-absent writes use a
// hard link, which fails atomically when the name is taken.
//
// On ext4 the directory of each bucket's first key segment (lithops.jobs, a
// dataset's folder) is marked the top of directory hierarchies (chattr +T)
// before a directory below it is made: the allocator then spreads the trees
// below it (an executor's jobs) over the disk, away from the inodes earlier
// trees freed, which an ext4 without a journal scans past for minutes.
// Because the allocator picks the group with the fewest directories, a
// tree removed (the last key below it deleted) leaves a hold: an empty
// directory made in the tree's group and kept for six minutes under
// <root>/.tmp/hold, so that the next tree goes elsewhere. localfs alone
// makes holds and removes them: a driver sweeps away those older than six
// minutes when it opens the root and when it makes one, at most once a
// minute.
//
// Because keys are paths, a key cannot also be a "directory" of other keys
// (both "a" and "a/b"); such a Put fails with a clear error. Keys may not
// contain "." or ".." segments or empty segments.
//
// Where a bucket's first key segment is on a local file system (ext4, XFS,
// btrfs, tmpfs), a record's file calls are made raw (internal/quietsys): a
// warm call then wakes no Go runtime thread on their account. Elsewhere
// (NFS, FUSE), or with LITHOPS_QUIET_SYSCALLS=0, they are the runtime's.
//
// A prefix can be prepared (driver.Preparer): its directory is made ahead
// of the writes under it, and holds no object until they come. It takes
// its name as a directory would: a Put of the key "a/b" fails while "a/b/"
// is prepared. Delete removes the directories it leaves empty; Unprepare
// removes the empty ones under a prefix.
package localfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lithops-go/lithops/internal/quietsys"
	"github.com/lithops-go/lithops/storage/driver"
)

// Driver stores objects as files under a root directory.
type Driver struct {
	root string
	// quiet: raw file calls may be made at all (the root is local, see
	// quietsys.Local); local: whether each first key segment's directory
	// is local too (a symlink or mount below the root), found once.
	quiet bool
	local sync.Map
	// tops are the directories markTop marked (or found marked): whether
	// the file system kept the mark.
	tops sync.Map
	// swept is when sweepHolds last looked, in Unix seconds; holds is how
	// many holds were asked for since.
	swept, holds atomic.Int64
}

// New returns a driver rooted at dir, creating it if needed.
func New(dir string) (*Driver, error) {
	if dir == "" {
		return nil, errors.New("localfs: empty root directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("localfs: root %q: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, ".tmp"), 0o755); err != nil {
		return nil, fmt.Errorf("localfs: root: %w", err)
	}
	quiet, _ := quietsys.Local(abs)
	d := &Driver{root: abs, quiet: quiet}
	d.sweepHolds(filepath.Join(abs, ".tmp", holdDir), time.Now())
	return d, nil
}

// quietAt reports whether the file calls of a record in dir may be raw:
// the root, and the directory of the bucket's first key segment above dir
// (or the bucket's, for a key of one segment), are on local file systems.
// A directory not made yet is not known: its calls are the runtime's.
func (d *Driver) quietAt(dir string) bool {
	if !d.quiet {
		return false
	}
	key := d.topOf(dir)
	if key == "" {
		key = dir
	}
	if v, ok := d.local.Load(key); ok {
		return v.(bool)
	}
	local, err := quietsys.Local(key)
	if err == nil {
		d.local.Store(key, local)
	}
	return local
}

// Root returns the root directory.
func (d *Driver) Root() string { return d.root }

func (d *Driver) bucketDir(bucket string) string { return filepath.Join(d.root, bucket) }

func (d *Driver) path(bucket, key string) (string, error) {
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "", ".", "..":
			return "", fmt.Errorf("key %q: empty, \".\" or \"..\" path segments are not supported by localhost storage", key)
		}
	}
	if strings.ContainsRune(key, '\\') && filepath.Separator == '\\' {
		return "", fmt.Errorf("key %q: backslashes are not supported by localhost storage on this OS", key)
	}
	return filepath.Join(d.bucketDir(bucket), filepath.FromSlash(key)), nil
}

// CreateBucket implements driver.Driver.
func (d *Driver) CreateBucket(ctx context.Context, bucket string) error {
	return os.MkdirAll(d.bucketDir(bucket), 0o755)
}

// Put implements driver.Driver.
func (d *Driver) Put(ctx context.Context, bucket, key string, r io.Reader, opts driver.PutOptions) (err error) {
	p, err := d.path(bucket, key)
	if err != nil {
		return err
	}
	if ok, err := d.putNew(ctxReader{ctx, r}, key, p, !opts.IfNotExist); ok {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Join(d.root, ".tmp"), "put-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, ctxReader{ctx, r}); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if opts.IfNotExist {
		defer os.Remove(tmp.Name()) // the link, if made, keeps the data
	}
	// A concurrent Delete removes directories it leaves empty, possibly the
	// one just made for this key; then the rename fails with ENOENT and is
	// tried again with a fresh directory.
	for attempt := 1; ; attempt++ {
		err = d.place(key, tmp.Name(), p, opts.IfNotExist)
		if err == nil || !errors.Is(err, errDirVanished) || attempt == 100 {
			return err
		}
	}
}

var errDirVanished = errors.New("directory removed concurrently")

// place moves the complete temp file to its final path p.
func (d *Driver) place(key, tmp, p string, ifNotExist bool) error {
	dir := filepath.Dir(p)
	d.markTop(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist) {
			// MkdirAll lost a race with a removal of a parent directory.
			return fmt.Errorf("%w: %w", errDirVanished, err)
		}
		return keyConflict(key, err)
	}
	var err error
	if ifNotExist {
		err = os.Link(tmp, p)
		if errors.Is(err, fs.ErrExist) {
			return driver.ErrExists
		}
	} else {
		if fi, statErr := os.Stat(p); statErr == nil && fi.IsDir() {
			return keyConflict(key, fmt.Errorf("a directory of other keys has this name"))
		}
		err = os.Rename(tmp, p)
	}
	if errors.Is(err, fs.ErrNotExist) {
		if _, statErr := os.Stat(tmp); statErr == nil {
			return fmt.Errorf("%w: %w", errDirVanished, err)
		}
	}
	return err
}

// mkdir makes dir, the directory of key, and its parents, and says
// whether it existed already.
func (d *Driver) mkdir(key, dir string) (existed bool, err error) {
	d.markTop(dir)
	err = d.mkdirOne(dir)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, fs.ErrExist):
		return true, nil
	}
	d.remarkTop(dir) // parents missing: another process may have removed the top
	if err := os.MkdirAll(dir, 0o755); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrExist) {
		return false, keyConflict(key, err)
	}
	return false, nil // or removed meanwhile: the caller tries again
}

// mkdirOne makes dir, whose parent exists: raw where that is local.
func (d *Driver) mkdirOne(dir string) error {
	if d.quietAt(dir) {
		return quietsys.Mkdir(dir, 0o755)
	}
	return os.Mkdir(dir, 0o755)
}

// markTop marks, before a directory below it is made, the directory of a
// bucket's first key segment ("lithops.jobs", a dataset's folder) as the
// top of directory hierarchies (ext4's chattr +T): the allocator then
// spreads the directories below it, each an independent tree (an
// executor's jobs), over the disk's block groups, as it spreads a file
// system's own top-level directories. Without it an executor's new files
// and directories go where every earlier executor's deleted ones lie, and
// on an ext4 without a journal, which does not reuse an inode for a minute
// or more after its deletion, each new one scans past them all (a warm
// call's record took up to 1 ms instead of 50 µs).
func (d *Driver) markTop(dir string) {
	top := d.topOf(dir)
	if top == "" {
		return
	}
	if _, done := d.tops.Load(top); done {
		return
	}
	if err := os.Mkdir(top, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return // its bucket missing: the caller says
	}
	if isDir, marked := markTopDir(top); isDir { // a key by its name is no directory to mark
		d.tops.Store(top, marked)
	}
}

// remarkTop marks dir's top again: it is made again (Delete, here or in
// another process, removed it with the last key below it).
func (d *Driver) remarkTop(dir string) {
	if top := d.topOf(dir); top != "" {
		d.tops.Delete(top)
		d.markTop(dir)
	}
}

// topOf is the directory of the bucket's first key segment above dir, or
// "" if dir is not below one.
func (d *Driver) topOf(dir string) string {
	rel, err := filepath.Rel(d.root, dir)
	if err != nil {
		return ""
	}
	parts := strings.SplitN(rel, string(filepath.Separator), 3)
	if len(parts) < 3 || parts[0] == ".." {
		return ""
	}
	return filepath.Join(d.root, parts[0], parts[1])
}

func keyConflict(key string, err error) error {
	return fmt.Errorf("key %q collides with another key used as a directory in localhost storage: %w", key, err)
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (d *Driver) notFound(bucket string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errIsDir) || isNotDir(err) {
		if _, berr := os.Stat(d.bucketDir(bucket)); berr != nil {
			return fmt.Errorf("bucket %q: %w", bucket, driver.ErrNotFound)
		}
		return driver.ErrNotFound
	}
	return err
}

var errIsDir = errors.New("is a directory")

func isNotDir(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "not a directory")
}

func (d *Driver) open(bucket, key string) (*os.File, fs.FileInfo, error) {
	p, err := d.path(bucket, key)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, d.notFound(bucket, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, nil, d.notFound(bucket, errIsDir)
	}
	return f, fi, nil
}

// GetRange implements driver.Driver.
func (d *Driver) GetRange(ctx context.Context, bucket, key string, offset, length int64) (io.ReadCloser, error) {
	f, fi, err := d.open(bucket, key)
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if offset > size {
		f.Close()
		return nil, fmt.Errorf("offset %d past size %d: %w", offset, size, driver.ErrInvalidRange)
	}
	n := size - offset
	if length >= 0 && length < n {
		n = length
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, offset, n), f}, nil
}

func etag(fi fs.FileInfo) string {
	return `"` + strconv.FormatInt(fi.Size(), 16) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 16) + `"`
}

// Head implements driver.Driver.
func (d *Driver) Head(ctx context.Context, bucket, key string) (driver.ObjectInfo, error) {
	f, fi, err := d.open(bucket, key)
	if err != nil {
		return driver.ObjectInfo{}, err
	}
	f.Close()
	return driver.ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime(), ETag: etag(fi)}, nil
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context, bucket, prefix string) ([]driver.ObjectInfo, error) {
	bdir := d.bucketDir(bucket)
	if _, err := os.Stat(bdir); err != nil {
		return nil, fmt.Errorf("bucket %q: %w", bucket, driver.ErrNotFound)
	}
	// Walk only the deepest directory the prefix names.
	start := bdir
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		if _, err := d.path(bucket, prefix[:i]); err != nil {
			// No stored key has an empty, "." or ".." segment, and such a
			// prefix must not lead the walk outside the bucket.
			return nil, nil
		}
		start = filepath.Join(bdir, filepath.FromSlash(prefix[:i]))
	}
	var out []driver.ObjectInfo
	err := filepath.WalkDir(start, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || isNotDir(err) {
				return nil // vanished while walking, or prefix names no directory
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(bdir, p)
		key := filepath.ToSlash(rel)
		if de.IsDir() {
			if p != start && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := de.Info()
		if err != nil {
			return nil // deleted meanwhile
		}
		out = append(out, driver.ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime(), ETag: etag(fi)})
		return nil
	})
	return out, err
}

// Delete implements driver.Driver. Directories left empty are removed, up to
// the bucket, each once however many of its keys went.
//
// Unlink and Rmdir, not os.Remove: os.Remove tries both, so a key that does
// not exist, or a directory, costs two failing system calls each.
func (d *Driver) Delete(ctx context.Context, bucket string, keys []string) error {
	bdir := d.bucketDir(bucket)
	dirs := map[string]bool{}
	for _, k := range keys {
		p, err := d.path(bucket, k)
		if err != nil {
			return err
		}
		if err := syscall.Unlink(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if fi, serr := os.Lstat(p); serr == nil && fi.IsDir() {
				continue // a "directory" is not an object
			}
			return &fs.PathError{Op: "unlink", Path: p, Err: err}
		}
		dirs[filepath.Dir(p)] = true
	}
	d.prune(bdir, dirs)
	return nil
}

// prune removes the directories in dirs that are empty, and then their
// parents left empty, up to the bucket directory bdir.
func (d *Driver) prune(bdir string, dirs map[string]bool) {
	// In rounds from the deepest: a parent is tried once all its children
	// that could go have gone.
	for len(dirs) > 0 {
		deepest := 0
		for dir := range dirs {
			deepest = max(deepest, strings.Count(dir, string(filepath.Separator)))
		}
		for dir := range dirs {
			if strings.Count(dir, string(filepath.Separator)) != deepest {
				continue
			}
			delete(dirs, dir)
			if dir == bdir || !strings.HasPrefix(dir, bdir+string(filepath.Separator)) {
				continue
			}
			if d.isTreeRoot(dir) {
				empty, ok := treeEmpty(dir)
				if ok && !empty {
					continue
				}
				if ok {
					d.hold(dir)
				}
			}
			if syscall.Rmdir(dir) == nil {
				d.tops.Delete(dir)  // made again, it is marked again
				d.local.Delete(dir) // and examined again
				dirs[filepath.Dir(dir)] = true
			}
		}
	}
}

// prefixDir is the directory of the keys under prefix, which ends with "/".
func (d *Driver) prefixDir(bucket, prefix string) (string, error) {
	dir, ok := strings.CutSuffix(prefix, "/")
	if !ok {
		return "", fmt.Errorf("prefix %q: a prefix to prepare ends with \"/\"", prefix)
	}
	return d.path(bucket, dir)
}

// Prepare implements driver.Preparer: it makes prefix's directory.
func (d *Driver) Prepare(ctx context.Context, bucket, prefix string) error {
	p, err := d.prefixDir(bucket, prefix)
	if err != nil {
		return err
	}
	d.markTop(p)
	for attempt := 1; ; attempt++ {
		err := d.mkdirOne(p)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, fs.ErrExist):
			if fi, serr := os.Lstat(p); serr == nil && !fi.IsDir() {
				return keyConflict(prefix, &fs.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR})
			}
			return nil
		case errors.Is(err, fs.ErrNotExist):
			if _, serr := os.Stat(d.bucketDir(bucket)); serr != nil {
				return d.notFound(bucket, serr)
			}
			d.remarkTop(p)
			err = os.MkdirAll(p, 0o755)
			if err == nil {
				return nil
			}
			if isNotDir(err) {
				return keyConflict(prefix, err)
			}
			if errors.Is(err, fs.ErrNotExist) && attempt < 3 {
				continue // a parent pruned meanwhile (Delete)
			}
			return err
		case isNotDir(err):
			return keyConflict(prefix, err)
		default:
			return err
		}
	}
}

// Unprepare implements driver.Preparer: it removes the empty directories
// under prefix's, then prefix's own and its parents if they are left
// empty.
func (d *Driver) Unprepare(ctx context.Context, bucket, prefix string) error {
	p, err := d.prefixDir(bucket, prefix)
	if err != nil {
		return err
	}
	dirs := map[string]bool{p: true}
	// Every directory below, deepest pruned first: a directory is empty
	// once its empty children have gone.
	filepath.WalkDir(p, func(q string, de fs.DirEntry, err error) error {
		if err == nil && de.IsDir() {
			dirs[q] = true
		}
		return nil
	})
	d.prune(d.bucketDir(bucket), dirs)
	return nil
}

// Close implements driver.Driver.
func (d *Driver) Close() error { return nil }

var (
	_ driver.Driver   = (*Driver)(nil)
	_ driver.Preparer = (*Driver)(nil)
)
