package lithops

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
)

// Option configures NewExecutor and OpenStorage.
type Option func(*options)

type options struct {
	cfg        *config.Config
	configFile string
	backend    string
	region     string
	storage    string
	runtime    string
	maxWorkers int
	memory     int
	logger     *slog.Logger
	codec      protocol.Codec
	timeout    time.Duration
	output     io.Writer
}

// InProcess runs calls as goroutines of this process with in-memory storage:
// the same API without worker processes, program upload or storage setup,
// for unit tests of registered functions. Calls cannot be killed at their
// timeout (their ctx is cancelled) and os.Exit in a function ends the
// process.
func InProcess() Option {
	return func(o *options) { o.backend, o.storage = "inprocess", "memory" }
}

// WithConfig uses cfg instead of looking for a config file.
func WithConfig(cfg *config.Config) Option { return func(o *options) { o.cfg = cfg } }

// WithConfigFile reads the configuration from path.
func WithConfigFile(path string) Option { return func(o *options) { o.configFile = path } }

// WithBackend selects the compute backend: "localhost", or one that the
// program links in, e.g. "azure_functions" with
// import _ "github.com/lithops-go/lithops/azure" (see compute.Register).
func WithBackend(name string) Option { return func(o *options) { o.backend = name } }

// WithRegion sets the compute backend's region, as Lithops' -r/--region
// does (azure_functions.region); localhost has no region and ignores it.
func WithRegion(region string) Option { return func(o *options) { o.region = region } }

// WithStorage selects the storage backend: "localhost", or one that the
// program links in, e.g. "azure_storage" (see storage.Register).
func WithStorage(name string) Option { return func(o *options) { o.storage = name } }

// WithRuntime selects the runtime: on localhost the program the workers run
// (default: this program), on cloud backends a deployed runtime's name.
func WithRuntime(name string) Option { return func(o *options) { o.runtime = name } }

// WithMaxWorkers bounds the number of calls that run at once (localhost:
// worker processes).
func WithMaxWorkers(n int) Option { return func(o *options) { o.maxWorkers = n } }

// WithRuntimeMemory sets the memory of each worker in MiB.
func WithRuntimeMemory(mb int) Option { return func(o *options) { o.memory = mb } }

// WithLogger sends the executor's logs to l (default: stderr at the
// configured log_level).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithCodec selects how inputs and results are encoded (default GobCodec).
func WithCodec(c Codec) Option { return func(o *options) { o.codec = c } }

// WithExecutionTimeout sets the default per-call timeout
// (lithops.execution_timeout).
func WithExecutionTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithWorkerOutput sends the workers' stdout and stderr to w (default
// os.Stderr).
func WithWorkerOutput(w io.Writer) Option { return func(o *options) { o.output = w } }

// Codec encodes inputs and results; see GobCodec and JSONCodec.
type Codec = protocol.Codec

// The codecs lithops knows.
var (
	GobCodec  Codec = protocol.Gob
	JSONCodec Codec = protocol.JSON
)

func resolve(opts []Option) (*options, error) {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	if o.cfg == nil {
		cfg, err := config.Load(o.configFile)
		if err != nil {
			return nil, err
		}
		o.cfg = cfg
	} else {
		c := *o.cfg
		o.cfg = &c
	}
	cfg := o.cfg
	cfg.Override(config.Overrides{
		Backend: o.backend, Storage: o.storage, Runtime: o.runtime,
		MaxWorkers: o.maxWorkers, RuntimeMemory: o.memory, Region: o.region,
	})
	if o.timeout != 0 {
		cfg.Lithops.ExecutionTimeout = o.timeout.Seconds()
	}
	if o.codec != nil {
		cfg.Lithops.Codec = o.codec.Name()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.codec == nil {
		c, err := protocol.CodecByName(cfg.Lithops.Codec)
		if err != nil {
			return nil, err
		}
		o.codec = c
	}
	if o.logger == nil {
		o.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel(cfg.Lithops.LogLevel)}))
	}
	if o.output == nil {
		o.output = os.Stderr
	}
	for _, w := range cfg.Warnings {
		o.logger.Warn(w)
	}
	return o, nil
}

func logLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "error", "critical":
		return slog.LevelError
	}
	return slog.LevelWarn
}

// CallOption configures one CallAsync, Map or MapReduce.
type CallOption func(*callOptions)

type callOptions struct {
	timeout   time.Duration
	memory    int
	retries   *int
	escalate  bool
	gather    bool // inputs are protocol.Gather (reduce jobs)
	chain     bool // inputs are protocol.Gather of one earlier status (chained maps)
	hold      bool // submit writes the job but invokes no call (the caller invokes each)
	extraEnv  map[string]string
	chunksize int
}

// WithTimeout sets the per-call timeout of this job.
func WithTimeout(d time.Duration) CallOption { return func(c *callOptions) { c.timeout = d } }

// WithMemory sets the worker memory of this job in MiB.
func WithMemory(mb int) CallOption { return func(c *callOptions) { c.memory = mb } }

// WithRetries runs a failed call up to n more times (n + 1 attempts in all),
// with a backoff between attempts; a timeout or a crash counts as a failure.
// The retries happen where the calls run, so they go on if the client goes
// away. Default: lithops.retries (0).
func WithRetries(n int) CallOption { return func(c *callOptions) { c.retries = &n } }

// WithMemoryEscalation retries an attempt that ran out of memory with more
// memory: twice the limit on localhost, the next Flex Consumption instance
// size on azure_functions (512 → 2048 → 4096 MB; not over the HTTPS trigger
// with a fixed endpoint). Each escalation is an attempt, so it implies
// EscalationRetries retries when none are set (no WithRetries and
// lithops.retries 0); WithRetries(0) with it is an error.
func WithMemoryEscalation() CallOption { return func(c *callOptions) { c.escalate = true } }

// EscalationRetries is the number of retries WithMemoryEscalation implies
// when none are set: enough for two escalations (128 → 256 → 512 MiB on
// localhost, 512 → 2048 → 4096 MB on Azure).
const EscalationRetries = 2

// WithExtraEnv sets environment variables for the functions of this job,
// Lithops' extra_env: each call runs with them in its worker process (and
// in the processes it starts), on localhost and on the Azure runtime host
// alike; they travel in the job manifest, not in logs. Names must be
// non-empty, without '=', and not LITHOPS_* (the framework's). The
// inprocess backend refuses them: its functions run in the client's
// process.
func WithExtraEnv(env map[string]string) CallOption {
	return func(c *callOptions) {
		if c.extraEnv == nil {
			c.extraEnv = make(map[string]string, len(env))
		}
		for k, v := range env {
			c.extraEnv[k] = v
		}
	}
}

// WithChunkSize sets how many calls of this job one invocation carries,
// Lithops' chunksize for one map (default: lithops.chunksize, 1). On
// azure_functions it is the number of calls per queue message (or HTTPS
// request), which one function instance runs; on localhost every call goes
// to the next free worker process, so it changes nothing there. It is
// recorded in the job manifest.
func WithChunkSize(n int) CallOption { return func(c *callOptions) { c.chunksize = n } }

func (c *callOptions) validate() error {
	if c.retries != nil && (*c.retries < 0 || *c.retries > 100) {
		return fmt.Errorf("lithops: retries must be between 0 and 100, got %d", *c.retries)
	}
	if c.timeout < 0 {
		return fmt.Errorf("lithops: negative timeout %v", c.timeout)
	}
	if c.memory < 0 {
		return fmt.Errorf("lithops: negative memory %d MiB", c.memory)
	}
	if c.escalate && c.retries != nil && *c.retries == 0 {
		return errors.New("lithops: WithMemoryEscalation needs retries (each escalation is an attempt) but WithRetries(0) forbids them: drop WithRetries(0) for the default of 2, or give a number")
	}
	if c.chunksize < 0 {
		return fmt.Errorf("lithops: WithChunkSize(%d): want at least 1", c.chunksize)
	}
	for k := range c.extraEnv {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.HasPrefix(k, "LITHOPS_") {
			return fmt.Errorf("lithops: WithExtraEnv: variable %q: names must be non-empty, without '=' and not LITHOPS_*", k)
		}
	}
	return nil
}
