// A fault-injection decorator for tests: fail reads, writes or closes of
// chosen keys at chosen points, transiently or permanently.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
)

// FaultOp names the point a Fault hits.
type FaultOp string

const (
	FaultStat   FaultOp = "stat"   // Stat fails
	FaultOpen   FaultOp = "open"   // opening a read fails
	FaultRead   FaultOp = "read"   // a read body breaks after Fault.AfterBytes bytes
	FaultWrite  FaultOp = "write"  // an upload's data stops after Fault.AfterBytes bytes
	FaultClose  FaultOp = "close"  // an upload fails when its data ends, before it is published
	FaultCommit FaultOp = "commit" // an upload is published, then reports failure (a lost response)
	FaultDelete FaultOp = "delete" // Delete fails
	FaultList   FaultOp = "list"   // List fails
)

// Fault describes failures to inject. A Fault counts the calls it matches.
type Fault struct {
	Op         FaultOp
	Key        string // the fault hits keys containing this ("" = every key; List: the prefix)
	Skip       int    // let this many matching calls through first
	Times      int    // then fail this many (0 = every later call: a fault that never clears)
	AfterBytes int64  // FaultRead, FaultWrite: bytes that get through before the break
	// Err is the injected error. Default: a transient error (IsTransient true);
	// wrap with Permanent for one that must not be retried.
	Err error

	calls    atomic.Int64
	injected atomic.Int64
}

// Calls is how many calls matched the fault; Injected how many it failed.
func (f *Fault) Calls() int64    { return f.calls.Load() }
func (f *Fault) Injected() int64 { return f.injected.Load() }

// ErrInjected is what injected errors wrap.
var ErrInjected = errors.New("injected fault")

// hit reports whether this call fails, and with what.
func (f *Fault) hit(op FaultOp, key string) error {
	if f.Op != op || !strings.Contains(key, f.Key) {
		return nil
	}
	n := f.calls.Add(1)
	if n <= int64(f.Skip) || (f.Times > 0 && n > int64(f.Skip+f.Times)) {
		return nil
	}
	f.injected.Add(1)
	if f.Err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrInjected, op, key, f.Err)
	}
	return Transient(fmt.Errorf("%w: %s %s", ErrInjected, op, key))
}

// WithFaults returns a bucket whose backend fails as the faults say. Objects
// it opens never use the local-file fast path, so reads of file:// objects
// go through the faults too.
func WithFaults(b *Bucket, faults ...*Fault) *Bucket {
	return &Bucket{be: &faultBackend{be: b.be, faults: faults}, read: b.read}
}

type faultBackend struct {
	be     Backend
	faults []*Fault
}

func (fb *faultBackend) check(op FaultOp, key string) (*Fault, error) {
	for _, f := range fb.faults {
		if err := f.hit(op, key); err != nil {
			return f, err
		}
	}
	return nil, nil
}

func (fb *faultBackend) Stat(ctx context.Context, key string) (Attrs, error) {
	if _, err := fb.check(FaultStat, key); err != nil {
		return Attrs{}, err
	}
	return fb.be.Stat(ctx, key)
}

func (fb *faultBackend) NewRangeReader(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if _, err := fb.check(FaultOpen, key); err != nil {
		return nil, err
	}
	rc, err := fb.be.NewRangeReader(ctx, key, off, length)
	if err != nil {
		return nil, err
	}
	if f, err := fb.check(FaultRead, key); err != nil {
		return &breakingReader{rc: rc, left: f.AfterBytes, err: err}, nil
	}
	return rc, nil
}

// breakingReader passes left bytes, then fails with err.
type breakingReader struct {
	rc   io.ReadCloser
	left int64
	err  error
}

func (b *breakingReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, b.err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *breakingReader) Close() error { return b.rc.Close() }

func (fb *faultBackend) Upload(ctx context.Context, key string, r io.Reader, contentType string) error {
	if f, err := fb.check(FaultWrite, key); err != nil {
		r = &breakingReader{rc: io.NopCloser(r), left: f.AfterBytes, err: err}
	} else if _, err := fb.check(FaultClose, key); err != nil {
		r = &failAtEOF{r: r, err: err}
	} else if _, err := fb.check(FaultCommit, key); err != nil {
		if uerr := fb.be.Upload(ctx, key, r, contentType); uerr != nil {
			return uerr
		}
		return err
	}
	return fb.be.Upload(ctx, key, r, contentType)
}

// failAtEOF turns the end of the data into err, so the upload never completes.
type failAtEOF struct {
	r   io.Reader
	err error
}

func (f *failAtEOF) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		err = f.err
	}
	return n, err
}

func (fb *faultBackend) Delete(ctx context.Context, key string) error {
	if _, err := fb.check(FaultDelete, key); err != nil {
		return err
	}
	return fb.be.Delete(ctx, key)
}

func (fb *faultBackend) List(ctx context.Context, prefix string) ([]string, error) {
	if _, err := fb.check(FaultList, prefix); err != nil {
		return nil, err
	}
	return fb.be.List(ctx, prefix)
}

func (fb *faultBackend) URI(key string) string   { return fb.be.URI(key) }
func (fb *faultBackend) LocalPath(string) string { return "" }
func (fb *faultBackend) Close() error            { return fb.be.Close() }

func (fb *faultBackend) As(i any) bool {
	a, ok := fb.be.(interface{ As(any) bool })
	return ok && a.As(i)
}

// WithoutETags makes b report no ETags, as some S3-compatible stores do for
// objects put on their disks directly.
func WithoutETags(b *Bucket) *Bucket {
	return &Bucket{be: noETags{b.be}, read: b.read}
}

type noETags struct{ Backend }

func (n noETags) Stat(ctx context.Context, key string) (Attrs, error) {
	a, err := n.Backend.Stat(ctx, key)
	a.ETag = ""
	return a, err
}
