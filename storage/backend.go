// The Backend interface and its gocloud.dev implementation.
//
// Backend is deliberately small (restic's backend.Backend is the model) so that
// retries and fault injection can wrap any store. Writes go through Upload, a
// single call fed by a reader: it is the only write path gocloud implements
// without faults on every driver (azureblob's Writer.Close panics after a
// failed upload; the Upload path does not), and a replayable reader (an
// io.Seeker) lets a retry decorator resend the whole object.
package storage

import (
	"context"
	"errors"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Backend is one store. Implementations must be safe for concurrent use.
type Backend interface {
	// Stat returns the object's attributes; a missing object satisfies IsNotFound.
	Stat(ctx context.Context, key string) (Attrs, error)
	// NewRangeReader reads length bytes at off (length < 0: to the end). It is
	// one request to the store.
	NewRangeReader(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
	// Upload reads r to io.EOF and then publishes key atomically. If r returns
	// any other error, or ctx ends first, nothing is published and nothing is
	// left behind (no temp file, no multipart upload); the error is returned.
	Upload(ctx context.Context, key string, r io.Reader, contentType string) error
	// Delete removes key; a missing key satisfies IsNotFound.
	Delete(ctx context.Context, key string) error
	// List returns every key starting with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// URI is the key's redacted URI.
	URI(key string) string
	// LocalPath is the key's file on local disk, or "" when it has none.
	LocalPath(key string) string
	Close() error
}

// ErrNotFound is the error a missing object wraps.
var ErrNotFound = errors.New("object not found")

type notFound struct{ cause error }

func (e *notFound) Error() string   { return ErrNotFound.Error() }
func (e *notFound) Unwrap() []error { return []error{ErrNotFound, e.cause} }

// blobBackend is a gocloud.dev bucket.
type blobBackend struct {
	b        *blob.Bucket
	base     url.URL // scheme, host and redacted query of the bucket, for URI
	local    bool    // fileblob rooted at "/": key "a/b" is the file /a/b
	shared   bool    // a process-wide bucket (mem://, clouds): Close keeps it open
	writeOpt func(contentType string) *blob.WriterOptions
}

func (g *blobBackend) err(err error) error {
	if err == nil {
		return nil
	}
	if gcerrors.Code(err) == gcerrors.NotFound {
		return &notFound{cause: err}
	}
	return err
}

func (g *blobBackend) Stat(ctx context.Context, key string) (Attrs, error) {
	a, err := g.b.Attributes(ctx, key)
	if err != nil {
		return Attrs{}, g.err(err)
	}
	return Attrs{Size: a.Size, ETag: a.ETag, ModTime: a.ModTime}, nil
}

func (g *blobBackend) NewRangeReader(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	r, err := g.b.NewRangeReader(ctx, key, off, length, nil)
	if err != nil {
		return nil, g.err(err)
	}
	return r, nil
}

func (g *blobBackend) Upload(ctx context.Context, key string, r io.Reader, contentType string) error {
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	// Every driver aborts an upload when its context ends (fileblob and
	// memblob only look at the context when the upload completes), so a read
	// error must cancel the context before the driver sees it.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cr := &cancelOnError{r: r, cancel: cancel}
	err := g.b.Upload(ctx, key, cr, g.writeOpt(contentType))
	if cr.err != nil {
		return cr.err
	}
	return g.err(err)
}

// cancelOnError cancels the upload's context as soon as its source fails.
type cancelOnError struct {
	r      io.Reader
	cancel context.CancelCauseFunc
	err    error
}

func (c *cancelOnError) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
		c.cancel(err)
	}
	return n, err
}

// WriteTo keeps the source's WriteTo (a handoff's, which spares a copy of
// every byte) while still cancelling the upload when the source fails.
func (c *cancelOnError) WriteTo(w io.Writer) (int64, error) {
	wt, ok := c.r.(io.WriterTo)
	if !ok {
		return io.Copy(w, struct{ io.Reader }{c})
	}
	dst := &sinkErr{w: w}
	n, err := wt.WriteTo(dst)
	if err != nil && dst.err == nil {
		c.err = err
		c.cancel(err)
	}
	return n, err
}

// sinkErr records whether an error came from the destination.
type sinkErr struct {
	w   io.Writer
	err error
}

func (s *sinkErr) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		s.err = err
	}
	return n, err
}

func (g *blobBackend) Delete(ctx context.Context, key string) error {
	return g.err(g.b.Delete(ctx, key))
}

// fileblob's temporary files (no_tmp_dir puts them beside the target):
// "<name>.<hex unix nanoseconds>.tmp". A crash can leave one; it is never a key.
var fileblobTemp = regexp.MustCompile(`\.[0-9a-f]{16}\.tmp$`)

func (g *blobBackend) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	it := g.b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, g.err(err)
		}
		if obj.IsDir || (g.local && fileblobTemp.MatchString(obj.Key)) {
			continue
		}
		keys = append(keys, obj.Key)
	}
	sort.Strings(keys)
	return keys, nil
}

func (g *blobBackend) URI(key string) string {
	u := g.base
	u.Path = "/" + key
	if g.base.Scheme == "file" {
		u.Host = ""
	}
	return u.String()
}

func (g *blobBackend) LocalPath(key string) string {
	if !g.local || !plainLocalKey(key) {
		return ""
	}
	return "/" + key
}

// plainLocalKey reports whether fileblob stores key under its own name
// (fileblob hex-escapes control characters, "//", "../", a trailing "/").
func plainLocalKey(key string) bool {
	if key == "" || strings.HasSuffix(key, "/") || strings.Contains(key, "//") ||
		strings.Contains(key, "__0x") || strings.HasSuffix(key, ".attrs") {
		return false
	}
	for _, part := range strings.Split(key, "/") {
		if part == ".." || part == "." {
			return false
		}
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 32 {
			return false
		}
	}
	return true
}

func (g *blobBackend) Close() error {
	if g.shared {
		return nil
	}
	return g.b.Close()
}

// As exposes the driver's client (gocloud's Bucket.As: *s3.Client,
// *storage.Client, *container.Client).
func (g *blobBackend) As(i any) bool { return g.b.As(i) }
