// Writer: a streaming, atomic upload of one object.
package storage

import (
	"context"
	"errors"
	"io"
)

// errAborted is what the backend's reader returns after Abort.
var errAborted = errors.New("write aborted")

// errUploadEnded is what Write returns when the upload stopped reading early.
var errUploadEnded = errors.New("upload ended before the writer was closed")

// Writer streams one object to the store. Nothing is visible at the key until
// Close succeeds; Abort (or a failed Close) leaves nothing behind: no object,
// no temp file, no multipart upload. Writes are fed through a pipe into the
// backend's Upload, so a slow store slows the writer (no unbounded buffering).
//
// Call exactly one of Close or Abort; Abort after Close is a no-op. A Writer
// whose context ends is aborted. Methods must not be called concurrently.
// A streamed write is not retried: on error, Abort it and write it again.
type Writer struct {
	b       *Bucket
	key     string
	pw      *io.PipeWriter
	cancel  context.CancelFunc
	done    chan struct{}
	err     error // the upload's result, set before done closes
	written int64
	closed  bool
}

// Create starts an upload of key. contentType is stored with the object
// (e.g. "text/csv", "application/gzip", "application/json").
func (b *Bucket) Create(ctx context.Context, key, contentType string) (*Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, b.wrap("write", key, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	w := &Writer{b: b, key: key, pw: pw, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		err := b.be.Upload(ctx, key, pr, contentType)
		if err == nil {
			// Upload must consume everything; if it returned early, the
			// writer's next Write fails rather than blocking forever.
			pr.CloseWithError(errUploadEnded)
		} else {
			pr.CloseWithError(err)
			w.err = b.wrap("write", key, err)
		}
	}()
	return w, nil
}

// Write appends p to the object.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, w.b.wrap("write", w.key, errors.New("write after close"))
	}
	n, err := w.pw.Write(p)
	w.written += int64(n)
	if err != nil {
		<-w.done
		if w.err != nil {
			return n, w.err
		}
		return n, w.b.wrap("write", w.key, err)
	}
	return n, nil
}

// Written is the number of bytes accepted so far.
func (w *Writer) Written() int64 { return w.written }

// Close publishes the object and returns the upload's result. If it fails,
// nothing was published.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	w.pw.Close()
	<-w.done
	w.cancel()
	return w.err
}

// Abort discards the object. It waits until the store has cleaned up.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.cancel() // first: a driver that sees the reader fail must see a cancelled context too
	w.pw.CloseWithError(errAborted)
	<-w.done
}
