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

// hold keeps the block group of dir, a tree below a marked top (an
// executor's directory below lithops.jobs) that prune is about to remove,
// counted as one directory for holdFor.
//
// Why: ext4 spreads a new tree below a marked top to the block group with
// the fewest directories. Removing a tree gives its group back its count,
// so the next tree (the next run's executor) is often placed there again,
// right among the inodes just deleted, and each of its files then scans
// past them all (2 ms a record instead of 50 µs). A hold is an empty
// directory made inside dir, so in dir's group, and moved at once under
// <root>/.tmp/hold, where nothing else writes: dir itself goes as before,
// so the key space does not change, and a writer racing the removal is
// never moved with it.
//
// A hold is best effort: where it cannot be made or moved, none is kept
// and nothing else changes. Holds older than holdFor are removed by the
// next hold's sweep; localfs is the only one that makes or removes them.
func (d *Driver) hold(dir string) {
	name := fmt.Sprintf("%d-%d", time.Now().Unix(), rand.Uint64())
	h := filepath.Join(dir, ".lithops-hold-"+name)
	if err := syscall.Mkdir(h, 0o755); err != nil {
		return
	}
	holds := filepath.Join(d.root, ".tmp", holdDir)
	err := os.Rename(h, filepath.Join(holds, name))
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.Mkdir(holds, 0o755); err == nil || errors.Is(err, fs.ErrExist) {
			err = os.Rename(h, filepath.Join(holds, name))
		}
	}
	if err != nil {
		syscall.Rmdir(h) // across file systems, say: no hold, dir goes as before
		return
	}
	d.sweepHolds(holds, time.Now())
}

// sweepHolds removes the holds in holds older than holdFor, at most once a
// minute per driver. A name that is not a hold's is left alone.
func (d *Driver) sweepHolds(holds string, now time.Time) {
	last := d.swept.Load()
	if last != 0 && now.Unix()-last < 60 || !d.swept.CompareAndSwap(last, now.Unix()) {
		return
	}
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
	return topMarked(top)
}

// empty reports whether dir has no entries.
func (d *Driver) empty(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return errors.Is(err, io.EOF)
}
