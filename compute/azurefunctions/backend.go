package azurefunctions

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/lithops-go/lithops/compute"
	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/azure/build"
	"github.com/lithops-go/lithops/internal/azure/deploy"
	"github.com/lithops-go/lithops/internal/azure/httptrigger"
	"github.com/lithops-go/lithops/internal/azure/naming"
	"github.com/lithops-go/lithops/internal/azure/queues"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/storage"
	"golang.org/x/sync/errgroup"
)

// DefaultRuntime is the runtime name used when none is configured.
const DefaultRuntime = "lithops-default"

// ErrNotDeployed reports that the runtime has no metadata in storage: New
// fails with it (wrapped) for a runtime other than DefaultRuntime that was
// never deployed.
var ErrNotDeployed = deploy.ErrNotDeployed

// Options configure a Backend. Config, Storage and ExecutorID are
// required; the rest have defaults.
type Options struct {
	// Config is the configuration: the azure_functions section (runtime,
	// memory, trigger, chunksize, ARM settings) and azure_storage (the
	// account of the queues).
	Config *config.Config
	// Storage is the executor's storage, where programs, runtime metadata
	// and job records live.
	Storage *storage.Storage
	// ExecutorID names the executor; its completion queue is named after
	// it (lithops-done-<id>).
	ExecutorID string
	// Notify receives the final statuses the backend learns of first: from
	// the completion queue, the poison watcher and failed HTTPS posts.
	Notify compute.Notify
	// Logger receives the backend's logs (default: discarded).
	Logger *slog.Logger
	// Queues overrides the queue service built from the azure_storage
	// section (tests).
	Queues *azqueue.ServiceClient
	// Program is the user program to run (default: this executable, or a
	// linux/amd64 cross-build of its main package).
	Program string
	// Deployer deploys the default runtime when it is missing or of another
	// version (default: ARM from the configuration).
	Deployer RuntimeDeployer
	// Progress receives deployment progress lines (default: the logger).
	Progress func(string)
	// PoisonInterval is how often the runtime's poison queues are checked
	// for this executor's invocations (default 10 s).
	PoisonInterval time.Duration
	// StalledAfter is how long the oldest invocation in a runtime's queue
	// may wait, never delivered, before the client warns that nothing
	// consumes the queue (default 2 min).
	StalledAfter time.Duration
}

// RuntimeDeployer creates or updates a runtime's function app (Deploy);
// the Resource Manager implementation is the default.
type RuntimeDeployer = deploy.Deployer

// Names are the Azure resource names of one runtime deployment (function
// app, plan, trigger queue), as Backend.Names returns them.
type Names = naming.Names

// Backend is the Azure Functions compute backend (client side).
type Backend struct {
	opts    Options
	cfg     *config.Config
	st      *storage.Storage
	svc     *azqueue.ServiceClient
	runtime string
	results string // per-executor completion queue

	progMu  sync.Mutex
	progSHA string

	tierMu  sync.Mutex
	tiers   map[int]*tier     // deployments of the runtime by instance memory (MB)
	loading map[int]*tierLoad // tiers being read or deployed, by memory

	// HTTPS trigger: where and with which key to POST invocations.
	endpoint, key string
	http          *http.Client

	stop       chan struct{}
	consumed   chan struct{}
	poisonDone chan struct{}
	stalled    sync.Map     // queue names warned about as not consumed
	heard      atomic.Int64 // unix nanos of the last completion message: runtimes are consuming
	// invoked is when calls were last invoked (unix nanos): with heard, it
	// says whether results are expected, and consume polls often; kick
	// wakes consume when calls are invoked.
	invoked atomic.Int64
	kick    chan struct{}
	closed  sync.Once
}

// New connects to the runtime's queues and checks the runtime is deployed
// and speaks this protocol. It creates the executor's completion queue.
func New(ctx context.Context, opts Options) (*Backend, error) {
	cfg := opts.Config
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StalledAfter <= 0 {
		opts.StalledAfter = 2 * time.Minute
	}
	svc := opts.Queues
	if svc == nil {
		var err error
		if svc, err = queues.NewService(cfg.AzureStorage); err != nil {
			return nil, fmt.Errorf("azure_functions: %w", err)
		}
	}
	if err := queues.CheckHost(ctx, svc); err != nil {
		return nil, fmt.Errorf("azure_functions: %w", err)
	}
	rt := cfg.AzureFunctions.Runtime
	if rt == "" {
		rt = DefaultRuntime
	}
	b := &Backend{
		opts: opts, cfg: cfg, st: opts.Storage, svc: svc, runtime: rt,
		results:    naming.ResultQueue(opts.ExecutorID),
		tiers:      map[int]*tier{},
		loading:    map[int]*tierLoad{},
		stop:       make(chan struct{}),
		consumed:   make(chan struct{}),
		poisonDone: make(chan struct{}),
		kick:       make(chan struct{}, 1),
	}
	meta, err := b.tierMeta(ctx, cfg.AzureFunctions.RuntimeMemory)
	if err != nil {
		return nil, err
	}
	b.tiers[cfg.AzureFunctions.RuntimeMemory] = newTier(naming.Account(cfg.AzureStorage), rt, cfg.AzureFunctions.RuntimeMemory, meta)
	if httptrigger.Is(cfg.AzureFunctions.Trigger) {
		if err := b.setupHTTPS(ctx); err != nil {
			return nil, err
		}
	}
	if err := queues.Ensure(ctx, svc, b.results); err != nil {
		return nil, fmt.Errorf("azure_functions: completion queue: %w", err)
	}
	go b.consume()
	if b.endpoint == "" {
		every := opts.PoisonInterval
		if every <= 0 {
			every = 10 * time.Second
		}
		go b.watchPoison(every)
	} else {
		close(b.poisonDone) // HTTPS invocations have no queue
	}
	return b, nil
}

// setupHTTPS finds the runtime's URL and function key: from the config, else
// the metadata (URL) and ARM (key).
func (b *Backend) setupHTTPS(ctx context.Context) error {
	b.http = &http.Client{Timeout: 5 * time.Minute}
	b.endpoint = b.cfg.AzureFunctions.Endpoint
	if b.endpoint == "" {
		b.endpoint = b.Meta().Endpoint
	}
	if b.endpoint == "" {
		return fmt.Errorf("azure_functions: runtime %q has no HTTPS endpoint in its metadata; redeploy it with trigger: https or set azure_functions.endpoint", b.runtime)
	}
	b.key = b.cfg.AzureFunctions.FunctionKey
	if b.key != "" {
		return nil
	}
	d, err := deploy.NewARM(b.cfg, b.opts.Logger)
	if err != nil {
		return fmt.Errorf("azure_functions: the https trigger needs azure_functions.function_key or ARM settings to read it: %w", err)
	}
	app := b.Names().App
	if b.key, err = d.FunctionKey(ctx, b.cfg.AzureFunctions.ResourceGroup, app); err != nil {
		return fmt.Errorf("azure_functions: read the function key of %s: %w", app, err)
	}
	return nil
}

// tier is one deployment of the runtime: at one instance memory size.
type tier struct {
	names naming.Names
	meta  protocol.RuntimeMeta
}

// tierMeta reads the metadata of the runtime at memoryMB, deploying the
// default runtime there if it is missing or of another version.
func (b *Backend) tierMeta(ctx context.Context, memoryMB int) (*protocol.RuntimeMeta, error) {
	meta, err := deploy.ReadMeta(ctx, b.st, b.runtime, memoryMB)
	stale := err == nil && (meta.Version != protocol.Version || meta.LithopsVersion != protocol.LithopsVersion)
	if b.runtime == DefaultRuntime && (errors.Is(err, ErrNotDeployed) || stale) {
		// The default runtime deploys itself on first use and on upgrade.
		meta, err = b.deployDefault(ctx, memoryMB)
	}
	if err != nil {
		return nil, err
	}
	if meta.Version != protocol.Version || meta.LithopsVersion != protocol.LithopsVersion {
		return nil, fmt.Errorf("azure_functions: runtime %q (%d MB) is lithops-go %s (protocol %d) but this client is %s (protocol %d): redeploy it with `lithops runtime deploy -b azure_functions -s azure_storage --memory %d %s`",
			b.runtime, memoryMB, meta.LithopsVersion, meta.Version, protocol.LithopsVersion, protocol.Version, memoryMB, b.runtime)
	}
	return meta, nil
}

// tier returns the deployment of the runtime at memoryMB (0: the
// configured size).
func (b *Backend) tier(ctx context.Context, memoryMB int) (*tier, error) {
	if memoryMB == 0 {
		memoryMB = b.cfg.AzureFunctions.RuntimeMemory
	}
	// A tier may take minutes to deploy: load it outside the lock, once,
	// while other sizes stay usable.
	b.tierMu.Lock()
	if t := b.tiers[memoryMB]; t != nil {
		b.tierMu.Unlock()
		return t, nil
	}
	valid := false
	for _, m := range naming.MemoryTiers {
		valid = valid || m == memoryMB
	}
	if !valid {
		b.tierMu.Unlock()
		return nil, fmt.Errorf("azure_functions: %d MB is not a Flex Consumption instance size (512, 2048, 4096)", memoryMB)
	}
	if p := b.loading[memoryMB]; p != nil {
		b.tierMu.Unlock()
		select {
		case <-p.done:
			return p.t, p.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p := &tierLoad{done: make(chan struct{})}
	b.loading[memoryMB] = p
	b.tierMu.Unlock()
	// Not under the first caller's ctx: others wait for this load too. A
	// deployment takes minutes; half an hour bounds a stuck one.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Minute)
	p.t, p.err = b.loadTier(lctx, memoryMB)
	cancel()
	b.tierMu.Lock()
	delete(b.loading, memoryMB)
	if p.err == nil {
		b.tiers[memoryMB] = p.t
	}
	b.tierMu.Unlock()
	close(p.done)
	return p.t, p.err
}

// newTier names a deployment's resources; its trigger queue is the one its
// metadata names (an app registered with a queue of its own), else the
// derived name.
func newTier(account, runtime string, memoryMB int, meta *protocol.RuntimeMeta) *tier {
	t := &tier{names: naming.Runtime(account, runtime, memoryMB, protocol.LithopsVersion), meta: *meta}
	if meta.Queue != "" {
		t.names.Queue = meta.Queue
	}
	return t
}

// tierLoad is a tier being read or deployed; done closes when t or err is
// set.
type tierLoad struct {
	done chan struct{}
	t    *tier
	err  error
}

// loadTier reads (or deploys) the runtime at memoryMB and makes its queue.
func (b *Backend) loadTier(ctx context.Context, memoryMB int) (*tier, error) {
	meta, err := b.tierMeta(ctx, memoryMB)
	if err != nil {
		return nil, err
	}
	t := newTier(naming.Account(b.cfg.AzureStorage), b.runtime, memoryMB, meta)
	if err := queues.Ensure(ctx, b.svc, t.names.Queue); err != nil {
		return nil, err
	}
	return t, nil
}

// NextMemory implements the executor's memory escalation: the next
// instance memory tier above mb.
func (b *Backend) NextMemory(mb int) (int, bool) {
	if b.endpoint != "" {
		return 0, false // the HTTPS trigger runs at the configured size only
	}
	if mb == 0 {
		mb = b.cfg.AzureFunctions.RuntimeMemory
	}
	return naming.NextTier(mb)
}

// deployDefault builds and deploys the default runtime at memoryMB.
func (b *Backend) deployDefault(ctx context.Context, memoryMB int) (*protocol.RuntimeMeta, error) {
	progress := b.opts.Progress
	if progress == nil {
		progress = func(s string) { b.opts.Logger.Info(s) }
	}
	cannot := func(err error) error {
		return fmt.Errorf("the default runtime %s (lithops-go %s) is not deployed and cannot be deployed from here (or deploy it with `lithops runtime deploy -b azure_functions -s azure_storage %s`): %w",
			DefaultRuntime, protocol.LithopsVersion, DefaultRuntime, err)
	}
	dep := b.opts.Deployer
	if dep == nil {
		d, err := deploy.NewARM(b.cfg, b.opts.Logger)
		if err != nil {
			return nil, cannot(err)
		}
		dep = d
	}
	// Signed in? Before the build and before any queue or record.
	if err := deploy.CheckARM(ctx, dep); err != nil {
		return nil, cannot(err)
	}
	progress(fmt.Sprintf("lithops: deploying the default runtime %s for lithops-go %s (first use; this takes a few minutes)", DefaultRuntime, protocol.LithopsVersion))
	progress("lithops: building the runtime package")
	// This program is the default runtime's handler: the runtime host is in
	// the library, so no other build (and no package outside the user's
	// module) is needed. Later programs are fetched by hash as usual.
	handler, cleanup, err := build.ProgramPath(ctx, b.opts.Program)
	if err != nil {
		return nil, fmt.Errorf("build the default runtime: %w", err)
	}
	defer cleanup()
	pkg, man, err := build.App(ctx, build.Options{
		Runtime: DefaultRuntime, Version: protocol.LithopsVersion,
		Trigger: b.cfg.AzureFunctions.Trigger, TimeoutSeconds: b.cfg.AzureFunctions.RuntimeTimeout,
		HostPath: handler,
	})
	if err != nil {
		return nil, fmt.Errorf("build the default runtime: %w", err)
	}
	cfg := *b.cfg
	cfg.AzureFunctions.RuntimeMemory = memoryMB
	meta, err := deploy.Runtime(ctx, &cfg, b.st, b.svc, dep, DefaultRuntime, pkg, man, func(s string) { progress("lithops: " + s) })
	if err != nil {
		return nil, fmt.Errorf("deploy the default runtime: %w", err)
	}
	progress("lithops: default runtime ready")
	return meta, nil
}

// Leases implements compute.Leaser: the runtime host renews a lease for
// every running call.
func (b *Backend) Leases() bool { return true }

// Name implements compute.Backend.
func (b *Backend) Name() string { return "azure_functions" }

// Names returns the runtime's Azure resource names.
func (b *Backend) Names() naming.Names { return b.defaultTier().names }

// Meta returns the runtime's metadata.
func (b *Backend) Meta() protocol.RuntimeMeta { return b.defaultTier().meta }

// defaultTier is the deployment at the configured memory size, read by New.
func (b *Backend) defaultTier() *tier {
	b.tierMu.Lock()
	defer b.tierMu.Unlock()
	return b.tiers[b.cfg.AzureFunctions.RuntimeMemory]
}

// Invoke implements compute.Backend: it uploads the user program once, then
// enqueues the calls, chunkSize calls per message, in parallel.
func (b *Backend) Invoke(ctx context.Context, job *protocol.Job, inv protocol.Invocation) error {
	// A job runs the program its manifest names: a rerun from another
	// process (or the CLI) must not substitute its own.
	sha := job.Program
	if sha == "" {
		var err error
		if sha, err = b.program(ctx); err != nil {
			return err
		}
	}
	inv.Program = sha
	inv.ResultQueue = b.results
	var t *tier
	if b.endpoint != "" {
		t = b.defaultTier() // the HTTPS trigger runs at the configured size only
	} else {
		var err error
		if t, err = b.tier(ctx, job.Memory); err != nil {
			return err
		}
	}
	b.expect()
	chunk := max(b.chunkSize(job, t.meta, len(inv.Calls)), 1)
	parts := make([]protocol.Invocation, 0, (len(inv.Calls)+chunk-1)/chunk)
	for i := 0; i < len(inv.Calls); i += chunk {
		part := inv
		part.Calls = inv.Calls[i:min(i+chunk, len(inv.Calls))]
		parts = append(parts, part)
	}
	if b.endpoint != "" {
		b.postAsync(ctx, job, parts)
		return nil
	}
	var msgs []string
	for _, part := range parts {
		m, err := encodeMessages(part)
		if err != nil {
			return err
		}
		msgs = append(msgs, m...)
	}
	q := b.svc.NewQueueClient(t.names.Queue)
	return parallel(ctx, max(b.cfg.AzureFunctions.InvokePoolThreads, 1), len(msgs), func(ctx context.Context, i int) error {
		if _, err := q.EnqueueMessage(ctx, msgs[i], nil); err != nil {
			return fmt.Errorf("azure_functions: enqueue to %s: %w", t.names.Queue, err)
		}
		return nil
	})
}

// encodeMessages renders inv as base64 queue messages of at most
// queues.MaxMessage characters: inline inputs are dropped (workers then read the
// inputs object) and, if still too big, the calls are split.
func encodeMessages(inv protocol.Invocation) ([]string, error) {
	enc := func(v protocol.Invocation) string {
		raw, _ := json.Marshal(v)
		return base64.StdEncoding.EncodeToString(raw)
	}
	if m := enc(inv); len(m) <= queues.MaxMessage {
		return []string{m}, nil
	}
	slim := inv
	slim.Calls = make([]protocol.Call, len(inv.Calls))
	for i, c := range inv.Calls {
		c.Input, c.HasInput = nil, false
		slim.Calls[i] = c
	}
	if m := enc(slim); len(m) <= queues.MaxMessage {
		return []string{m}, nil
	}
	if len(slim.Calls) == 1 {
		return nil, fmt.Errorf("azure_functions: an invocation of call %s does not fit a queue message", slim.Calls[0].ID)
	}
	half := len(slim.Calls) / 2
	a, b := slim, slim
	a.Calls, b.Calls = slim.Calls[:half], slim.Calls[half:]
	ma, err := encodeMessages(a)
	if err != nil {
		return nil, err
	}
	mb, err := encodeMessages(b)
	return append(ma, mb...), err
}

// parallel runs fn(0..n-1) with at most limit at once and returns the first
// error.
func parallel(parent context.Context, limit, n int, fn func(context.Context, int) error) error {
	g, ctx := errgroup.WithContext(parent)
	g.SetLimit(limit)
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(ctx, i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return parent.Err() // the caller's, not the group's (Wait cancels it)
}

// expect tells consume that calls were invoked: their results are
// expected soon.
func (b *Backend) expect() {
	b.invoked.Store(time.Now().UnixNano())
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// How often consume reads an empty completion queue: from pollMin,
// doubling, up to pollBusy while results are expected (calls invoked or
// completions heard within busyFor), else up to pollIdle. An idle client
// costs a read a second; one that waits for a call sees its result within
// pollBusy of its push, not a second later.
const (
	pollMin  = 50 * time.Millisecond
	pollBusy = 100 * time.Millisecond
	pollIdle = time.Second
	busyFor  = 10 * time.Second
)

// pollCadence is the wait after an empty read that followed a wait of
// prev, sinceActive after calls were last invoked or completions heard.
func pollCadence(prev, sinceActive time.Duration) time.Duration {
	limit := pollIdle
	if sinceActive < busyFor {
		limit = pollBusy
	}
	return min(max(2*prev, pollMin), limit)
}

// completionHidden is how long a completion message read by consume stays
// invisible: Azure's longest visibility timeout (7 days). The message is
// not deleted (see the package doc, Completion): it is hidden for longer
// than it lives (its time to live is the default 7 days, counted from
// earlier) or than the queue does (Close deletes it).
const completionHidden = 7 * 24 * 60 * 60

// consume reads the completion queue and notifies the executor. Storage
// polling covers anything lost here.
func (b *Backend) consume() {
	defer close(b.consumed)
	q := b.svc.NewQueueClient(b.results)
	// Requests end with the backend: Close does not wait for one that a
	// storage outage holds up.
	life, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		<-b.stop
		stop()
	}()
	idle := pollMin
	for {
		select {
		case <-b.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(life, 30*time.Second)
		resp, err := q.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: to.Ptr(int32(32)), VisibilityTimeout: to.Ptr(int32(completionHidden))})
		cancel()
		if err != nil || len(resp.Messages) == 0 {
			if err != nil {
				b.opts.Logger.Debug("completion queue", "err", err)
			}
			select {
			case <-b.stop:
				return
			case <-b.kick:
				idle = pollMin // calls invoked: look now, and often
				continue
			case <-time.After(idle):
			}
			idle = pollCadence(idle, time.Since(time.Unix(0, max(b.invoked.Load(), b.heard.Load()))))
			continue
		}
		idle = pollMin
		b.heard.Store(time.Now().UnixNano())
		for _, m := range resp.Messages {
			if m.MessageText == nil || b.opts.Notify == nil {
				continue
			}
			for _, st := range decodeCompletion(*m.MessageText) {
				b.opts.Notify(st)
			}
		}
	}
}

// decodeCompletion reads a completion message: the JSON array of final
// statuses the runtime host pushes (host.Pusher), or one status. Statuses
// that do not validate are dropped; polling finds their calls.
func decodeCompletion(text string) []*protocol.Status {
	var sts []*protocol.Status
	if json.Unmarshal([]byte(text), &sts) != nil {
		var st protocol.Status
		if json.Unmarshal([]byte(text), &st) != nil {
			return nil
		}
		sts = []*protocol.Status{&st}
	}
	valid := sts[:0]
	for _, st := range sts {
		if st != nil && st.Validate() == nil {
			valid = append(valid, st)
		}
	}
	return valid
}

// Close implements compute.Backend: it stops consuming and deletes the
// completion queue. Calls already enqueued run to completion in Azure.
func (b *Backend) Close() error {
	var err error
	b.closed.Do(func() {
		close(b.stop)
		<-b.consumed
		<-b.poisonDone
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if _, derr := b.svc.DeleteQueue(ctx, b.results, nil); derr != nil {
			err = fmt.Errorf("azure_functions: delete completion queue %s: %w", b.results, derr)
		}
	})
	return err
}
