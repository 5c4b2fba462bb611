// A retry decorator for any Backend, after restic's backend_retry.go: each
// operation is retried on errors IsTransient accepts, with exponential backoff
// and jitter, up to a number of attempts and a total time; permanent errors
// (not found, denied, invalid, cancelled) return at once.
//
// What is retried:
//   - Stat, Delete, List: the whole call.
//   - reads: opening a range, and a body that breaks part way, which is
//     reopened where it stopped (a resumed read never repeats or skips bytes);
//   - Upload: only when its reader can be rewound (an io.Seeker, as
//     Bucket.WriteAll passes); each attempt is atomic, so a failed one leaves
//     nothing. A streamed Writer is fed by a pipe and cannot be replayed: its
//     caller retries the whole object (for a CSV shard: Abort, then write the
//     shard again from its first row).
package storage

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// RetryPolicy says how often and how long to retry. Zero fields take the defaults.
type RetryPolicy struct {
	MaxAttempts  int           // tries per operation, the first included (default 5)
	InitialDelay time.Duration // wait before the second try (default 250ms)
	MaxDelay     time.Duration // cap on one wait (default 15s)
	MaxElapsed   time.Duration // cap on one operation's total time, waits included (default 2m)
	// OnRetry, if set, is told of every retry (uri is redacted), e.g. to log it.
	OnRetry func(op, uri string, attempt int, err error, wait time.Duration)
	// Sleep waits d or until ctx ends; tests replace it. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 5
	}
	if p.InitialDelay <= 0 {
		p.InitialDelay = 250 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 15 * time.Second
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = 2 * time.Minute
	}
	if p.Sleep == nil {
		p.Sleep = sleepCtx
	}
	return p
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// delay is the wait before try number attempt+1: exponential, +-50% jitter.
func (p RetryPolicy) delay(attempt int) time.Duration {
	d := p.InitialDelay
	for i := 1; i < attempt && d < p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, p.MaxDelay)
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// WithRetry returns a bucket whose operations are retried per p.
func WithRetry(b *Bucket, p RetryPolicy) *Bucket {
	return &Bucket{be: &retryBackend{be: b.be, p: p.withDefaults()}, read: b.read}
}

type retryBackend struct {
	be Backend
	p  RetryPolicy
}

// do runs fn until it succeeds, fails permanently, or the policy gives up.
func (r *retryBackend) do(ctx context.Context, op, key string, fn func() error) error {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !IsTransient(err) {
			return err
		}
		if attempt >= r.p.MaxAttempts {
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		wait := r.p.delay(attempt)
		if time.Since(start)+wait > r.p.MaxElapsed {
			return fmt.Errorf("%w (gave up after %d attempts in %s)", err, attempt, time.Since(start).Round(time.Millisecond))
		}
		if r.p.OnRetry != nil {
			r.p.OnRetry(op, r.be.URI(key), attempt, err, wait)
		}
		if serr := r.p.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (retry interrupted: %v)", err, serr)
		}
	}
}

func (r *retryBackend) Stat(ctx context.Context, key string) (a Attrs, err error) {
	err = r.do(ctx, "stat", key, func() (e error) { a, e = r.be.Stat(ctx, key); return e })
	return a, err
}

func (r *retryBackend) NewRangeReader(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := r.do(ctx, "read", key, func() (e error) { rc, e = r.be.NewRangeReader(ctx, key, off, length); return e })
	if err != nil {
		return nil, err
	}
	return &resumingReader{r: r, ctx: ctx, key: key, rc: rc, off: off, left: length}, nil
}

// resumingReader reopens a broken body where it stopped.
type resumingReader struct {
	r    *retryBackend
	ctx  context.Context
	key  string
	rc   io.ReadCloser
	off  int64 // next byte to read
	left int64 // bytes still wanted; < 0: to the end
}

func (rr *resumingReader) Read(p []byte) (int, error) {
	for {
		if rr.left == 0 {
			return 0, io.EOF
		}
		if rr.left > 0 && int64(len(p)) > rr.left {
			p = p[:rr.left]
		}
		n, err := rr.rc.Read(p)
		rr.off += int64(n)
		if rr.left > 0 {
			rr.left -= int64(n)
		}
		if err == nil || err == io.EOF || !IsTransient(err) {
			return n, err
		}
		if n > 0 {
			// Hand over these bytes; the next Read reopens.
			rr.rc.Close()
			rr.rc = &failedBody{err: err}
			return n, nil
		}
		if err := rr.reopen(err); err != nil {
			return 0, err
		}
	}
}

// failedBody stands in for a body that broke, until it is reopened.
type failedBody struct{ err error }

func (f *failedBody) Read([]byte) (int, error) { return 0, f.err }
func (f *failedBody) Close() error             { return nil }

func (rr *resumingReader) reopen(cause error) error {
	rr.rc.Close()
	rr.rc = &failedBody{err: cause}
	first := true
	return rr.r.do(rr.ctx, "read", rr.key, func() error {
		if first {
			first = false
			return cause // the break itself counts as the first attempt
		}
		rc, err := rr.r.be.NewRangeReader(rr.ctx, rr.key, rr.off, rr.left)
		if err != nil {
			return err
		}
		rr.rc = rc
		return nil
	})
}

func (rr *resumingReader) Close() error { return rr.rc.Close() }

func (r *retryBackend) Upload(ctx context.Context, key string, body io.Reader, contentType string) error {
	s, ok := body.(io.Seeker)
	if !ok {
		return r.be.Upload(ctx, key, body, contentType)
	}
	start, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return r.be.Upload(ctx, key, body, contentType)
	}
	return r.do(ctx, "write", key, func() error {
		if _, err := s.Seek(start, io.SeekStart); err != nil {
			return Permanent(err)
		}
		return r.be.Upload(ctx, key, body, contentType)
	})
}

func (r *retryBackend) Delete(ctx context.Context, key string) error {
	tried := false
	return r.do(ctx, "delete", key, func() error {
		err := r.be.Delete(ctx, key)
		if tried && IsNotFound(err) {
			return nil // an earlier attempt deleted it
		}
		tried = true
		return err
	})
}

func (r *retryBackend) List(ctx context.Context, prefix string) (keys []string, err error) {
	err = r.do(ctx, "list", prefix, func() (e error) { keys, e = r.be.List(ctx, prefix); return e })
	return keys, err
}

func (r *retryBackend) URI(key string) string       { return r.be.URI(key) }
func (r *retryBackend) LocalPath(key string) string { return r.be.LocalPath(key) }
func (r *retryBackend) Close() error                { return r.be.Close() }

func (r *retryBackend) As(i any) bool {
	a, ok := r.be.(interface{ As(any) bool })
	return ok && a.As(i)
}
