package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// noSleep records the waits a retrying bucket asks for, without waiting.
type noSleep struct{ waits atomic.Int64 }

func (n *noSleep) Sleep(ctx context.Context, d time.Duration) error {
	n.waits.Add(1)
	return ctx.Err()
}

func TestRetryRecoversFromTransientFaults(t *testing.T) {
	for _, bc := range backends(t) {
		t.Run(bc.name, func(t *testing.T) {
			base, p := bc.open(t)
			ctx := context.Background()
			data := randomBytes(t, 3<<20+5)
			if err := base.WriteAll(ctx, p+"ckpt.bin", data, "application/octet-stream"); err != nil {
				t.Fatal(err)
			}
			faults := map[string]*Fault{
				"stat":   {Op: FaultStat, Key: "ckpt.bin", Times: 2},
				"open":   {Op: FaultOpen, Key: "ckpt.bin", Times: 2},
				"read":   {Op: FaultRead, Key: "ckpt.bin", Times: 2, AfterBytes: 100 << 10},
				"write":  {Op: FaultWrite, Key: "out.csv", Times: 2, AfterBytes: 1 << 20},
				"close":  {Op: FaultClose, Key: "out.csv", Times: 1},
				"list":   {Op: FaultList, Times: 2},
				"delete": {Op: FaultDelete, Key: "ckpt.bin", Times: 1},
			}
			var all []*Fault
			for _, f := range faults {
				all = append(all, f)
			}
			var retries atomic.Int64
			sl := &noSleep{}
			b := WithRetry(WithFaults(base, all...), RetryPolicy{
				Sleep:   sl.Sleep,
				OnRetry: func(op, uri string, attempt int, err error, wait time.Duration) { retries.Add(1) },
			})

			o, err := b.Object(ctx, p+"ckpt.bin")
			if err != nil {
				t.Fatalf("Object: %v", err)
			}
			defer o.Close()
			got, err := io.ReadAll(io.NewSectionReader(o, 0, o.Size()))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read through faults: %d bytes, %v", len(got), err)
			}
			out := randomBytes(t, 2<<20)
			if err := b.WriteAll(ctx, p+"out.csv", out, "text/csv"); err != nil {
				t.Fatalf("WriteAll through faults: %v", err)
			}
			if got, err := base.ReadAll(ctx, p+"out.csv"); err != nil || !bytes.Equal(got, out) {
				t.Fatalf("written object: %d bytes, %v", len(got), err)
			}
			keys, err := b.List(ctx, p)
			if err != nil || len(keys) != 2 {
				t.Fatalf("List = %q, %v", keys, err)
			}
			if err := b.Delete(ctx, p+"ckpt.bin"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := base.Stat(ctx, p+"ckpt.bin"); !IsNotFound(err) {
				t.Fatalf("deleted object still there: %v", err)
			}
			for name, f := range faults {
				if f.Injected() != int64(f.Times) {
					t.Errorf("fault %s injected %d times, want %d", name, f.Injected(), f.Times)
				}
			}
			if want := int64(2 + 2 + 2 + 2 + 1 + 2 + 1); retries.Load() != want || sl.waits.Load() != want {
				t.Errorf("retries %d, waits %d; want %d", retries.Load(), sl.waits.Load(), want)
			}
			assertNoLeftovers(t, base, p+"out")
		})
	}
}

func TestRetryNeverRetriesPermanentErrors(t *testing.T) {
	base, p := openT(t, "mem://retry-permanent/"+uniq(t)+"/")
	ctx := context.Background()
	if err := base.WriteAll(ctx, p+"a", []byte("abc"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	denied := Permanent(errors.New("403 access denied"))
	cases := []struct {
		name  string
		fault *Fault
		op    func(b *Bucket) error
	}{
		{"stat denied", &Fault{Op: FaultStat, Err: denied}, func(b *Bucket) error { _, err := b.Stat(ctx, p+"a"); return err }},
		{"missing object", &Fault{Op: FaultStat, Skip: 1 << 30}, func(b *Bucket) error { _, err := b.Stat(ctx, p+"missing"); return err }},
		{"read denied", &Fault{Op: FaultOpen, Err: denied}, func(b *Bucket) error { _, err := b.ReadAll(ctx, p+"a"); return err }},
		{"write denied", &Fault{Op: FaultWrite, Err: denied}, func(b *Bucket) error { return b.WriteAll(ctx, p+"w", []byte("x"), "text/plain") }},
		{"list denied", &Fault{Op: FaultList, Err: denied}, func(b *Bucket) error { _, err := b.List(ctx, p); return err }},
		{"delete denied", &Fault{Op: FaultDelete, Err: denied}, func(b *Bucket) error { return b.Delete(ctx, p+"a") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sl := &noSleep{}
			b := WithRetry(WithFaults(base, c.fault), RetryPolicy{Sleep: sl.Sleep})
			err := c.op(b)
			if err == nil || IsTransient(err) {
				t.Fatalf("err = %v; want a permanent error", err)
			}
			if c.fault.Calls() != 1 || sl.waits.Load() != 0 {
				t.Fatalf("tried %d times, waited %d times; want one try, no wait", c.fault.Calls(), sl.waits.Load())
			}
		})
	}
}

func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	base, p := openT(t, "mem://retry-giveup/"+uniq(t)+"/")
	f := &Fault{Op: FaultStat} // transient, never clears
	sl := &noSleep{}
	b := WithRetry(WithFaults(base, f), RetryPolicy{MaxAttempts: 4, Sleep: sl.Sleep})
	_, err := b.Stat(context.Background(), p+"x")
	if err == nil || !IsTransient(err) || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Fatalf("err = %v; want a transient error that says it gave up after 4 attempts", err)
	}
	if f.Calls() != 4 || sl.waits.Load() != 3 {
		t.Fatalf("calls %d waits %d; want 4 and 3", f.Calls(), sl.waits.Load())
	}
}

func TestRetryStopsAtMaxElapsed(t *testing.T) {
	base, p := openT(t, "mem://retry-elapsed/"+uniq(t)+"/")
	f := &Fault{Op: FaultStat}
	b := WithRetry(WithFaults(base, f), RetryPolicy{MaxAttempts: 1000, InitialDelay: 20 * time.Millisecond, MaxDelay: 20 * time.Millisecond, MaxElapsed: 150 * time.Millisecond})
	start := time.Now()
	_, err := b.Stat(context.Background(), p+"x")
	if took := time.Since(start); err == nil || took > time.Second || f.Calls() > 20 {
		t.Fatalf("err %v after %s and %d calls; want a give-up within MaxElapsed", err, took, f.Calls())
	}
}

func TestRetryWaitEndsWithContext(t *testing.T) {
	base, p := openT(t, "mem://retry-cancel/"+uniq(t)+"/")
	b := WithRetry(WithFaults(base, &Fault{Op: FaultStat}), RetryPolicy{InitialDelay: time.Hour, MaxDelay: time.Hour, MaxElapsed: 10 * time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := b.Stat(ctx, p+"x"); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("err %v after %s; want an error as soon as ctx ends", err, time.Since(start))
	}
}

func TestRetryBackoffIsExponentialWithJitter(t *testing.T) {
	p := RetryPolicy{InitialDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second}.withDefaults()
	for attempt, base := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 6: 2 * time.Second, 30: 2 * time.Second} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := p.delay(attempt)
			if d < base/2 || d > base*3/2 {
				t.Fatalf("delay(%d) = %s; want within ±50%% of %s", attempt, d, base)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("delay(%d) has no jitter: %d distinct values", attempt, len(seen))
		}
	}
}

// A streamed write cannot be replayed: the writer fails with a transient
// error, leaves nothing, and the caller writes the object again. That holds
// even when the store published the object but the response was lost
// (FaultCommit): Close removes what it cannot confirm.
func TestStreamedWriteFailsTransientlyAndIsRedone(t *testing.T) {
	for _, bc := range backends(t) {
		t.Run(bc.name, func(t *testing.T) {
			base, p := bc.open(t)
			ctx := context.Background()
			for _, op := range []FaultOp{FaultWrite, FaultClose, FaultCommit} {
				f := &Fault{Op: op, Key: "part-", Times: 1, AfterBytes: 3 << 20}
				b := WithRetry(WithFaults(base, f), RetryPolicy{Sleep: (&noSleep{}).Sleep})
				data := randomBytes(t, 6<<20)
				key := fmt.Sprintf("%spart-%s.csv", p, op)
				err := writeStreamed(ctx, b, key, data)
				if err == nil || !IsTransient(err) || !errors.Is(err, ErrInjected) {
					t.Fatalf("%s fault: err = %v; want the injected transient error", op, err)
				}
				if _, err := base.Stat(ctx, key); !IsNotFound(err) {
					t.Fatalf("%s fault: a failed write is visible: %v", op, err)
				}
				assertNoLeftovers(t, base, p)
				if err := writeStreamed(ctx, b, key, data); err != nil {
					t.Fatalf("second attempt: %v", err)
				}
				if got, err := base.ReadAll(ctx, key); err != nil || !bytes.Equal(got, data) {
					t.Fatalf("second attempt wrote %d bytes, %v", len(got), err)
				}
			}
		})
	}
}

// writeStreamed writes data in 256 KiB pieces, aborting on the first error.
func writeStreamed(ctx context.Context, b *Bucket, key string, data []byte) error {
	w, err := b.Create(ctx, key, "text/csv")
	if err != nil {
		return err
	}
	for off := 0; off < len(data); off += 256 << 10 {
		if _, err := w.Write(data[off:min(len(data), off+256<<10)]); err != nil {
			w.Abort()
			return err
		}
	}
	return w.Close()
}
