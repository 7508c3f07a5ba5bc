package host

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"golang.org/x/sync/singleflight"
)

var shaRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// programCache fetches user programs by hash, verifies them, and keeps them
// on local disk. Concurrent requests for one program share one fetch.
//
// The cache is bounded: beyond maxCount programs or maxBytes, the least
// recently used ones go, but never one in use (pinned by get until its
// release, here or, through a file lock, by another host process sharing
// the directory). A bound that only programs in use exceed is exceeded
// until they are released.
type programCache struct {
	st       *storage.Storage
	dir      string
	log      *slog.Logger
	maxCount int
	maxBytes int64

	fetches singleflight.Group // by hash

	mu    sync.Mutex
	files map[string]*cachedProgram // by hash: the programs in dir
}

// cachedProgram is a program file in the cache.
type cachedProgram struct {
	size int64
	used time.Time
	pins int
	lock *os.File // held open, with a shared lock, while pinned
}

// Default bounds of the program cache on disk (Options.MaxCachedPrograms,
// Options.MaxCacheBytes): a Go program is tens of MiB, and an instance's
// temp disk is small.
const (
	DefaultMaxCachedPrograms       = 8
	DefaultMaxCacheBytes     int64 = 1 << 30
)

func newProgramCache(st *storage.Storage, dir string, log *slog.Logger, maxCount int, maxBytes int64) (*programCache, error) {
	if dir == "" {
		var err error
		if dir, err = execDir(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("host: program cache %s: %w", dir, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if maxCount <= 0 {
		maxCount = DefaultMaxCachedPrograms
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxCacheBytes
	}
	c := &programCache{st: st, dir: dir, log: log, maxCount: maxCount, maxBytes: maxBytes, files: map[string]*cachedProgram{}}
	// Programs an earlier host left count too, by their last use.
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("host: program cache %s: %w", dir, err)
	}
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && shaRE.MatchString(e.Name()) {
			c.files[e.Name()] = &cachedProgram{size: info.Size(), used: info.ModTime()}
		}
	}
	c.mu.Lock()
	c.evictLocked("")
	c.mu.Unlock()
	return c, nil
}

// execDir picks a cache directory on a file system that allows executing
// programs: the temp dir may be mounted noexec.
func execDir() (string, error) {
	var candidates []string
	if d := os.Getenv(appsettings.HostCache); d != "" {
		candidates = append(candidates, d)
	}
	candidates = append(candidates, filepath.Join(os.TempDir(), "lithops-host"))
	if d, err := os.UserCacheDir(); err == nil {
		candidates = append(candidates, filepath.Join(d, "lithops-host"))
	}
	if d, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(d, ".lithops-host"))
	}
	candidates = append(candidates, "/dev/shm/lithops-host")
	return pickExecDir(candidates, noexec)
}

// pickExecDir returns the first candidate that can be created and is not
// on a noexec file system.
func pickExecDir(candidates []string, noexec func(string) bool) (string, error) {
	for _, d := range candidates {
		if os.MkdirAll(d, 0o700) != nil {
			continue
		}
		if noexec(d) {
			continue
		}
		return d, nil
	}
	return "", fmt.Errorf("host: no directory that allows executing programs among %v", candidates)
}

// errBadProgram marks a program that can never run (missing, malformed or
// failing verification), as opposed to a fetch that failed and may succeed.
var errBadProgram = errors.New("bad user program")

// get returns the path of the program with hash sha, fetched if need be,
// and pins it: it stays on disk until release(sha).
func (c *programCache) get(ctx context.Context, sha string) (string, error) {
	if !shaRE.MatchString(sha) {
		return "", fmt.Errorf("%w: hash %q is not a SHA-256 in hex", errBadProgram, sha)
	}
	// A fetched program may be evicted (or removed by another host) before
	// it is pinned; it is then fetched again, a bounded number of times.
	for range 3 {
		path, ok, err := c.pin(sha)
		if err != nil || ok {
			return path, err
		}
		// Concurrent fetches of one program are collapsed; the download
		// outlives a caller that gives up.
		ch := c.fetches.DoChan(sha, func() (any, error) {
			return c.download(context.WithoutCancel(ctx), sha, filepath.Join(c.dir, sha))
		})
		select {
		case r := <-ch:
			if r.Err != nil {
				return "", r.Err
			}
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return "", fmt.Errorf("user program %s left the cache (%s) as soon as it was fetched, 3 times: is the cache bound too small?", sha[:12], c.dir)
}

// pin takes a use of the program if it is on disk; only verified programs
// are ever renamed there.
func (c *programCache) pin(sha string) (string, bool, error) {
	path := filepath.Join(c.dir, sha)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if e := c.files[sha]; e != nil && e.pins > 0 {
		e.pins++
		e.used = now
		return path, true, nil
	}
	f, err := lockShared(path)
	if err != nil {
		return "", false, fmt.Errorf("open cached program %s: %w", sha[:12], err)
	}
	if f == nil {
		delete(c.files, sha)
		return "", false, nil
	}
	e := c.files[sha]
	if e == nil {
		e = &cachedProgram{}
		c.files[sha] = e
	}
	if info, err := f.Stat(); err == nil {
		e.size = info.Size()
	}
	e.pins, e.used, e.lock = 1, now, f
	os.Chtimes(path, now, now) // the last use, for a host started later
	return path, true, nil
}

// release ends a use that get took, and evicts what the bounds no longer
// allow.
func (c *programCache) release(sha string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.files[sha]
	if e == nil || e.pins == 0 {
		return
	}
	e.used = time.Now()
	if e.pins--; e.pins == 0 {
		e.lock.Close()
		e.lock = nil
	}
	c.evictLocked("")
}

// evictLocked removes the least recently used programs not in use until
// the cache is within its bounds, keeping keep (just fetched, not yet
// pinned).
func (c *programCache) evictLocked(keep string) {
	var count int
	var bytes int64
	var idle []string
	for sha, e := range c.files {
		count++
		bytes += e.size
		if e.pins == 0 && sha != keep {
			idle = append(idle, sha)
		}
	}
	slices.SortFunc(idle, func(a, b string) int { return c.files[a].used.Compare(c.files[b].used) })
	for _, sha := range idle {
		if count <= c.maxCount && bytes <= c.maxBytes {
			return
		}
		if !removeUnlocked(filepath.Join(c.dir, sha)) {
			continue // another host process uses it
		}
		count--
		bytes -= c.files[sha].size
		delete(c.files, sha)
		c.log.Info("user program evicted from the cache", "sha", sha[:12], "programs", count, "bytes", bytes)
	}
}

// download streams the gzipped program to a temp file while hashing it, and
// renames it into place only if the hash matches.
func (c *programCache) download(ctx context.Context, sha, path string) (string, error) {
	rc, err := c.st.Get(ctx, c.st.Bucket(), protocol.ProgramKey(sha))
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return "", fmt.Errorf("%w: %s is not in storage (the client uploads it to %s)", errBadProgram, sha[:12], protocol.ProgramKey(sha))
		}
		return "", fmt.Errorf("fetch user program %s: %w", sha[:12], err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return "", fmt.Errorf("%w: %s is not gzip: %v", errBadProgram, sha[:12], err)
	}
	tmp, err := os.CreateTemp(c.dir, ".fetch-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), zr); err != nil {
		tmp.Close()
		return "", fmt.Errorf("fetch user program %s: %w", sha[:12], err)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return "", fmt.Errorf("%w: %s failed verification: its bytes hash to %s; refusing to run it", errBadProgram, sha[:12], got[:12])
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return "", err
	}
	size, err := os.Stat(tmp.Name())
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	if e := c.files[sha]; e == nil || e.pins == 0 {
		c.files[sha] = &cachedProgram{size: size.Size(), used: time.Now()}
	}
	c.evictLocked(sha)
	c.log.Info("user program fetched", "sha", sha[:12], "path", path)
	return path, nil
}
