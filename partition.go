package lithops

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/lithops-go/lithops/storage"
)

// ObjectChunk is one piece of an object that a map call processes, Lithops'
// obj parameter. Partition makes them; inside the function, Open reads the
// chunk aligned on line boundaries.
type ObjectChunk struct {
	// Backend is the storage backend of the object ("localhost",
	// "azure_storage", …), or "http"/"https" for a URL.
	Backend string
	Bucket  string
	Key     string
	// URL is set for objects read over HTTP(S).
	URL string
	// Offset and Size are the nominal byte range of the chunk, before line
	// alignment.
	Offset int64
	Size   int64
	// ObjectSize is the size of the whole object.
	ObjectSize int64
	// Index is the chunk's position within its object, Count the object's
	// number of chunks.
	Index int
	Count int
	// Object is the position of the object among all partitioned objects.
	Object int
	// Newline is the record delimiter Open aligns the chunk on (ObjNewline);
	// "" means "\n".
	Newline string
	// Exact marks a chunk read as its exact byte range, without alignment
	// (ObjNewline("")).
	Exact bool
}

// Name returns a printable name of the chunk's object.
func (c ObjectChunk) Name() string {
	if c.URL != "" {
		return c.URL
	}
	return storage.URI{Backend: c.Backend, Bucket: c.Bucket, Key: c.Key}.String()
}

// PartitionOption configures Partition.
type PartitionOption func(*partitionConfig)

type partitionConfig struct {
	chunkSize   int64
	chunkNumber int
	httpClient  *http.Client
	newline     *string
}

// ChunkSize cuts every object into chunks of about n bytes: ceil(size/n)
// chunks per object (Lithops' obj_chunk_size).
func ChunkSize(n int64) PartitionOption { return func(p *partitionConfig) { p.chunkSize = n } }

// ChunkNumber cuts every object into exactly n chunks (Lithops'
// obj_chunk_number).
func ChunkNumber(n int) PartitionOption { return func(p *partitionConfig) { p.chunkNumber = n } }

// ObjNewline sets the record delimiter that chunks align on, Lithops'
// obj_newline (default "\n"): a chunk other than the first starts after the
// first delimiter at or after its offset and ends with the first delimiter
// at or after its end, so no record is split. The delimiter is one byte
// (e.g. ";" or "\x00"). ObjNewline("") reads each chunk as its exact byte
// range, for binary data (Lithops' obj_newline=None).
func ObjNewline(delim string) PartitionOption {
	return func(p *partitionConfig) { p.newline = &delim }
}

// WithHTTPClient sets the client Partition uses to learn the size of URL
// inputs (default http.DefaultClient). ObjectChunk.Open, which runs in the
// worker, always reads URLs with http.DefaultClient: a client cannot travel
// with a chunk.
func WithHTTPClient(c *http.Client) PartitionOption {
	return func(p *partitionConfig) { p.httpClient = c }
}

// Partition lists the objects that uris name and cuts them into chunks, in
// order: URIs in the order given, objects of a prefix sorted by key, chunks
// by offset. A URI is "bucket/key" (one object), "bucket/prefix/" (every
// object under the prefix), "bucket" (the whole bucket), each optionally
// with the executor's storage scheme ("localhost://…"), or an http(s) URL.
// Without ChunkSize or ChunkNumber each object is one chunk. Every object,
// even an empty one, yields at least one chunk.
func (e *Executor) Partition(ctx context.Context, uris []string, opts ...PartitionOption) ([]ObjectChunk, error) {
	return partition(ctx, e.st, uris, opts...)
}

type object struct {
	backend, bucket, key, url string
	size                      int64
	rangeOK                   bool
}

func partition(ctx context.Context, st *storage.Storage, uris []string, opts ...PartitionOption) ([]ObjectChunk, error) {
	pc := partitionConfig{httpClient: http.DefaultClient}
	for _, o := range opts {
		o(&pc)
	}
	switch {
	case pc.chunkSize < 0:
		return nil, fmt.Errorf("lithops: partition: ChunkSize must be positive, got %d", pc.chunkSize)
	case pc.chunkNumber < 0:
		return nil, fmt.Errorf("lithops: partition: ChunkNumber must be positive, got %d", pc.chunkNumber)
	case pc.chunkSize > 0 && pc.chunkNumber > 0:
		return nil, errors.New("lithops: partition: give ChunkSize or ChunkNumber, not both")
	case len(uris) == 0:
		return nil, errors.New("lithops: partition: no locations given")
	case pc.newline != nil && len(*pc.newline) > 1:
		return nil, fmt.Errorf("lithops: partition: ObjNewline(%q): the delimiter must be one byte (or \"\" for exact byte ranges)", *pc.newline)
	}
	newline, exact := "", false
	if pc.newline != nil {
		newline, exact = *pc.newline, *pc.newline == ""
		if newline == "\n" {
			newline = ""
		}
	}
	var objs []object
	for _, u := range uris {
		found, err := resolveObjects(ctx, st, pc.httpClient, u)
		if err != nil {
			return nil, err
		}
		objs = append(objs, found...)
	}
	var chunks []ObjectChunk
	for i, o := range objs {
		n := 1
		switch {
		case !o.rangeOK:
		case pc.chunkNumber > 0:
			n = pc.chunkNumber
		case pc.chunkSize > 0:
			n = int((o.size + pc.chunkSize - 1) / pc.chunkSize)
		}
		n = max(n, 1)
		cs := (o.size + int64(n) - 1) / int64(n) // ceil: n chunks cover the object
		if pc.chunkSize > 0 && o.rangeOK {
			cs = pc.chunkSize
		}
		for j := 0; j < n; j++ {
			off := min(int64(j)*cs, o.size)
			end := min(off+cs, o.size)
			if j == n-1 {
				end = o.size
			}
			chunks = append(chunks, ObjectChunk{
				Backend: o.backend, Bucket: o.bucket, Key: o.key, URL: o.url,
				Offset: off, Size: end - off, ObjectSize: o.size, Index: j, Count: n, Object: i,
				Newline: newline, Exact: exact,
			})
		}
	}
	return chunks, nil
}

func resolveObjects(ctx context.Context, st *storage.Storage, hc *http.Client, u string) ([]object, error) {
	if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
		return headURL(ctx, hc, u)
	}
	loc, err := storage.ParseURI(u)
	if err != nil {
		return nil, fmt.Errorf("lithops: partition: %w", err)
	}
	if loc.Backend != "" && loc.Backend != st.Backend() {
		return nil, fmt.Errorf("lithops: partition %q: the executor's storage is %s; reading objects from %s is not supported", u, st.Backend(), loc.Backend)
	}
	if loc.Key != "" && !strings.HasSuffix(loc.Key, "/") {
		info, err := st.Head(ctx, loc.Bucket, loc.Key)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return nil, fmt.Errorf("lithops: partition %q: no such object (end a prefix with \"/\"): %w", u, err)
			}
			return nil, fmt.Errorf("lithops: partition %q: %w", u, err)
		}
		return []object{{backend: st.Backend(), bucket: loc.Bucket, key: loc.Key, size: info.Size, rangeOK: true}}, nil
	}
	infos, err := st.List(ctx, loc.Bucket, loc.Key)
	if err != nil {
		return nil, fmt.Errorf("lithops: partition %q: %w", u, err)
	}
	var objs []object
	for _, o := range infos {
		if strings.HasSuffix(o.Key, "/") {
			continue // a "directory" marker, not data
		}
		objs = append(objs, object{backend: st.Backend(), bucket: loc.Bucket, key: o.Key, size: o.Size, rangeOK: true})
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("lithops: partition %q: no objects found", u)
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].key < objs[j].key })
	return objs, nil
}

func headURL(ctx context.Context, hc *http.Client, u string) ([]object, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return nil, fmt.Errorf("lithops: partition %q: %w", u, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("lithops: partition %q: %w", u, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("lithops: partition %q: HEAD answered %s", u, resp.Status)
	}
	o := object{backend: req.URL.Scheme, url: u, size: resp.ContentLength}
	// Without a length or range support the URL is one chunk, read whole.
	o.rangeOK = resp.ContentLength >= 0 && resp.Header.Get("Accept-Ranges") == "bytes"
	if o.size < 0 {
		o.size = 0
	}
	return []object{o}, nil
}

// Open returns a reader of the chunk's lines, inside a function (it uses
// StorageFrom(ctx) for storage objects). Every line of the object is read by
// exactly one chunk: a chunk other than the first starts after the first
// newline at or after its offset, and every chunk ends with the first
// newline at or after its end (or at the end of the object). Lines keep
// their "\n" (and a "\r" before it). With ObjNewline the delimiter is
// another byte, or none (exact byte ranges). The reader streams: memory
// stays bounded by a buffer, whatever the chunk size.
func (c ObjectChunk) Open(ctx context.Context) (io.ReadCloser, error) {
	return c.OpenFrom(ctx, StorageFrom(ctx))
}

// OpenFrom is Open with an explicit storage, for use outside functions.
func (c ObjectChunk) OpenFrom(ctx context.Context, st *storage.Storage) (io.ReadCloser, error) {
	if c.Offset < 0 || c.Size < 0 || c.Offset+c.Size > c.ObjectSize && c.URL == "" {
		return nil, fmt.Errorf("lithops: chunk %d of %s: range %d+%d outside object of %d bytes", c.Index, c.Name(), c.Offset, c.Size, c.ObjectSize)
	}
	var src rangeSource
	if c.URL != "" {
		if c.Count <= 1 {
			return getURL(ctx, http.DefaultClient, c.URL, -1, -1)
		}
		src = func(off, n int64) (io.ReadCloser, error) { return getURL(ctx, http.DefaultClient, c.URL, off, n) }
	} else {
		if st == nil {
			return nil, fmt.Errorf("lithops: chunk of %s: no storage in ctx; call Open inside a function or use OpenFrom", c.Name())
		}
		if c.Backend != "" && c.Backend != st.Backend() {
			return nil, fmt.Errorf("lithops: chunk of %s: the call's storage is %s", c.Name(), st.Backend())
		}
		src = func(off, n int64) (io.ReadCloser, error) { return st.GetRange(ctx, c.Bucket, c.Key, off, n) }
	}
	delim := byte('\n')
	switch {
	case len(c.Newline) > 1:
		return nil, fmt.Errorf("lithops: chunk %d of %s: record delimiter %q is not one byte", c.Index, c.Name(), c.Newline)
	case len(c.Newline) == 1:
		delim = c.Newline[0]
	}
	r, err := newChunkReader(src, c.Offset, c.Offset+c.Size, c.ObjectSize)
	if err != nil {
		return nil, err
	}
	cr := r.(*chunkReader)
	cr.delim = delim
	if c.Exact {
		cr.exact, cr.skipping = true, false
	}
	return cr, nil
}

// rangeSource opens n bytes at off (n < 0: to the end).
type rangeSource func(off, n int64) (io.ReadCloser, error)

// lookahead is how far past a chunk's end the first read reaches for the
// end of its last line; longer lines cost one more request.
const lookahead = 64 << 10

type chunkReader struct {
	src      rangeSource
	rc       io.ReadCloser
	br       *bufio.Reader
	pos      int64 // object position of the next byte br yields
	end      int64 // nominal end; the chunk runs to the first newline at or after it
	size     int64
	fetched  int64 // object position up to which rc was requested
	skipping bool  // dropping the line that the previous chunk finishes
	done     bool
	delim    byte // record delimiter
	exact    bool // no alignment: the chunk is its byte range
}

func newChunkReader(src rangeSource, start, end, size int64) (io.ReadCloser, error) {
	r := &chunkReader{src: src, pos: start, end: end, size: size, delim: '\n'}
	if start > 0 {
		// The line that holds byte start belongs to the previous chunk,
		// which ends at the first newline at or after its end (our start).
		r.skipping = true
	}
	if r.pos >= size {
		r.done = true
		return r, nil
	}
	if err := r.fetch(min(size, end+lookahead)); err != nil {
		return nil, err
	}
	return r, nil
}

// fetch (re)opens the source at pos, up to object position upTo.
func (r *chunkReader) fetch(upTo int64) error {
	if r.rc != nil {
		r.rc.Close()
	}
	n := upTo - r.pos
	if upTo >= r.size {
		n = -1
	}
	rc, err := r.src(r.pos, n)
	if err != nil {
		return err
	}
	r.rc, r.fetched = rc, upTo
	if r.br == nil {
		r.br = bufio.NewReaderSize(rc, 32<<10)
	} else {
		r.br.Reset(rc)
	}
	return nil
}

// fill makes at least one byte available, fetching the rest of the object
// when the current request is used up.
func (r *chunkReader) fill() error {
	if r.br.Buffered() > 0 {
		return nil
	}
	_, err := r.br.Peek(1)
	if err == io.EOF && r.pos < r.size && r.fetched < r.size {
		if ferr := r.fetch(r.size); ferr != nil {
			return ferr
		}
		_, err = r.br.Peek(1)
	}
	if err == io.EOF && r.pos < r.size {
		return fmt.Errorf("object ended at byte %d, %d bytes short: %w", r.pos, r.size-r.pos, io.ErrUnexpectedEOF)
	}
	return err
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for !r.done {
		if r.pos >= r.size {
			r.done = true
			break
		}
		if err := r.fill(); err != nil {
			if err == io.EOF {
				r.done = true
				break
			}
			return 0, err
		}
		buf, _ := r.br.Peek(r.br.Buffered())
		switch {
		case r.skipping:
			if i := bytes.IndexByte(buf, r.delim); i >= 0 {
				r.br.Discard(i + 1)
				r.pos += int64(i + 1)
				r.skipping = false
				if r.pos > r.end {
					r.done = true // the line ran past our end: it belongs to an earlier chunk
				}
			} else {
				r.br.Discard(len(buf))
				r.pos += int64(len(buf))
				if r.pos > r.end {
					r.done = true // no newline up to our end: the chunk is empty
				}
			}
		case r.pos < r.end:
			if int64(len(buf)) > r.end-r.pos {
				buf = buf[:r.end-r.pos]
			}
			n := copy(p, buf)
			r.br.Discard(n)
			r.pos += int64(n)
			return n, nil
		case r.exact:
			r.done = true
		default:
			// Past the nominal end: up to and including the first newline.
			if i := bytes.IndexByte(buf, r.delim); i >= 0 {
				buf = buf[:i+1]
				r.done = true
			}
			n := copy(p, buf)
			r.br.Discard(n)
			r.pos += int64(n)
			if n < len(buf) {
				r.done = false
			}
			return n, nil
		}
	}
	return 0, io.EOF
}

func (r *chunkReader) Close() error {
	if r.rc != nil {
		return r.rc.Close()
	}
	return nil
}

func getURL(ctx context.Context, hc *http.Client, u string, off, n int64) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	ranged := off >= 0
	if ranged {
		if n < 0 {
			req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
		} else {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("lithops: GET %s: %w", u, err)
	}
	if ranged && resp.StatusCode != http.StatusPartialContent || !ranged && resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("lithops: GET %s (Range %q) answered %s", u, req.Header.Get("Range"), resp.Status)
	}
	return resp.Body, nil
}
