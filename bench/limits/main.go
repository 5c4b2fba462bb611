// Command limits measures, on this machine and on the same data as an
// export, how fast the work an export does can go when each part runs alone:
// shortest-float formatting of every value, gzip and zstd of the CSV text
// (all cores), sha256 of the stored bytes (one core: a shard's checksum is one
// stream), and writing as many bytes as the export stored to disk (one
// stream), each timed alone on text already read into memory. bench/run.sh adds their
// costs per value into the tightest limit of each compression mode.
//
//	limits -ckpt FILE -out DIR [-passes N] [-remove] PLAIN.csv...
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
	passes := flag.Int("passes", 3, "measurements of each limit, the fastest kept")
	remove := flag.Bool("remove", false, "delete the CSV files once read")
	flag.Parse()
	res, err := measure(*ckpt, flag.Args(), *out, max(*passes, 1), *remove)
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

func measure(ckpt string, csvPaths []string, out string, passes int, remove bool) (*Result, error) {
	sample, total, err := readSample(csvPaths, sampleSize)
	if err != nil {
		return nil, err
	}
	if remove {
		// Deleted before it is written back, the export's output costs no
		// disk time; writeback in progress slows page-cache writes up to
		// 10x on this machine.
		for _, p := range csvPaths {
			os.Remove(p)
		}
	}
	// Each figure is the fastest of its passes, as bench/run.sh keeps the
	// fastest of its rounds of exports (CPU work varies by 20% here, and up
	// to 60% for a minute at a time; page-cache writes far more). The
	// writes go first, while this process is as small as an export:
	// after the passes below had churned gigabytes of memory, the same 3 GB
	// took 3.4-6.5 s instead of 0.6 s.
	dst := filepath.Join(out, "limits-write.csv")
	write := math.Inf(1)
	for range passes {
		w, err := writeFile(dst, sample, total)
		if err != nil {
			return nil, err
		}
		write = min(write, w)
	}
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
	var format, sha, gzSec, zsSec float64
	var gzipped, zstded int64
	for pass := range passes {
		f := timeIt(func() { formatAll(vals) })
		h := timeIt(func() { sha256.Sum256(sample) })
		var g, z int64
		gs := timeIt(func() { g = compressAll(sample, gz) })
		zt := timeIt(func() { z = compressAll(sample, zs) })
		if pass == 0 {
			format, sha, gzSec, zsSec, gzipped, zstded = f, h, gs, zt, g, z
			continue
		}
		format, sha, gzSec, zsSec = min(format, f), min(sha, h), min(gzSec, gs), min(zsSec, zt)
	}
	res.Format = float64(len(vals)) / format
	res.FormatMVals = res.Format / 1e6
	res.CSVBytes = total
	size := float64(len(sample))
	perValue := float64(total) / float64(len(vals))
	res.GzipMBps, res.ZstdMBps, res.WriteMBps = size/gzSec/1e6, size/zsSec/1e6, float64(total)/write/1e6
	res.Gzip, res.Zstd, res.Write = size/perValue/gzSec, size/perValue/zsSec, float64(len(vals))/write
	res.SHA256 = size / perValue / sha
	res.GzipRatio, res.ZstdRatio = size/float64(gzipped), size/float64(zstded)
	return res, nil
}

// sampleSize bounds the CSV text held in memory; its rates per byte stand
// for the whole text.
const sampleSize = 1 << 30

const writeWindow = 16 << 20

// readSample reads up to max bytes of the files and returns them with the
// files' total size.
func readSample(paths []string, max int64) ([]byte, int64, error) {
	var total int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, 0, err
		}
		total += st.Size()
	}
	buf := make([]byte, min(total, max)) // sized once: growing it churned memory
	n := 0
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, 0, err
		}
		k, err := io.ReadFull(f, buf[n:])
		f.Close()
		n += k
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return nil, 0, err
		}
	}
	return buf[:n], total, nil
}

// writeFile writes total bytes, the first writeWindow bytes of text over and
// over, into a new file at dst in 4 MiB writes, as one stream, removes it, and
// returns the seconds the writes took. It writes as much as the export did,
// not just the sample: past the kernel's dirty threshold (10% of memory)
// writeback starts and page-cache writes slow down, for the export and for
// this limit alike. The window is about the text an export has in flight, so
// the bytes come from cache as an export's do (from all of a 1 GiB sample,
// the writes took twice as long).
func writeFile(dst string, text []byte, total int64) (float64, error) {
	text = text[:min(len(text), writeWindow)]
	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	defer os.Remove(dst)
	defer out.Close()
	var werr error
	sec := timeIt(func() {
		for left := total; left > 0 && werr == nil; {
			for p := text[:min(int64(len(text)), left)]; len(p) > 0 && werr == nil; {
				n := min(len(p), 4<<20)
				_, werr = out.Write(p[:n])
				p = p[n:]
				left -= int64(n)
			}
		}
	})
	if werr == nil {
		werr = out.Close()
	}
	return sec, werr
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
