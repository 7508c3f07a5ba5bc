// Package hostdouble is a test double of the Azure Functions host for a
// queue-triggered custom handler. It follows the documented protocol (see
// shared/reference/azure.md): it starts the handler with
// FUNCTIONS_CUSTOMHANDLER_PORT, waits until GET / answers, dequeues the
// trigger queue with a lease, base64-decodes the message, POSTs
// {Data, Metadata} to /<function>, deletes the message on a 2xx answer, makes
// it visible again after the retry delay on failure (the dequeue count
// grows), and moves it to <queue>-poison after MaxDequeueCount failures. It
// runs N instances at once and restarts a handler that died, as the host
// does. An invocation that outlasts FunctionTimeout fails and, as the host
// restarts the worker at functionTimeout, the instance's handler process
// (its whole process group: every call running on it) is killed and
// started again.
package hostdouble

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2/queueerror"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/internal/procgroup"
)

// Options configure a Double.
type Options struct {
	// Command starts the handler: executable and arguments.
	Command []string
	// Dir is the app's root: the handler's working directory and
	// FUNCTIONS_APP_ROOT_PATH (default: the temp dir, working directory
	// inherited).
	Dir string
	// Env is the handler's environment besides the FUNCTIONS_* variables
	// (the app settings).
	Env []string
	// Queues is the storage account of the trigger queue.
	Queues *azqueue.ServiceClient
	// Queue is the trigger queue; Function the function (URL path).
	Queue    string
	Function string
	// Instances is the number of hosts (default 1).
	Instances int
	// MaxDequeueCount failures move a message to the poison queue (default 5).
	MaxDequeueCount int
	// RetryDelay is host.json's visibilityTimeout: how long a failed message
	// stays invisible (default 1 s).
	RetryDelay time.Duration
	// Lease is how long a dequeued message stays invisible while it runs
	// (default 2 min).
	Lease time.Duration
	// FunctionTimeout is host.json's functionTimeout (default 5 min): an
	// invocation still running then fails (its message is retried or
	// poisoned as any failure) and the instance's handler is killed with
	// its process group and restarted, counted in Stats.Restarts.
	FunctionTimeout time.Duration
	// Output receives the handlers' stdout and stderr (default os.Stderr).
	Output io.Writer
	Logger *slog.Logger
}

// Stats count what the double did.
type Stats struct {
	Invocations int64 // POSTs made
	Succeeded   int64 // messages deleted after a 2xx
	Failed      int64 // failed invocations
	Poisoned    int64 // messages moved to the poison queue
	Restarts    int64 // handler restarts (after a crash, a Kill or a function timeout)
	TimedOut    int64 // invocations failed at FunctionTimeout
}

// Double is a running host double.
type Double struct {
	opts  Options
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	insts []*instance
	stats struct{ inv, ok, fail, poison, restart, timedOut atomic.Int64 }
}

type instance struct {
	id       int
	vanished atomic.Bool // the in-flight message is abandoned to its lease
	mu       sync.Mutex
	cmd      *exec.Cmd
	port     int
	dead     chan struct{}
}

// Start launches the instances and waits until every handler is ready.
func Start(ctx context.Context, opts Options) (*Double, error) {
	if len(opts.Command) == 0 || opts.Queues == nil || opts.Queue == "" || opts.Function == "" {
		return nil, errors.New("hostdouble: Command, Queues, Queue and Function are required")
	}
	if opts.Instances < 1 {
		opts.Instances = 1
	}
	if opts.MaxDequeueCount < 1 {
		opts.MaxDequeueCount = 5
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = time.Second
	}
	if opts.Lease <= 0 {
		opts.Lease = 2 * time.Minute
	}
	if opts.FunctionTimeout <= 0 {
		opts.FunctionTimeout = 5 * time.Minute
	}
	if opts.Output == nil {
		opts.Output = os.Stderr
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dctx, stop := context.WithCancel(context.Background())
	d := &Double{opts: opts, ctx: dctx, stop: stop}
	for i := 0; i < opts.Instances; i++ {
		in := &instance{id: i}
		if err := d.launch(ctx, in); err != nil {
			d.Close()
			return nil, err
		}
		d.insts = append(d.insts, in)
	}
	for _, in := range d.insts {
		d.wg.Add(1)
		go d.loop(in)
	}
	return d, nil
}

// Stats returns the counters so far.
func (d *Double) Stats() Stats {
	return Stats{Invocations: d.stats.inv.Load(), Succeeded: d.stats.ok.Load(), Failed: d.stats.fail.Load(),
		Poisoned: d.stats.poison.Load(), Restarts: d.stats.restart.Load(), TimedOut: d.stats.timedOut.Load()}
}

// Kill kills instance i's handler (and its process group) as a crash would;
// the instance restarts it before its next message.
func (d *Double) Kill(i int) {
	in := d.insts[i]
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd != nil && in.cmd.Process != nil {
		procgroup.Kill(in.cmd)
	}
}

// Vanish simulates the loss of instance i's whole machine: its handler is
// killed and the message it was running is neither deleted nor released, so
// it reappears only when its lease expires. A new instance takes its place.
func (d *Double) Vanish(i int) {
	d.insts[i].vanished.Store(true)
	d.Kill(i)
}

// Close stops the instances and their handlers.
func (d *Double) Close() {
	d.stop()
	d.wg.Wait()
	for _, in := range d.insts {
		in.mu.Lock()
		if in.cmd != nil && in.cmd.Process != nil {
			procgroup.Stop(in.cmd)
			select {
			case <-in.dead:
			case <-time.After(5 * time.Second):
				procgroup.Kill(in.cmd)
				<-in.dead
			}
		}
		in.mu.Unlock()
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// launch starts the handler of in and waits for its readiness (60 s, as the
// docs allow).
func (d *Double) launch(ctx context.Context, in *instance) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	cmd := exec.Command(d.opts.Command[0], d.opts.Command[1:]...)
	root := d.opts.Dir
	if root == "" {
		root = os.TempDir()
	} else {
		cmd.Dir = root
	}
	cmd.Env = append(append(os.Environ(), d.opts.Env...),
		appsettings.CustomHandlerPort+"="+strconv.Itoa(port),
		appsettings.CustomHandlerWorkerID+"="+fmt.Sprintf("double-%d-%d", in.id, time.Now().UnixNano()),
		appsettings.AppRootPath+"="+root)
	cmd.Stdout, cmd.Stderr = d.opts.Output, d.opts.Output
	// The kernel kills the handler when the process that started it dies:
	// a test killed mid-run (a timeout, ^C) leaves no handler behind (the
	// handler's own workers die with it the same way).
	cmd.SysProcAttr = procgroup.Attr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("hostdouble: start handler: %w", err)
	}
	dead := make(chan struct{})
	go func() { cmd.Wait(); close(dead) }()
	in.mu.Lock()
	in.cmd, in.port, in.dead = cmd, port, dead
	in.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-dead:
			return fmt.Errorf("hostdouble: handler exited before it was ready: %v", cmd.ProcessState)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			resp.Body.Close()
			return nil // any HTTP answer means ready
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("hostdouble: handler not ready within 60 s")
}

func (d *Double) loop(in *instance) {
	defer d.wg.Done()
	q := d.opts.Queues.NewQueueClient(d.opts.Queue)
	idle := 20 * time.Millisecond
	for d.ctx.Err() == nil {
		in.mu.Lock()
		dead := in.dead
		in.mu.Unlock()
		select {
		case <-dead:
			d.stats.restart.Add(1)
			if err := d.launch(d.ctx, in); err != nil {
				d.opts.Logger.Warn("hostdouble: restart failed", "instance", in.id, "err", err)
				time.Sleep(time.Second)
			}
			continue
		default:
		}
		ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
		resp, err := q.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{
			NumberOfMessages: to.Ptr(int32(1)), VisibilityTimeout: to.Ptr(int32(d.opts.Lease / time.Second)),
		})
		cancel()
		if err != nil || len(resp.Messages) == 0 {
			select {
			case <-d.ctx.Done():
			case <-time.After(idle):
			}
			idle = min(idle*2, 500*time.Millisecond)
			continue
		}
		idle = 20 * time.Millisecond
		d.handle(in, q, resp.Messages[0])
	}
}

func (d *Double) handle(in *instance, q *azqueue.QueueClient, m *azqueue.DequeuedMessage) {
	ctx := context.WithoutCancel(d.ctx)
	id, pop := deref(m.MessageID), deref(m.PopReceipt)
	count := deref(m.DequeueCount)
	text, err := base64.StdEncoding.DecodeString(deref(m.MessageText))
	if err != nil {
		// The host sends undecodable messages straight to poison.
		d.poison(ctx, q, id, pop, deref(m.MessageText))
		return
	}
	ok := d.invoke(in, text, m)
	if in.vanished.Swap(false) {
		return // the machine is gone: nobody tells the queue anything
	}
	switch {
	case ok:
		d.stats.ok.Add(1)
		q.DeleteMessage(ctx, id, pop, nil)
	case count >= int64(d.opts.MaxDequeueCount):
		d.stats.fail.Add(1)
		d.poison(ctx, q, id, pop, deref(m.MessageText))
	default:
		d.stats.fail.Add(1)
		q.UpdateMessage(ctx, id, pop, deref(m.MessageText), &azqueue.UpdateMessageOptions{VisibilityTimeout: to.Ptr(int32(d.opts.RetryDelay / time.Second))})
	}
}

func (d *Double) poison(ctx context.Context, q *azqueue.QueueClient, id, pop, text string) {
	pq := d.opts.Queues.NewQueueClient(d.opts.Queue + "-poison")
	if _, err := pq.Create(ctx, nil); err != nil && !queueerror.HasCode(err, queueerror.QueueAlreadyExists) {
		d.opts.Logger.Warn("hostdouble: create poison queue", "err", err)
	}
	if _, err := pq.EnqueueMessage(ctx, text, nil); err == nil {
		q.DeleteMessage(ctx, id, pop, nil)
		d.stats.poison.Add(1)
	}
}

// invoke POSTs the message as the host does and reports success.
func (d *Double) invoke(in *instance, text []byte, m *azqueue.DequeuedMessage) (ok bool) {
	d.stats.inv.Add(1)
	quote := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	// The host JSON-serializes string values once more than the message.
	msgIn := quote(quote(string(text)))
	ts := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02T15:04:05+00:00")
	}
	body := map[string]any{
		"Data": map[string]json.RawMessage{"msgIn": json.RawMessage(msgIn)},
		"Metadata": map[string]any{
			"DequeueCount":    strconv.FormatInt(deref(m.DequeueCount), 10),
			"Id":              quote(deref(m.MessageID)),
			"PopReceipt":      quote(deref(m.PopReceipt)),
			"InsertionTime":   ts(m.InsertionTime),
			"ExpirationTime":  ts(m.ExpirationTime),
			"NextVisibleTime": ts(m.TimeNextVisible),
			"sys": map[string]string{"MethodName": d.opts.Function, "UtcNow": time.Now().UTC().Format(time.RFC3339Nano),
				"RandGuid": fmt.Sprintf("%x", time.Now().UnixNano())},
		},
	}
	raw, _ := json.Marshal(body)
	in.mu.Lock()
	port := in.port
	in.mu.Unlock()
	ctx, cancel := context.WithTimeout(d.ctx, d.opts.FunctionTimeout)
	defer cancel()
	defer func() {
		if !ok && errors.Is(ctx.Err(), context.DeadlineExceeded) && d.ctx.Err() == nil {
			d.timeout(in)
		}
	}()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/%s", port, d.opts.Function), bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Azure-Functions-InvocationId", fmt.Sprintf("%d-%d", in.id, time.Now().UnixNano()))
	req.Header.Set("User-Agent", "Azure-Functions-Host/hostdouble")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return false
	}
	// A 2xx answer must be a JSON object, or the invocation never completes.
	var obj map[string]json.RawMessage
	if json.Unmarshal(out, &obj) != nil || obj == nil {
		return false
	}
	return true
}

// timeout does what the host does at functionTimeout: the invocation has
// failed, and the worker is restarted. A custom handler is one process per
// instance, so its whole process group goes, every call running on it with
// it; the instance's loop starts a new handler before its next message.
func (d *Double) timeout(in *instance) {
	d.stats.timedOut.Add(1)
	d.opts.Logger.Warn("hostdouble: invocation exceeded the function timeout; restarting the handler", "instance", in.id, "timeout", d.opts.FunctionTimeout)
	in.mu.Lock()
	cmd, dead := in.cmd, in.dead
	in.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	procgroup.Kill(cmd)
	select {
	case <-dead:
	case <-time.After(10 * time.Second):
		d.opts.Logger.Warn("hostdouble: handler did not die after SIGKILL", "instance", in.id)
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
