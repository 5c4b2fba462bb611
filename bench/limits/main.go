// Command limits measures, on this machine and on the same data as an
// export, how fast the work an export does can go when each part runs alone:
// shortest-float formatting of every value, gzip and zstd of the CSV text
// (all cores), sha256 of the stored bytes (one core: a shard's checksum is one
// stream), and writing the text to disk (one stream). bench/run.sh adds their
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
	"strconv"
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
	res.Format = float64(len(vals)) / timeIt(func() { formatAll(vals) })
	res.FormatMVals = res.Format / 1e6

	for _, p := range csvPaths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		res.CSVBytes += st.Size()
	}
	size := float64(res.CSVBytes)
	perValue := size / float64(len(vals))
	gz := func(dst, src []byte) []byte {
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, convert.GzipLevel)
		w.Write(src)
		w.Close()
		return b.Bytes()
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	zs := func(dst, src []byte) []byte { return enc.EncodeAll(src, dst[:0]) }
	for _, c := range []struct {
		fn    func(dst, src []byte) []byte
		rate  *float64
		mbps  *float64
		ratio *float64
	}{{gz, &res.Gzip, &res.GzipMBps, &res.GzipRatio}, {zs, &res.Zstd, &res.ZstdMBps, &res.ZstdRatio}} {
		sec, packed := 0.0, int64(0)
		for _, p := range csvPaths {
			s, n, err := compressFile(p, c.fn)
			if err != nil {
				return nil, err
			}
			sec += s
			packed += n
		}
		*c.mbps = size / sec / 1e6
		*c.rate = size / perValue / sec
		*c.ratio = size / float64(packed)
	}
	sec0 := 0.0
	for _, p := range csvPaths {
		s, err := hashFile(p)
		if err != nil {
			return nil, err
		}
		sec0 += s
	}
	res.SHA256 = size / perValue / sec0
	sec := 0.0
	for _, p := range csvPaths {
		s, err := copyFile(p, filepath.Join(out, "limits-write.csv"))
		if err != nil {
			return nil, err
		}
		sec += s
	}
	res.WriteMBps = size / sec / 1e6
	res.Write = float64(len(vals)) / sec
	return res, nil
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

// formatAll formats every value as its shortest float32 text, on all cores.
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
				buf = strconv.AppendFloat(buf, float64(v), 'g', -1, 32)
				buf = append(buf, '\n')
				if len(buf) > 4<<20-64 {
					buf = buf[:0]
				}
			}
		}(vals[lo:hi])
	}
	wg.Wait()
}

// hashFile computes the sha256 of the file (read from the page cache) and returns the seconds taken.
func hashFile(path string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start := time.Now()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 4<<20)); err != nil {
		return 0, err
	}
	return time.Since(start).Seconds(), nil
}

// compressFile compresses the file in 4 MiB blocks on all cores and returns
// the seconds taken and the compressed size.
func compressFile(path string, fn func(dst, src []byte) []byte) (float64, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	n := runtime.GOMAXPROCS(0)
	blocks := make(chan []byte, n)
	var wg sync.WaitGroup
	var packed atomic.Int64
	start := time.Now()
	for range n {
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
	for {
		b := make([]byte, 4<<20)
		k, err := io.ReadFull(f, b)
		if k > 0 {
			blocks <- b[:k]
		}
		if err != nil {
			break
		}
	}
	close(blocks)
	wg.Wait()
	return time.Since(start).Seconds(), packed.Load(), nil
}

// copyFile writes the bytes of src to dst, synced, and returns the seconds taken.
func copyFile(src, dst string) (float64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	start := time.Now()
	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	defer os.Remove(dst)
	if _, err := io.CopyBuffer(out, in, make([]byte, 4<<20)); err != nil {
		return 0, err
	}
	if err := out.Close(); err != nil {
		return 0, err
	}
	return time.Since(start).Seconds(), nil
}
