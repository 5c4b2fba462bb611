package storage

import (
	"bytes"
	"context"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReadAheadRequestCounts pins how many range GETs the format readers'
// access patterns cost: a header probe, a tail probe, a tensor scan in small
// reads, many small reads in one region, one large read.
func TestReadAheadRequestCounts(t *testing.T) {
	const size = 40<<20 + 12345
	for _, bc := range backends(t) {
		t.Run(bc.name, func(t *testing.T) {
			base, p := bc.open(t)
			ctx := context.Background()
			data := randomBytes(t, size)
			if err := base.WriteAll(ctx, p+"big.bin", data, "application/octet-stream"); err != nil {
				t.Fatal(err)
			}
			b := WithFaults(base) // no faults: forces the remote read path on file:// too
			type step struct {
				name           string
				reads          [][2]int64 // offset, length
				requests       int64      // new requests this step may cost, at most
				maxBytesPerReq int64
			}
			seq := func(off, n, piece int64) [][2]int64 {
				var r [][2]int64
				for o := off; o < off+n; o += piece {
					r = append(r, [2]int64{o, min(piece, off+n-o)})
				}
				return r
			}
			var scatter [][2]int64
			for range 1000 {
				scatter = append(scatter, [2]int64{23<<20 + rand.Int64N(1<<20-64), 64})
			}
			steps := []step{
				{"header probe: magic then header", [][2]int64{{0, 8}, {8, 4096}, {4104, 60000}}, 1, 1 << 20},
				{"tail probe: zip end records", [][2]int64{{size - 22, 22}, {size - 70000, 70000 - 22}}, 1, 1 << 20},
				{"tensor scan, 32 KiB reads", seq(5<<20+3, 16<<20, 32<<10), 2, -1},
				{"1000 small reads in one block", scatter, 1, 1 << 20},
				{"one 8 MiB read", [][2]int64{{30 << 20, 8 << 20}}, 1, 8 << 20},
			}
			o, err := b.Object(ctx, p+"big.bin")
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			if o.LocalPath() != "" {
				t.Fatal("a decorated bucket must not hand out local paths")
			}
			for _, s := range steps {
				r0, b0 := o.Requests(), o.BytesRead()
				for _, r := range s.reads {
					buf := make([]byte, r[1])
					if n, err := o.ReadAt(buf, r[0]); err != nil || int64(n) != r[1] || !bytes.Equal(buf, data[r[0]:r[0]+r[1]]) {
						t.Fatalf("%s: ReadAt(%d, %d) = %d, %v", s.name, r[0], r[1], n, err)
					}
				}
				req, got := o.Requests()-r0, o.BytesRead()-b0
				t.Logf("%-32s %5d reads -> %d requests, %7d KiB fetched", s.name, len(s.reads), req, got>>10)
				if req > s.requests || req == 0 && got > 0 {
					t.Errorf("%s: %d requests, want at most %d", s.name, req, s.requests)
				}
				if s.maxBytesPerReq > 0 && got > s.requests*s.maxBytesPerReq {
					t.Errorf("%s: fetched %d bytes, want at most %d", s.name, got, s.requests*s.maxBytesPerReq)
				}
			}
			// A whole scan from the start in 64 KiB reads: one block, then one stream.
			o2, err := b.Object(ctx, p+"big.bin")
			if err != nil {
				t.Fatal(err)
			}
			defer o2.Close()
			got, err := io.ReadAll(io.NewSectionReader(o2, 0, o2.Size()))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("full scan: %d bytes, %v", len(got), err)
			}
			t.Logf("full scan of %d MiB -> %d requests", size>>20, o2.Requests())
			if o2.Requests() > 2 || o2.BytesRead() != size {
				t.Errorf("full scan: %d requests, %d bytes; want at most 2 requests and every byte once", o2.Requests(), o2.BytesRead())
			}
		})
	}
}

func TestLocalObjectsReadTheFile(t *testing.T) {
	dir := t.TempDir()
	b, key, err := OpenURI(context.Background(), dir+"/w.bin")
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(t, 3<<20)
	if err := b.WriteAll(context.Background(), key, data, ""); err != nil {
		t.Fatal(err)
	}
	o, err := b.Object(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.LocalPath() != dir+"/w.bin" {
		t.Fatalf("LocalPath = %q, want %q", o.LocalPath(), dir+"/w.bin")
	}
	if o.Name() != "file://"+dir+"/w.bin" {
		t.Fatalf("Name = %q", o.Name())
	}
	buf := make([]byte, 100)
	if n, err := o.ReadAt(buf, 1<<20); n != 100 || err != nil || !bytes.Equal(buf, data[1<<20:1<<20+100]) {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	if o.Requests() != 0 || o.BytesRead() != 100 {
		t.Fatalf("local read counted %d requests, %d bytes", o.Requests(), o.BytesRead())
	}
	m, _, _ := OpenURI(context.Background(), "mem://local-test/x")
	m.WriteAll(context.Background(), "x", []byte("x"), "")
	if mo, _ := m.Object(context.Background(), "x"); mo.LocalPath() != "" {
		t.Fatalf("mem object has LocalPath %q", mo.LocalPath())
	}
}

func TestConcurrentReadAt(t *testing.T) {
	b, p := openT(t, "mem://concurrent/"+uniq(t)+"/")
	ctx := context.Background()
	data := randomBytes(t, 9<<20+1)
	if err := b.WriteAll(ctx, p+"c", data, ""); err != nil {
		t.Fatal(err)
	}
	o, err := b.Object(ctx, p+"c")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096+g*777)
			for range 300 {
				off := rand.Int64N(int64(len(data)))
				n, err := o.ReadAt(buf, off)
				if (err != nil && err != io.EOF) || !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
					t.Errorf("ReadAt(%d) = %d, %v", off, n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestObjectReadsFailAfterContextEnds(t *testing.T) {
	b, p := openT(t, "mem://ctx/"+uniq(t)+"/")
	if err := b.WriteAll(context.Background(), p+"c", randomBytes(t, 1<<20), ""); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	o, err := b.Object(ctx, p+"c")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := o.ReadAt(make([]byte, 10), 0); err == nil || IsTransient(err) {
		t.Fatalf("ReadAt after cancel = %v; want a permanent error", err)
	}
}

// An Object dropped mid-scan without Close closes its stream: no connection
// held, and no "blob.Reader was never closed" line from gocloud in the log.
func TestDroppedObjectClosesItsStream(t *testing.T) {
	b, p := openT(t, "mem://dropped/"+uniq(t)+"/")
	ctx := context.Background()
	if err := b.WriteAll(ctx, p+"c", randomBytes(t, 8<<20), ""); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	log.SetOutput(&logged)
	defer log.SetOutput(os.Stderr)
	func() {
		o, err := b.Object(ctx, p+"c")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		for off := int64(0); off < 3<<20; off += int64(len(buf)) {
			if _, err := o.ReadAt(buf, off); err != nil {
				t.Fatal(err)
			}
		}
		if o.stream.rc == nil {
			t.Fatal("a sequential scan should have a stream open")
		}
	}()
	for range 5 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(logged.String(), "never closed") {
		t.Fatalf("gocloud logged: %s", logged.String())
	}
}
