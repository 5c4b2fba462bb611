// Command limits measures, on this machine and on the same data as an
// export, how fast the work an export does can go when each part runs alone:
// shortest-float formatting of every value, gzip and zstd of the CSV text
// (all cores), sha256 of the stored bytes (one core: a shard's checksum is one
// stream), and writing the text to disk (one stream), each timed alone on
// text already read into memory. bench/run.sh adds their
// costs per value into the tightest limit of each compression mode.
//
//	limits -ckpt FILE -out DIR PLAIN.csv...
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"ckpt2csv/convert"
	_ "ckpt2csv/convert/all"
	"ckpt2csv/storage"
)

func main() {
	ckpt := flag.String("ckpt", "", "checkpoint whose values to format")
	out := flag.String("out", os.TempDir(), "directory to write into")
	flag.Parse()
	res, err := measure(*ckpt, flag.Args(), *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "limits:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(res)
}

// Result is in values per second (MB/s of CSV for the byte-oriented limits
// are converted with the CSV's bytes per value).
type Result struct {
	Values      int64   `json:"values"`
	CSVBytes    int64   `json:"csv_bytes"`
	Format      float64 `json:"format_values_per_s"`
	Gzip        float64 `json:"gzip_values_per_s"`
	Zstd        float64 `json:"zstd_values_per_s"`
	Write       float64 `json:"write_values_per_s"`
	SHA256      float64 `json:"sha256_values_per_s"` // one core: a shard's checksum is one stream
	GzipRatio   float64 `json:"gzip_ratio"`
	ZstdRatio   float64 `json:"zstd_ratio"`
	GzipMBps    float64 `json:"gzip_mb_per_s"`
	ZstdMBps    float64 `json:"zstd_mb_per_s"`
	WriteMBps   float64 `json:"write_mb_per_s"`
	FormatMVals float64 `json:"format_mvalues_per_s"`
}

func measure(ckpt string, csvPaths []string, out string) (*Result, error) {
	vals, err := loadFloats(ckpt)
	if err != nil {
		return nil, err
	}
	res := &Result{Values: int64(len(vals))}
	gz := func(dst, src []byte) []byte {
		b := bytes.NewBuffer(dst[:0])
		w, _ := gzip.NewWriterLevel(b, convert.GzipLevel)
		w.Write(src)
		w.Close()
		return b.Bytes()
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	zs := func(dst, src []byte) []byte { return enc.EncodeAll(src, dst[:0]) }
	// Each figure is the best of three passes, as bench/run.sh takes the
	// best of three exports: on this machine, writing into the page cache
	// varies up to 5x with the kernel's writeback, and CPU work by 20%.
	// Each write pass starts after a sync, as each timed export does.
	var t timings
	format := 0.0
	for pass := range 3 {
		var p timings
		h := sha256.New()
		err = eachChunk(csvPaths, func(c []byte) error {
			p.bytes += int64(len(c))
			p.sha256 += timeIt(func() { h.Write(c) })
			var k int64
			p.gzip += timeIt(func() { k = compressAll(c, gz) })
			p.gzipped += k
			p.zstd += timeIt(func() { k = compressAll(c, zs) })
			p.zstded += k
			return nil
		})
		if err != nil {
			return nil, err
		}
		syscall.Sync()
		if p.write, err = writeAll(csvPaths, filepath.Join(out, "limits-write.csv")); err != nil {
			return nil, err
		}
		f := timeIt(func() { formatAll(vals) })
		if pass == 0 {
			t, format = p, f
			continue
		}
		t.sha256, t.gzip, t.zstd, t.write = min(t.sha256, p.sha256), min(t.gzip, p.gzip), min(t.zstd, p.zstd), min(t.write, p.write)
		format = min(format, f)
	}
	res.Format = float64(len(vals)) / format
	res.FormatMVals = res.Format / 1e6
	res.CSVBytes = t.bytes
	size := float64(t.bytes)
	perValue := size / float64(len(vals))
	res.GzipMBps, res.ZstdMBps, res.WriteMBps = size/t.gzip/1e6, size/t.zstd/1e6, size/t.write/1e6
	res.Gzip, res.Zstd, res.Write = size/perValue/t.gzip, size/perValue/t.zstd, size/perValue/t.write
	res.SHA256 = size / perValue / t.sha256
	res.GzipRatio, res.ZstdRatio = size/float64(t.gzipped), size/float64(t.zstded)
	return res, nil
}

// timings add up, per part of the work, the seconds it took on the CSV text.
type timings struct {
	bytes, gzipped, zstded    int64
	gzip, zstd, sha256, write float64
}

// chunkSize is how much CSV text is read into memory (untimed) before a part
// of the work is timed on it alone, so no part pays for reading.
const chunkSize = 64 << 20

// eachChunk calls fn on the files' bytes, chunkSize at a time.
func eachChunk(paths []string, fn func([]byte) error) error {
	chunk := make([]byte, chunkSize)
	for _, p := range paths {
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		for {
			n, rerr := io.ReadFull(in, chunk)
			if n > 0 {
				if err := fn(chunk[:n]); err != nil {
					in.Close()
					return err
				}
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				in.Close()
				return rerr
			}
		}
		in.Close()
	}
	return nil
}

// writeAll writes the files' bytes into a new file at dst, as one stream, and
// returns the seconds the writes took.
func writeAll(paths []string, dst string) (float64, error) {
	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	defer os.Remove(dst)
	defer out.Close()
	sec := 0.0
	err = eachChunk(paths, func(c []byte) error {
		var werr error
		sec += timeIt(func() { _, werr = out.Write(c) })
		return werr
	})
	if err == nil {
		err = out.Close()
	}
	return sec, err
}

func timeIt(f func()) float64 {
	t := time.Now()
	f()
	return time.Since(t).Seconds()
}

// loadFloats reads every float32 value of the checkpoint.
func loadFloats(path string) ([]float32, error) {
	ctx := context.Background()
	b, key, err := storage.OpenURI(ctx, path)
	if err != nil {
		return nil, err
	}
	obj, err := b.Object(ctx, key)
	if err != nil {
		return nil, err
	}
	ck, err := convert.Open(ctx, obj, "auto", convert.Limits{}.Defaults())
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	var vals []float32
	for i, t := range ck.Info().Tensors {
		if t.DType != convert.Float32 {
			continue
		}
		rc, err := ck.Values(ctx, i)
		if err != nil {
			return nil, err
		}
		raw, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		for j := 0; j+4 <= len(raw); j += 4 {
			vals = append(vals, float32frombytes(raw[j:]))
		}
	}
	return vals, nil
}

func float32frombytes(b []byte) float32 {
	return math.Float32frombits(binary.LittleEndian.Uint32(b))
}

// formatAll formats every value as its shortest float32 text, on all cores,
// with the formatter an export uses.
func formatAll(vals []float32) {
	n := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	chunk := (len(vals) + n - 1) / n
	for w := 0; w < n; w++ {
		lo, hi := min(w*chunk, len(vals)), min((w+1)*chunk, len(vals))
		wg.Add(1)
		go func(part []float32) {
			defer wg.Done()
			buf := make([]byte, 0, 4<<20)
			for _, v := range part {
				buf = convert.AppendFloat32(buf, v)
				buf = append(buf, '\n')
				if len(buf) > 4<<20-64 {
					buf = buf[:0]
				}
			}
		}(vals[lo:hi])
	}
	wg.Wait()
}

// compressAll compresses text in independent 4 MiB blocks on all cores, as
// an export does, and returns the compressed size.
func compressAll(text []byte, fn func(dst, src []byte) []byte) int64 {
	blocks := make(chan []byte)
	var wg sync.WaitGroup
	var packed atomic.Int64
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dst []byte
			for b := range blocks {
				dst = fn(dst, b)
				packed.Add(int64(len(dst)))
			}
		}()
	}
	for len(text) > 0 {
		n := min(len(text), 4<<20)
		blocks <- text[:n]
		text = text[n:]
	}
	close(blocks)
	wg.Wait()
	return packed.Load()
}
