package lithops

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/worker"
)

var (
	regMu    sync.Mutex
	registry = map[string]*worker.Func{}
	started  atomic.Bool
)

// Function is a registered function: fn under a stable name. Create it with
// Func at package level.
type Function[In, Out any] struct {
	name string
	sig  string
	fn   func(context.Context, In) (Out, error)
	// undeclared is an interface in Out that no type declared with Returns
	// implements (nil: none): gob cannot carry such a result.
	undeclared reflect.Type
}

// Name returns the name the function was registered under.
func (f *Function[In, Out]) Name() string { return f.name }

// Signature returns the function's Go signature as workers compare it.
func (f *Function[In, Out]) Signature() string { return f.sig }

// Call runs the function in this process, with ctx as given. It is what a
// worker does, without storage or a codec; useful in unit tests.
func (f *Function[In, Out]) Call(ctx context.Context, in In) (Out, error) { return f.fn(ctx, in) }

// envelope wraps user values so that nil pointers, nil slices and zero values
// survive every codec.
type envelope[T any] struct{ V T }

// decodeParts decodes results (each an encoded envelope of an element) into
// the slice type S. envelope[E] cannot be named for a type known only at run
// time; a struct with the same single field V decodes the same bytes under
// every codec, which match fields by name.
func decodeParts[S any](c protocol.Codec, parts [][]byte) (S, error) {
	var zero S
	t := reflect.TypeFor[S]()
	env := reflect.StructOf([]reflect.StructField{{Name: "V", Type: t.Elem()}})
	s := reflect.MakeSlice(t, len(parts), len(parts))
	for i, p := range parts {
		v := reflect.New(env)
		if err := c.Unmarshal(p, v.Interface()); err != nil {
			return zero, fmt.Errorf("result %d: %w", i, err)
		}
		s.Index(i).Set(v.Elem().Field(0))
	}
	return s.Interface().(S), nil
}

// Func registers fn under name and returns it for CallAsync, Map and
// MapReduce. Call it at package level (var f = lithops.Func(...)) so that the
// client and its workers register the same functions. It panics if name is
// empty or taken, or if Main or Init has already started. Options declare
// what an interface-typed result may hold (Returns).
func Func[In, Out any](name string, fn func(context.Context, In) (Out, error), opts ...FuncOption) *Function[In, Out] {
	if name == "" {
		panic("lithops.Func: empty function name")
	}
	if fn == nil {
		panic(fmt.Sprintf("lithops.Func(%q): nil function", name))
	}
	sig := fmt.Sprintf("func(context.Context, %s) (%s, error)", typeName(reflect.TypeFor[In]()), typeName(reflect.TypeFor[Out]()))
	var fo funcOptions
	for _, o := range opts {
		o(&fo)
	}
	f := &Function[In, Out]{name: name, sig: sig, fn: fn, undeclared: undeclaredInterface(reflect.TypeFor[Out](), fo.returns)}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("lithops.Func(%q): a function is already registered under this name", name))
	}
	if started.Load() {
		panic(fmt.Sprintf("lithops.Func(%q): registration after lithops.Main or lithops.Init started; register functions at package level", name))
	}
	run := func(ctx context.Context, c protocol.Codec, in In) ([]byte, error) {
		out, err := fn(ctx, in)
		if err != nil {
			return nil, err
		}
		b, err := c.Marshal(envelope[Out]{out})
		if err != nil {
			return nil, worker.DecodeError(fmt.Errorf("encode result of %s: %w", name, codecHint(err)))
		}
		return b, nil
	}
	wf := &worker.Func{
		Name:      name,
		Signature: sig,
		Call: func(ctx context.Context, c protocol.Codec, input []byte) ([]byte, error) {
			var in envelope[In]
			if err := c.Unmarshal(input, &in); err != nil {
				return nil, worker.DecodeError(err)
			}
			return run(ctx, c, in.V)
		},
	}
	if reflect.TypeFor[In]().Kind() == reflect.Slice {
		// A reducer: its input can be gathered from map results by the worker.
		wf.CallParts = func(ctx context.Context, c protocol.Codec, parts [][]byte) ([]byte, error) {
			in, err := decodeParts[In](c, parts)
			if err != nil {
				return nil, worker.DecodeError(err)
			}
			return run(ctx, c, in)
		}
	}
	registry[name] = wf
	return f
}

// codecHint adds the fix to gob's failure to carry a value in an interface
// (any) whose concrete type the program did not register.
func codecHint(err error) error {
	if err == nil || !strings.Contains(err.Error(), "not registered for interface") {
		return err
	}
	return fmt.Errorf("%w (a value in an interface-typed (any) field needs its concrete type registered: declare it at package level, lithops.Func(name, fn, lithops.Returns(T{})) for a result, gob.Register(T{}) for an input or a shuffle value, so that the client and its workers both register it, or use the JSON codec: lithops.WithCodec(lithops.JSONCodec))", err)
}

// typeName names a type with its full package path, so that two types of
// the same name in different packages differ.
func typeName(t reflect.Type) string {
	if t.Name() != "" && t.PkgPath() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}

// frozen is the registry every job carries once registration has closed.
var frozen struct {
	once sync.Once
	reg  *protocol.FrozenRegistry
}

// jobRegistry returns the registry a job carries: once registration has
// closed (Init), the same frozen one for every job, its digest and JSON
// computed once; before, the registry as it stands.
func jobRegistry() *protocol.FrozenRegistry {
	if !started.Load() {
		_, reg := registrySnapshot()
		return protocol.Freeze(reg)
	}
	frozen.once.Do(func() {
		_, reg := registrySnapshot()
		frozen.reg = protocol.Freeze(reg)
	})
	return frozen.reg
}

func registrySnapshot() (map[string]*worker.Func, protocol.Registry) {
	regMu.Lock()
	defer regMu.Unlock()
	funcs := make(map[string]*worker.Func, len(registry))
	reg := make(protocol.Registry, len(registry))
	for n, f := range registry {
		funcs[n] = f
		reg[n] = f.Signature
	}
	return funcs, reg
}

// Main is the entry point of a lithops program. In a worker process it serves
// calls and exits; otherwise it runs run with a context that is cancelled on
// SIGINT or SIGTERM, and exits with status 1 if run returns an error.
func Main(run func(context.Context) error) {
	Init()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// Init closes registration and, in a worker process, serves calls and exits.
// Programs that do not use Main call it first thing in main, and test
// packages call it in TestMain before m.Run.
func Init() {
	started.Store(true)
	if mode := os.Getenv(workerEnv); mode != "" {
		os.Exit(serveWorker(mode))
	}
	if m, ok := detectHostMode(); ok {
		os.Exit(serveHostMode(m))
	}
}

// serveWorker runs worker mode and returns the exit status.
func serveWorker(mode string) int {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := runWorker(context.Background(), mode, logger); err != nil {
		logger.Error("lithops worker failed", "err", err)
		return 2
	}
	return 0
}
