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

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"golang.org/x/sync/singleflight"
)

var shaRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// programCache fetches user programs by hash, verifies them, and keeps them
// on local disk. Concurrent requests for one program share one fetch.
type programCache struct {
	st  *storage.Storage
	dir string
	log *slog.Logger

	fetches singleflight.Group // by hash
}

func newProgramCache(st *storage.Storage, dir string, log *slog.Logger) (*programCache, error) {
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
	return &programCache{st: st, dir: dir, log: log}, nil
}

// execDir picks a cache directory on a file system that allows executing
// programs: the temp dir may be mounted noexec.
func execDir() (string, error) {
	var candidates []string
	if d := os.Getenv("LITHOPS_HOST_CACHE"); d != "" {
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

func (c *programCache) get(ctx context.Context, sha string) (string, error) {
	if !shaRE.MatchString(sha) {
		return "", fmt.Errorf("%w: hash %q is not a SHA-256 in hex", errBadProgram, sha)
	}
	path := filepath.Join(c.dir, sha)
	if _, err := os.Stat(path); err == nil {
		return path, nil // only verified programs are ever renamed here
	}
	// Concurrent fetches of one program are collapsed; the download
	// outlives a caller that gives up.
	ch := c.fetches.DoChan(sha, func() (any, error) {
		return c.download(context.WithoutCancel(ctx), sha, path)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", ctx.Err()
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
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	c.log.Info("user program fetched", "sha", sha[:12], "path", path)
	return path, nil
}
