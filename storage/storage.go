// Package storage gives the rest of ckpt2csv bytes: it opens any gocloud.dev blob
// URL (s3://, gs://, azblob://, file://, mem://) or a plain local path, reads
// objects through an io.ReaderAt built on a few large range reads, and publishes
// objects atomically (whole or not at all).
//
// The shape follows restic's backend package: every store is a small Backend
// interface (backend.go) and cross-cutting behaviour (retries, injected faults)
// are decorators that wrap a Backend. Bucket is the facade the job uses.
//
// Credentials come only from each cloud's standard environment variables and
// credential chains (the gocloud URL openers); URIs in messages, reports and
// sidecars go through URI, which removes userinfo and secret query values.
//
// Typical use:
//
//	b, key, err := storage.OpenURI(ctx, uri)           // a shared client per cloud bucket
//	b = storage.WithRetry(b, storage.RetryPolicy{})    // transient errors retried with backoff
//	obj, err := b.Object(ctx, key)                     // a convert.Source; Close it when done
//	w, err := b.Create(ctx, outKey, "text/csv")        // Write..., then Close (publish) or Abort
//
// Tests inject failures with WithFaults, and prove aborts clean up with
// PendingUploads. scripts/storage-servers.sh starts loopback S3, GCS and
// Azure servers and exports CKPT2CSV_TEST_S3/_GCS/_AZURE for the suites.
package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"
)

// Attrs is what a stat of one object returns.
type Attrs struct {
	Size    int64
	ETag    string // opaque; changes when the object changes (fileblob: modtime-size)
	ModTime time.Time
}

// Bucket is an open bucket. It is safe for concurrent use.
type Bucket struct {
	be   Backend
	read ReadOptions
}

// ReadOptions size the read-ahead of the Objects a bucket opens.
type ReadOptions struct {
	// BlockSize is the unit of a random read: a miss fetches the aligned block
	// around it (a 4-byte header probe costs one GET of BlockSize bytes).
	// Reads of at least BlockSize bypass the cache. Zero means 1 MiB.
	BlockSize int
	// CacheSize bounds the bytes each Object keeps cached. Zero means 8 MiB.
	CacheSize int
}

func (o ReadOptions) withDefaults() ReadOptions {
	if o.BlockSize <= 0 {
		o.BlockSize = 1 << 20
	}
	if o.CacheSize < o.BlockSize {
		o.CacheSize = 8 << 20
		if o.CacheSize < o.BlockSize {
			o.CacheSize = o.BlockSize
		}
	}
	return o
}

// NewBucket makes a Bucket of any Backend (a decorated one, a test double).
func NewBucket(be Backend) *Bucket {
	return &Bucket{be: be, read: ReadOptions{}.withDefaults()}
}

// Backend returns the backend this bucket uses, for decorators.
func (b *Bucket) Backend() Backend { return b.be }

// WithReadOptions returns a bucket over the same backend whose Objects use o.
func (b *Bucket) WithReadOptions(o ReadOptions) *Bucket {
	return &Bucket{be: b.be, read: o.withDefaults()}
}

// Stat returns the object's attributes; a missing object is an error satisfying IsNotFound.
func (b *Bucket) Stat(ctx context.Context, key string) (Attrs, error) {
	a, err := b.be.Stat(ctx, key)
	if err != nil {
		return Attrs{}, b.wrap("stat", key, err)
	}
	return a, nil
}

// ReadAll reads a whole object into memory: for small objects (manifests, sidecars).
func (b *Bucket) ReadAll(ctx context.Context, key string) ([]byte, error) {
	r, err := b.NewReader(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, b.wrap("read", key, err)
	}
	return data, nil
}

// NewReader opens a sequential reader over the whole object.
func (b *Bucket) NewReader(ctx context.Context, key string) (io.ReadCloser, error) {
	r, err := b.be.NewRangeReader(ctx, key, 0, -1)
	if err != nil {
		return nil, b.wrap("read", key, err)
	}
	return &wrapReader{r: r, b: b, key: key}, nil
}

type wrapReader struct {
	r   io.ReadCloser
	b   *Bucket
	key string
}

func (w *wrapReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err != nil && err != io.EOF {
		err = w.b.wrap("read", w.key, err)
	}
	return n, err
}

func (w *wrapReader) Close() error { return w.r.Close() }

// WriteAll publishes data at key atomically. The data can be replayed, so a
// retrying bucket retries the whole upload on transient errors.
func (b *Bucket) WriteAll(ctx context.Context, key string, data []byte, contentType string) error {
	if err := b.be.Upload(ctx, key, bytes.NewReader(data), contentType); err != nil {
		return b.wrap("write", key, err)
	}
	return nil
}

// Delete removes key; a missing key is not an error.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := b.be.Delete(ctx, key); err != nil && !IsNotFound(err) {
		return b.wrap("delete", key, err)
	}
	return nil
}

// List returns every key under prefix (a plain string prefix, recursive), sorted.
func (b *Bucket) List(ctx context.Context, prefix string) ([]string, error) {
	keys, err := b.be.List(ctx, prefix)
	if err != nil {
		return nil, b.wrap("list", prefix, err)
	}
	return keys, nil
}

// URI is key's full URI with credentials and secrets removed, for messages,
// reports and sidecars.
func (b *Bucket) URI(key string) string { return b.be.URI(key) }

// Close releases the bucket. Cloud and mem:// buckets are shared process-wide
// (one client per bucket URL) and stay open; mem:// keeps its contents.
func (b *Bucket) Close() error { return b.be.Close() }

func (b *Bucket) wrap(op, key string, err error) error {
	return &Error{Op: op, URI: b.be.URI(key), Err: err}
}

// Error is a storage operation that failed: what, where, and why.
type Error struct {
	Op  string // stat, read, write, delete, list
	URI string // redacted
	Err error
}

func (e *Error) Error() string { return fmt.Sprintf("%s %s: %v", e.Op, e.URI, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// As exposes the underlying driver's client, through any decorators
// (gocloud's Bucket.As: *s3.Client, *storage.Client, *container.Client).
func (b *Bucket) As(i any) bool {
	if a, ok := b.be.(interface{ As(any) bool }); ok {
		return a.As(i)
	}
	return false
}
