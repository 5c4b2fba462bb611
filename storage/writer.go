// Writer: a streaming, atomic upload of one object.
package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// errAborted is what the backend's reader returns after Abort.
var errAborted = errors.New("write aborted")

// errUploadEnded is what Write returns when the upload stopped reading early.
var errUploadEnded = errors.New("upload ended before the writer was closed")

// Writer streams one object to the store. Nothing is visible at the key until
// Close succeeds; Abort (or a failed Close) leaves nothing behind: no object,
// no temp file, no multipart upload. Writes are handed through a pipe to the
// backend's Upload, so a slow store slows the writer (no unbounded buffering).
//
// Call exactly one of Close or Abort; Abort after Close is a no-op. A Writer
// whose context ends is aborted. Methods must not be called concurrently.
// A streamed write is not retried: on error, Abort it and write it again.
type Writer struct {
	b       *Bucket
	ctx     context.Context
	key     string
	pipe    *handoff
	cancel  context.CancelFunc
	done    chan struct{}
	err     error // the upload's result, set before done closes
	written int64
	started time.Time
	closed  bool
}

// Create starts an upload of key. contentType is stored with the object
// (e.g. "text/csv", "application/gzip", "application/json").
func (b *Bucket) Create(ctx context.Context, key, contentType string) (*Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, b.wrap("write", key, err)
	}
	// The upload runs on its own context. The caller's context ending aborts
	// it while data is still coming; once all the data has been handed over
	// the commit is let finish (within commitGrace), because a commit request
	// cancelled in flight has an unknown outcome: the store may publish the
	// object after the client gave up, and after any clean-up ran.
	uctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pipe := newHandoff()
	w := &Writer{b: b, ctx: ctx, key: key, pipe: pipe, cancel: cancel, done: make(chan struct{}), started: time.Now()}
	stop := context.AfterFunc(ctx, func() {
		if !pipe.eof.Load() {
			cancel()
			return
		}
		time.AfterFunc(commitGrace, cancel)
	})
	go func() {
		defer close(w.done)
		defer stop()
		err := b.be.Upload(uctx, key, pipe, contentType)
		if err != nil && ctx.Err() != nil && !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
		if err == nil {
			// Upload must consume everything; if it returned early, the
			// writer's next Write fails rather than blocking forever.
			pipe.closeRead(errUploadEnded)
		} else {
			pipe.closeRead(err)
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
	n, err := w.pipe.Write(p)
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
// nothing from this writer is visible: when the failure came after all the
// data was sent (a cancelled or lost commit response), the store may have
// published the object anyway, so Close removes it again.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if err := w.ctx.Err(); err != nil {
		// Cancelled before Close: an abort, as with gocloud's writers.
		w.cancel()
		w.pipe.closeWrite(err)
		<-w.done
		if w.err == nil {
			w.err = w.b.wrap("write", w.key, context.Cause(w.ctx))
		}
		return w.err
	}
	w.pipe.closeWrite(nil)
	<-w.done
	w.cancel()
	if w.err != nil && w.pipe.eof.Load() {
		w.unpublish()
	}
	return w.err
}

// commitGrace is how long a commit may still run after the caller's context
// ends (a job has 10 s from SIGTERM to exit).
const commitGrace = 5 * time.Second

// unpublishTimeout bounds the clean-up after an ambiguous commit.
const unpublishTimeout = 30 * time.Second

// unpublish deletes the key if it holds what this writer sent: same size,
// written after the writer started (allowing for clock skew with the store).
func (w *Writer) unpublish() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), unpublishTimeout)
	defer cancel()
	a, err := w.b.be.Stat(ctx, w.key)
	if err != nil || a.Size != w.written || a.ModTime.Before(w.started.Add(-5*time.Minute)) {
		return
	}
	w.b.be.Delete(ctx, w.key)
}

// Abort discards the object. It waits until the store has cleaned up.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.cancel() // first: a driver that sees the reader fail must see a cancelled context too
	w.pipe.closeWrite(errAborted)
	<-w.done
}
