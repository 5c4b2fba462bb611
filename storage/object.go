// Object: a checkpoint object as a convert.Source, an io.ReaderAt over range
// reads with read-ahead.
//
// Format readers probe a header at offset 0, often a trailer at the end (zip),
// then stream tensors sequentially with many small reads. One GET per small
// read would cost thousands of round trips, so:
//   - a miss fetches the aligned block around it (ReadOptions.BlockSize, 1 MiB),
//     or the last block of the object for a read near its end (a tail probe);
//   - a miss right where the previous fetch ended is a sequential scan: it opens
//     one streaming GET from there to the end of the object and keeps reading
//     from it while the scan continues (one request per scan, not per block);
//   - reads of at least a block go straight into the caller's buffer;
//   - fetched blocks stay in a small LRU cache (ReadOptions.CacheSize, 8 MiB).
//
// Local files are read with pread on the file itself, with no cache.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"ckpt2csv/convert"
)

// Object is one object opened for reading. It implements convert.Source and
// convert.LocalFile (LocalPath is "" unless the object is a plain local file).
// ReadAt is safe for concurrent use; calls are served one at a time.
type Object struct {
	b     *Bucket
	ctx   context.Context
	key   string
	attrs Attrs
	local string

	requests  atomic.Int64
	bytesRead atomic.Int64
	parts     *partLog // the siblings opened through this object or its siblings

	mu       sync.Mutex
	file     *os.File
	chunks   []*chunk // LRU order, most recently used last
	cached   int
	spare    [][]byte      // evicted buffers for reuse
	lastEnd  int64         // end of the last fetch from the store
	stream   *streamHolder // the open sequential read, if any
	streamAt int64
	closed   bool
}

type chunk struct {
	off  int64
	data []byte
}

var (
	_ convert.Source    = (*Object)(nil)
	_ convert.LocalFile = (*Object)(nil)
)

// Object stats key and opens it for reading; reads use ctx. A missing object
// is an error satisfying IsNotFound.
func (b *Bucket) Object(ctx context.Context, key string) (*Object, error) {
	a, err := b.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	o := &Object{b: b, ctx: ctx, key: key, attrs: a, local: b.be.LocalPath(key), lastEnd: -1, stream: &streamHolder{}, parts: &partLog{}}
	// An Object dropped without Close must not leave a read open: it would
	// hold a connection, and gocloud logs every Reader it finds unclosed.
	runtime.AddCleanup(o, (*streamHolder).close, o.stream)
	return o, nil
}

// streamHolder owns an Object's open stream, apart from the Object, so that
// a cleanup can close it once the Object is unreachable.
type streamHolder struct{ rc io.ReadCloser }

func (h *streamHolder) close() {
	if h.rc != nil {
		h.rc.Close()
		h.rc = nil
	}
}

// Size is the object's size when it was opened.
func (o *Object) Size() int64 { return o.attrs.Size }

// Name is the object's redacted URI.
func (o *Object) Name() string { return o.b.URI(o.key) }

// Key is the object's key in its bucket.
func (o *Object) Key() string { return o.key }

// ETag is the store's version tag of the object when it was opened.
func (o *Object) ETag() string { return o.attrs.ETag }

// Attrs are the object's attributes when it was opened.
func (o *Object) Attrs() Attrs { return o.attrs }

// LocalPath is the object's file on local disk, or "" for a remote object.
func (o *Object) LocalPath() string { return o.local }

// Requests counts the read requests (range GETs) this object sent to the
// store; reopens by a retrying bucket after a broken read are not included.
func (o *Object) Requests() int64 { return o.requests.Load() }

// BytesRead counts the bytes received from the store.
func (o *Object) BytesRead() int64 { return o.bytesRead.Load() }

// Sibling opens the object at rel, relative to this object's directory, and
// records it among Parts.
func (o *Object) Sibling(ctx context.Context, rel string) (convert.Source, error) {
	key, err := SiblingKey(o.key, rel)
	if err != nil {
		return nil, err
	}
	s, err := o.b.Object(ctx, key)
	if err != nil {
		return nil, err
	}
	s.parts = o.parts
	o.parts.add(key, s.attrs)
	return s, nil
}

// Parts are the other objects a checkpoint was read from (shards, data
// files, external data), each as it was when first opened, by key.
func (o *Object) Parts() map[string]Attrs {
	o.parts.mu.Lock()
	defer o.parts.mu.Unlock()
	return maps.Clone(o.parts.m)
}

type partLog struct {
	mu sync.Mutex
	m  map[string]Attrs
}

func (l *partLog) add(key string, a Attrs) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, seen := l.m[key]; !seen {
		if l.m == nil {
			l.m = map[string]Attrs{}
		}
		l.m[key] = a
	}
}

// SiblingKey resolves rel against the directory of key. rel must be a
// relative, slash-separated path that stays inside that directory.
func SiblingKey(key, rel string) (string, error) {
	if rel == "" || strings.HasPrefix(rel, "/") || strings.Contains(rel, "\\") ||
		strings.ContainsRune(rel, 0) || (len(rel) > 1 && rel[1] == ':') {
		return "", fmt.Errorf("sibling %q: not a relative path", rel)
	}
	for _, part := range strings.Split(rel, "/") {
		if part == ".." {
			return "", fmt.Errorf("sibling %q: leaves the checkpoint's directory", rel)
		}
	}
	clean := path.Clean(rel)
	if clean == "." {
		return "", fmt.Errorf("sibling %q: names a directory", rel)
	}
	dir := path.Dir(key)
	if dir == "." || dir == "/" {
		return clean, nil
	}
	return dir + "/" + clean, nil
}

// Close releases the object's file, open stream and cache. Reads after Close fail.
func (o *Object) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	o.dropStream()
	o.chunks, o.spare, o.cached = nil, nil, 0
	if o.file != nil {
		err := o.file.Close()
		o.file = nil
		return err
	}
	return nil
}

var errClosed = errors.New("object closed")

// ReadAt reads len(p) bytes at off. Like any io.ReaderAt it returns io.EOF
// with fewer bytes when the object ends first.
func (o *Object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", o.Name(), off)
	}
	size := o.attrs.Size
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	end := off + int64(len(p))
	if end > size {
		end = size
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return 0, errClosed
	}
	var n int
	var err error
	if o.local != "" {
		n, err = o.readLocal(p[:end-off], off)
	} else {
		n, err = o.readRemote(p[:end-off], off)
	}
	if err != nil {
		return n, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (o *Object) readLocal(p []byte, off int64) (int, error) {
	if err := o.ctx.Err(); err != nil {
		return 0, err
	}
	if o.file == nil {
		f, err := os.Open(o.local)
		if err != nil {
			return 0, o.b.wrap("read", o.key, err)
		}
		o.file = f
	}
	n, err := o.file.ReadAt(p, off)
	o.bytesRead.Add(int64(n))
	if err == io.EOF && n < len(p) {
		// The file shrank since it was opened.
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, o.b.wrap("read", o.key, fmt.Errorf("at offset %d: %w", off+int64(n), err))
	}
	return n, nil
}

func (o *Object) readRemote(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if c := o.lookup(pos); c != nil {
			n += copy(p[n:], c.data[pos-c.off:])
			continue
		}
		// A large read goes straight into p (from the open stream when the
		// scan continues there), without passing through the cache.
		if len(p)-n >= o.b.read.BlockSize {
			k, err := o.fetchInto(p[n:], pos)
			n += k
			if err != nil {
				return n, err
			}
			continue
		}
		c, err := o.fetchBlock(pos)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], c.data[pos-c.off:])
	}
	return n, nil
}

func (o *Object) lookup(pos int64) *chunk {
	for i := len(o.chunks) - 1; i >= 0; i-- {
		c := o.chunks[i]
		if pos >= c.off && pos < c.off+int64(len(c.data)) {
			if i != len(o.chunks)-1 {
				copy(o.chunks[i:], o.chunks[i+1:])
				o.chunks[len(o.chunks)-1] = c
			}
			return c
		}
	}
	return nil
}

// fetchBlock reads the block that holds pos into the cache.
func (o *Object) fetchBlock(pos int64) (*chunk, error) {
	bs := int64(o.b.read.BlockSize)
	size := o.attrs.Size
	start := pos
	if !o.sequential(pos) {
		start = pos - pos%bs
		if size-start < bs { // near the end: take the whole last block (tail probe)
			start = max(0, size-bs)
		}
	}
	end := min(size, start+bs)
	buf := o.buffer(int(end - start))
	k, err := o.fetchInto(buf, start)
	if err != nil {
		return nil, err
	}
	c := &chunk{off: start, data: buf[:k]}
	o.insert(c)
	return c, nil
}

// sequential reports whether a fetch at pos continues the previous one.
func (o *Object) sequential(pos int64) bool {
	return pos == o.lastEnd || (o.stream.rc != nil && pos == o.streamAt)
}

// fetchInto fills p with the bytes at pos from the store: from the open
// stream when the scan continues there, else from a new stream (sequential)
// or one range read.
func (o *Object) fetchInto(p []byte, pos int64) (int, error) {
	if err := o.ctx.Err(); err != nil {
		return 0, err
	}
	if o.stream.rc != nil && o.streamAt != pos {
		o.dropStream()
	}
	if o.stream.rc == nil && o.sequential(pos) {
		r, err := o.b.be.NewRangeReader(o.ctx, o.key, pos, -1)
		if err != nil {
			return 0, o.b.wrap("read", o.key, err)
		}
		o.requests.Add(1)
		o.stream.rc, o.streamAt = r, pos
	}
	if o.stream.rc != nil {
		n, err := io.ReadFull(o.stream.rc, p)
		o.bytesRead.Add(int64(n))
		o.streamAt += int64(n)
		o.lastEnd = o.streamAt
		if err == nil {
			if o.streamAt >= o.attrs.Size {
				o.dropStream() // the scan reached the end: free the connection now
			}
			return n, nil
		}
		// A stream that broke (or idled out) is dropped; the rest comes from a
		// fresh range read, which a retrying backend retries.
		o.dropStream()
		if o.ctx.Err() != nil {
			return n, o.ctx.Err()
		}
		m, err := o.rangeRead(p[n:], pos+int64(n))
		return n + m, err
	}
	return o.rangeRead(p, pos)
}

// rangeRead is one range GET of exactly len(p) bytes at pos.
func (o *Object) rangeRead(p []byte, pos int64) (int, error) {
	r, err := o.b.be.NewRangeReader(o.ctx, o.key, pos, int64(len(p)))
	if err != nil {
		return 0, o.b.wrap("read", o.key, err)
	}
	o.requests.Add(1)
	n, err := io.ReadFull(r, p)
	r.Close()
	o.bytesRead.Add(int64(n))
	o.lastEnd = pos + int64(n)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = fmt.Errorf("object ended at %d, before %d (it changed since it was opened): %w",
			pos+int64(n), pos+int64(len(p)), io.ErrUnexpectedEOF)
	}
	if err != nil {
		return n, o.b.wrap("read", o.key, err)
	}
	return n, nil
}

func (o *Object) dropStream() {
	o.stream.close()
}

func (o *Object) buffer(n int) []byte {
	for i, b := range o.spare {
		if cap(b) >= n {
			o.spare = append(o.spare[:i], o.spare[i+1:]...)
			return b[:n]
		}
	}
	return make([]byte, n)
}

func (o *Object) insert(c *chunk) {
	for len(o.chunks) > 0 && o.cached+len(c.data) > o.b.read.CacheSize {
		old := o.chunks[0]
		o.chunks = o.chunks[1:]
		o.cached -= len(old.data)
		if len(o.spare) < 2 {
			o.spare = append(o.spare, old.data[:cap(old.data)])
		}
	}
	o.chunks = append(o.chunks, c)
	o.cached += len(c.data)
}
