package localfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// holdFor is how long a hold keeps its block group: an ext4 without a
// journal does not reuse an inode deleted in the last 60 s, 360 s while
// its inode table block is not yet written back (recently_deleted in the
// kernel's fs/ext4/ialloc.c).
const holdFor = 6 * time.Minute

// holdDir is where holds wait out holdFor, below the root's .tmp.
const holdDir = "hold"

// holdPrefix names a hold while it is inside the tree it holds.
const holdPrefix = ".lithops-hold-"

// maxHolds is the most holds a driver makes between two sweeps (a minute
// or more apart): a tree emptied and filled again and again in a loop
// would otherwise leave a hold each time.
const maxHolds = 64

// holdMkdir makes a hold (a variable for the test that checks where).
var holdMkdir = func(path string) error { return syscall.Mkdir(path, 0o755) }

// hold keeps the block group of dir, a tree below a marked top (an
// executor's directory below lithops.jobs) that prune is about to remove,
// counted as one directory for holdFor.
//
// Why: ext4 spreads a new tree below a marked top to the block group with
// the fewest directories. Removing a tree gives its group back its count,
// so the next tree (the next run's executor) is often placed there again,
// right among the inodes just deleted, and on an ext4 without a journal
// each of its files then scans past them all (2 ms a record instead of
// 50 µs). A hold is an empty directory made inside dir, so placed near it
// (in its group, unless that group is full), and moved at once under
// <root>/.tmp/hold, where nothing else writes: dir itself goes as before,
// so the key space does not change, and a writer racing the removal is
// never moved with it. On an ext4 with a journal, which reuses inodes at
// once, a hold is needless and costs a few system calls.
//
// A hold is best effort: where it cannot be made or moved, none is kept
// and nothing else changes. Holds older than holdFor are removed by a
// sweep, when a driver opens the root and when it makes a hold, at most
// once a minute; localfs is the only one that makes or removes them.
func (d *Driver) hold(dir string) {
	holds := filepath.Join(d.root, ".tmp", holdDir)
	d.sweepHolds(holds, time.Now())
	if d.holds.Add(1) > maxHolds {
		return
	}
	name := fmt.Sprintf("%d-%d", time.Now().Unix(), rand.Uint64())
	h := filepath.Join(dir, holdPrefix+name)
	if err := holdMkdir(h); err != nil {
		return
	}
	err := os.Rename(h, filepath.Join(holds, name))
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.Mkdir(holds, 0o755); err == nil || errors.Is(err, fs.ErrExist) {
			err = os.Rename(h, filepath.Join(holds, name))
		}
	}
	if err != nil {
		syscall.Rmdir(h) // across file systems, say: no hold, dir goes as before
	}
}

// sweepHolds removes the holds in holds older than holdFor, at most once a
// minute per driver. A name that is not a hold's is left alone.
func (d *Driver) sweepHolds(holds string, now time.Time) {
	last := d.swept.Load()
	if last != 0 && now.Unix()-last < 60 || !d.swept.CompareAndSwap(last, now.Unix()) {
		return
	}
	d.holds.Store(0)
	entries, err := os.ReadDir(holds)
	if err != nil {
		return
	}
	for _, e := range entries {
		sec, _, ok := strings.Cut(e.Name(), "-")
		made, err := strconv.ParseInt(sec, 10, 64)
		if !ok || err != nil || !e.IsDir() {
			continue
		}
		if now.Sub(time.Unix(made, 0)) >= holdFor {
			syscall.Rmdir(filepath.Join(holds, e.Name()))
		}
	}
}

// isTreeRoot reports whether dir is a tree below a marked top: a directory
// directly below the directory of a bucket's first key segment, which
// markTop marked (or finds marked, when another process made it).
func (d *Driver) isTreeRoot(dir string) bool {
	top := d.topOf(dir)
	if top == "" || top != filepath.Dir(dir) {
		return false
	}
	if v, ok := d.tops.Load(top); ok {
		return v.(bool)
	}
	if topMarked(top) {
		d.tops.Store(top, true) // found marked: markTop need not
		return true
	}
	return false
}

// treeEmpty reports whether dir, a tree's root, is empty but for holds
// left inside it by a process that died between making and moving one,
// which it removes (they would keep the tree for ever). ok is false when
// dir cannot be read.
func treeEmpty(dir string) (empty, ok bool) {
	f, err := os.Open(dir)
	if err != nil {
		return false, false
	}
	defer f.Close()
	for range 16 {
		names, err := f.Readdirnames(8)
		if errors.Is(err, io.EOF) {
			return true, true
		}
		if err != nil {
			return false, false
		}
		for _, n := range names {
			if !strings.HasPrefix(n, holdPrefix) || syscall.Rmdir(filepath.Join(dir, n)) != nil {
				return false, true
			}
		}
	}
	return false, true
}
