// The reduce side of MapShuffle: range reads of every mapper's segment,
// read ahead, a bounded k-way merge (spilled runs past the fan-in), the
// reducer's output object.

package lithops

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/shuffle"
	"github.com/lithops-go/lithops/internal/worker"
	"golang.org/x/sync/errgroup"
)

// shuffleReduceTask is the input of one reducer call. Its type names K, V
// and Out, so that a worker whose reducer has other types is a mismatch.
type shuffleReduceTask[K cmp.Ordered, V, Out any] struct {
	Partition int
	Sources   []shuffleRef
	Codec     string
	Bucket    string
	Executor  string
	Job       string
	Limit     int64
	FanIn     int // segments merged at once; 0: shuffleFanIn

	_ [0]V
	_ [0]Out
}

// shuffleOutput is a reducer's result: the object holding its output.
type shuffleOutput struct {
	Key  string
	Keys int64
	Size int64
	Runs int // sorted runs merged on local disk first
}

// readAhead reads rc in chunks on a goroutine of its own, depth chunks
// ahead of the reader: the reducer's range reads of all mappers proceed in
// parallel while it merges.
type readAhead struct {
	rc     io.ReadCloser
	chunks chan []byte
	errc   chan error
	stop   chan struct{}
	cur    []byte
	err    error
	once   sync.Once
}

func newReadAhead(rc io.ReadCloser, chunk, depth int) *readAhead {
	a := &readAhead{rc: rc, chunks: make(chan []byte, depth), errc: make(chan error, 1), stop: make(chan struct{})}
	go func() {
		defer close(a.chunks)
		for {
			b := make([]byte, chunk)
			n, err := io.ReadFull(rc, b)
			if n > 0 {
				select {
				case a.chunks <- b[:n]:
				case <-a.stop:
					return
				}
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return
			}
			if err != nil {
				a.errc <- err
				return
			}
		}
	}()
	return a
}

func (a *readAhead) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		if a.err != nil {
			return 0, a.err
		}
		b, ok := <-a.chunks
		if !ok {
			select {
			case a.err = <-a.errc:
			default:
				a.err = io.EOF
			}
			continue
		}
		a.cur = b
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

func (a *readAhead) Close() error {
	a.once.Do(func() { close(a.stop) })
	return a.rc.Close()
}

// shuffleReads is how many segments a reducer opens at once.
const shuffleReads = 16

// shuffleFanIn is how many segments a reducer merges at once; past it, it
// merges them into sorted runs on local disk first.
const shuffleFanIn = 64

// spillRun writes the pairs of m to a temporary file (removed at once: it
// lives while open) and returns a source reading them back, and the file.
func spillRun[K cmp.Ordered, V any](codec string, m *shuffle.Merger[K, V]) (shuffle.Source[K, V], io.Closer, error) {
	f, err := os.CreateTemp("", "lithops-shuffle-merge-*")
	if err != nil {
		return nil, nil, err
	}
	os.Remove(f.Name())
	bw := bufio.NewWriterSize(f, 256<<10)
	sw, err := shuffle.NewWriter[K, V](codec, bw)
	if err != nil {
		return nil, f, err
	}
	for {
		k, v, err := m.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, f, err
		}
		if err := sw.Write(k, v); err != nil {
			return nil, f, err
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, f, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, f, err
	}
	rd, err := shuffle.NewReader[K, V](codec, bufio.NewReaderSize(f, 256<<10))
	return rd, f, err
}

// reduceCall runs on a worker: range reads of this partition's segment of
// every mapper, in parallel, merged; the user's reducer once per key; the
// output, in key order, into one object of this execution's own.
func (r *Reducer[K, V, Out]) reduceCall(ctx context.Context, t shuffleReduceTask[K, V, Out]) (shuffleOutput, error) {
	var out shuffleOutput
	st := StorageFrom(ctx)
	if st == nil {
		return out, errors.New("lithops: a shuffle reducer runs only as a MapShuffle call")
	}
	fanIn := t.FanIn
	if fanIn <= 0 {
		fanIn = shuffleFanIn
	}
	// Read-ahead per open segment: the memory limit shared by at most
	// fanIn of them, 32 KiB to 1 MiB a chunk, two chunks deep.
	chunk := int(min(max(bufferLimit(t.Limit)/int64(2*max(min(len(t.Sources), fanIn), 1)), 32<<10), 1<<20))
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	// open starts range reads of refs, in parallel.
	open := func(refs []shuffleRef) ([]shuffle.Source[K, V], []io.Closer, error) {
		srcs := make([]shuffle.Source[K, V], len(refs))
		readers := make([]io.Closer, len(refs))
		// Not errgroup.WithContext: its context ends with Wait, and the
		// readers stream under the context they were opened with.
		var eg errgroup.Group
		eg.SetLimit(shuffleReads)
		for i, src := range refs {
			eg.Go(func() error {
				rc, err := st.GetRange(ctx, t.Bucket, src.Key, src.Off, src.Len)
				if err != nil {
					return fmt.Errorf("read segment of %s: %w", src.Key, err)
				}
				ra := newReadAhead(rc, chunk, 2)
				readers[i] = ra
				rd, err := shuffle.NewReader[K, V](t.Codec, bufio.NewReaderSize(ra, 32<<10))
				if err != nil {
					return err
				}
				srcs[i] = rd
				return nil
			})
		}
		err := eg.Wait()
		opened := readers[:0]
		for _, r := range readers {
			if r != nil {
				opened = append(opened, r)
			}
		}
		return srcs, opened, err
	}
	var srcs []shuffle.Source[K, V]
	if len(t.Sources) <= fanIn {
		var readers []io.Closer
		var err error
		srcs, readers, err = open(t.Sources)
		closers = append(closers, readers...)
		if err != nil {
			return out, worker.HandlerError(fmt.Errorf("lithops: shuffle reducer %d: %w", t.Partition, codecHint(err)))
		}
	} else {
		// More segments than the memory holds read-aheads for: merge them
		// fanIn at a time into sorted runs on local disk, then merge the runs.
		for i := 0; i < len(t.Sources); i += fanIn {
			batch, readers, err := open(t.Sources[i:min(i+fanIn, len(t.Sources))])
			if err == nil {
				var run shuffle.Source[K, V]
				var f io.Closer
				run, f, err = spillRun(t.Codec, shuffle.NewMerger(batch))
				if f != nil {
					closers = append(closers, f) // the run stays open until the end
				}
				srcs = append(srcs, run)
			}
			for _, r := range readers { // the batch is merged
				r.Close()
			}
			if err != nil {
				return out, worker.HandlerError(fmt.Errorf("lithops: shuffle reducer %d: %w", t.Partition, codecHint(err)))
			}
			out.Runs++
		}
	}
	merger := shuffle.NewMerger(srcs)
	out.Key = protocol.ShuffleKey(t.Executor, t.Job, CallIDFrom(ctx), token())
	var userErr error
	err := putStream(ctx, st.Put, t.Bucket, out.Key, func(w io.Writer) error {
		cw := &shuffle.CountingWriter{W: w}
		sw, err := shuffle.NewWriter[K, Out](t.Codec, cw)
		if err != nil {
			return err
		}
		err = shuffle.Groups(merger, func(k K, vs func(func(V) bool)) error {
			o, err := r.fn(ctx, k, vs)
			if err != nil {
				userErr = err
				return err
			}
			out.Keys++
			return sw.Write(k, o)
		})
		out.Size = cw.N
		return err
	})
	if userErr != nil {
		return out, userErr // the user's error, as the function returned it
	}
	if err != nil {
		return out, worker.HandlerError(fmt.Errorf("lithops: shuffle reducer %d: %w", t.Partition, codecHint(err)))
	}
	return out, nil
}
