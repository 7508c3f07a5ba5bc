// Resident process pools, one per program, and the programs they run.

package host

import (
	"context"
	"fmt"
	"time"

	"github.com/lithops-go/lithops/internal/procpool"
)

// residentPool is the worker processes of one program.
type residentPool struct {
	pool  *procpool.Pool
	users int       // runs using it
	used  time.Time // when a run last took or left it
}

// pool returns the worker pool of prog, started if need be, for a run,
// which calls release when its calls are settled.
func (h *Host) pool(prog string) (pool *procpool.Pool, release func(), err error) {
	h.mu.Lock()
	rp := h.pools[prog]
	if rp == nil {
		p, err := procpool.New(procpool.Options{
			Program:     prog,
			Env:         h.opts.WorkerEnv,
			Config:      h.opts.WorkerConfig,
			CleanEnv:    true,
			Size:        h.opts.Workers,
			MemoryMB:    h.opts.MemoryMB,
			IdleTimeout: h.opts.WorkerIdleTimeout,
			Storage:     h.opts.Storage,
			Notify:      h.deliver,
			EscalateOOM: h.opts.EscalateOOM,
			DeferBlocks: true, // run records a block's successes at once
			Logger:      h.opts.Logger,
		})
		if err != nil {
			h.mu.Unlock()
			return nil, nil, fmt.Errorf("host: worker pool: %w", err)
		}
		rp = &residentPool{pool: p}
		h.pools[prog] = rp
	}
	rp.users++
	rp.used = time.Now()
	evicted := h.evictPoolsLocked()
	h.mu.Unlock()
	h.closePools(evicted)
	return rp.pool, func() {
		h.mu.Lock()
		rp.users--
		rp.used = time.Now()
		evicted := h.evictPoolsLocked()
		h.mu.Unlock()
		h.closePools(evicted)
	}, nil
}

// evictPoolsLocked takes out of h.pools the least recently used pools that
// no run uses, while there are more than MaxResidentPrograms.
func (h *Host) evictPoolsLocked() map[string]*procpool.Pool {
	var evicted map[string]*procpool.Pool
	for len(h.pools) > h.opts.MaxResidentPrograms {
		var victim string
		var oldest time.Time
		for prog, rp := range h.pools {
			if rp.users > 0 {
				continue
			}
			if s := rp.pool.Stats(); s.Running > 0 || s.Queued > 0 {
				continue // a retry of a run that gave up may still be there
			}
			if victim == "" || rp.used.Before(oldest) {
				victim, oldest = prog, rp.used
			}
		}
		if victim == "" {
			return evicted // every pool is in use: over the bound until one ends
		}
		if evicted == nil {
			evicted = map[string]*procpool.Pool{}
		}
		evicted[victim] = h.pools[victim].pool
		delete(h.pools, victim)
	}
	return evicted
}

// closePools stops evicted pools' workers (outside h.mu: it waits for them).
func (h *Host) closePools(evicted map[string]*procpool.Pool) {
	for prog, p := range evicted {
		h.opts.Logger.Info("worker processes of a program stopped: more programs than MaxResidentPrograms", "program", prog, "max", h.opts.MaxResidentPrograms)
		p.Close()
	}
}

// program returns the path of the program with hash sha, and a release to
// call once its calls are settled (it stays on disk until then).
func (h *Host) program(ctx context.Context, sha string) (string, func(), error) {
	if sha == "" {
		return "", nil, fmt.Errorf("%w: the invocation names no program", errBadProgram)
	}
	if sha == h.opts.CompiledSHA && h.opts.CompiledPath != "" {
		return h.opts.CompiledPath, func() {}, nil
	}
	path, err := h.programs.get(ctx, sha)
	if err != nil {
		return "", nil, err
	}
	return path, func() { h.programs.release(sha) }, nil
}
