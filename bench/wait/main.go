// Command wait measures what Wait costs the client: the same stream of call
// completions is run twice on a paced backend, once with nobody waiting and
// once with a Wait that draws a progress bar, and the client CPU of both
// runs is printed side by side. The difference is Wait's share.
//
// The paced backend runs nothing: it pushes a running and a final status
// for each call at a fixed rate, so the client does exactly what it does
// for a real job of that many calls minus the workers.
//
//	go run ./bench/wait -calls 100000 -rate 20000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"time"

	"github.com/lithops-go/lithops/bench/internal/usage"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/compute"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
)

var noop = lithops.Func("bench_wait_noop", func(ctx context.Context, x int) (int, error) { return x, nil })

// paced completes every call it is given, rate calls per second, in order.
type paced struct {
	notify compute.Notify
	rate   int

	mu    sync.Mutex
	queue []*protocol.Status
	stop  chan struct{}
	done  chan struct{}
}

func (p *paced) Name() string { return "bench_paced" }

func (p *paced) Invoke(ctx context.Context, job *protocol.Job, inv protocol.Invocation) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range inv.Calls {
		p.queue = append(p.queue, &protocol.Status{Version: protocol.Version, ExecutorID: inv.ExecutorID, JobID: inv.JobID,
			CallID: c.ID, Attempt: c.Attempt, State: protocol.StateSuccess, HasResult: true, WorkerID: "paced"})
	}
	return nil
}

func (p *paced) run() {
	defer close(p.done)
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	start, sent := time.Now(), 0
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		due := int(time.Since(start).Seconds() * float64(p.rate))
		p.mu.Lock()
		n := min(due-sent, len(p.queue))
		batch := p.queue[:n]
		p.queue = p.queue[n:]
		p.mu.Unlock()
		for _, st := range batch {
			run := *st
			run.State, run.HasResult = protocol.StateRunning, false
			p.notify(&run)
			p.notify(st)
		}
		sent += n
	}
}

func (p *paced) Close() error {
	close(p.stop)
	<-p.done
	return nil
}

func cpu() time.Duration { return usage.CPU() }

func main() {
	calls := flag.Int("calls", 100_000, "calls of the map")
	rate := flag.Int("rate", 20_000, "completions per second")
	flag.Parse()
	lithops.Init()
	compute.Register("bench_paced", func(ctx context.Context, prm compute.Params) (compute.Backend, error) {
		p := &paced{notify: prm.Notify, rate: *rate, stop: make(chan struct{}), done: make(chan struct{})}
		go p.run()
		return p, nil
	})
	root, err := os.MkdirTemp("", "bench-wait-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)

	fmt.Printf("%d calls completing at %d/s on a paced backend (no workers)\n", *calls, *rate)
	fmt.Printf("%-28s %10s %12s %14s\n", "run", "wall", "client CPU", "CPU / wall")
	var base, with float64
	for _, waiting := range []bool{false, true} {
		wall, used := run(root, *calls, waiting)
		share := used.Seconds() / wall.Seconds()
		name := "nobody waits"
		if waiting {
			name, with = "Wait with a progress bar", share
		} else {
			base = share
		}
		fmt.Printf("%-28s %10v %12v %13.1f%%\n", name, wall.Round(time.Millisecond), used.Round(time.Millisecond), 100*share)
	}
	fmt.Printf("Wait's share of a core: %.1f%%\n", 100*(with-base))
}

// run maps calls no-op inputs and waits for the last one, with or without
// a concurrent Wait, and returns the wall time and the client's CPU.
func run(root string, calls int, waiting bool) (time.Duration, time.Duration) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.Lithops.Backend = "bench_paced"
	cfg.Localhost.StorageRoot = root
	e, err := lithops.NewExecutor(ctx, lithops.WithConfig(cfg))
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	inputs := make([]int, calls)
	start, cpu0 := time.Now(), cpu()
	fs, err := lithops.Map(ctx, e, noop, inputs)
	if err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	if waiting {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := lithops.Wait(ctx, fs, lithops.WaitProgressBar(io.Discard)); err != nil {
				log.Fatal(err)
			}
		}()
	}
	// The last call completes last: waiting on it alone costs nothing.
	// (Its result is not decoded: the paced backend returns no value.)
	if _, err := lithops.Wait(ctx, fs.At(calls-1)); err != nil {
		log.Fatal(err)
	}
	wg.Wait()
	return time.Since(start), cpu() - cpu0
}
