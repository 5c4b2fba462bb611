package convert

import (
	"bytes"
	"fmt"
	"runtime"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Each block of CSV text is compressed on its own into a complete gzip
// member or zstd frame, so blocks compress on all cores at once; a shard is
// their concatenation, which gzip and zstd readers (gunzip, zstd, Python,
// pandas, DuckDB, BigQuery, Redshift) read as one stream.

// GzipLevel is the gzip level: fast, since shards are loaded once and
// warehouses care little for the last few percent of size.
const GzipLevel = gzip.BestSpeed

type compressor struct {
	kind string
	zenc *zstd.Encoder // safe for concurrent EncodeAll
	one  *compressWorker
}

func newCompressor(kind string) (*compressor, error) {
	c := &compressor{kind: kind}
	switch kind {
	case "none", "gzip":
	case "zstd":
		// EncodeAll runs at most "concurrency" frames at once: one per core
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithZeroFrames(true))
		if err != nil {
			return nil, err
		}
		c.zenc = enc
	default:
		return nil, fmt.Errorf("unknown compression %q (gzip, zstd or none)", kind)
	}
	c.one = c.worker()
	return c, nil
}

// worker returns a compressor for one goroutine.
func (c *compressor) worker() *compressWorker {
	w := &compressWorker{c: c}
	if c.kind == "gzip" {
		w.gz, _ = gzip.NewWriterLevel(&w.buf, GzipLevel)
	}
	return w
}

// compressOne compresses text on the calling goroutine into a new buffer
// (for none, text itself). It serves headers and the two ends of a cut block.
func (c *compressor) compressOne(text []byte) []byte {
	if c.kind == "none" {
		return text
	}
	return c.one.compress(nil, text)
}

type compressWorker struct {
	c   *compressor
	gz  *gzip.Writer
	buf bytes.Buffer
}

// compress appends the compressed form of text to dst (for none, text itself).
func (w *compressWorker) compress(dst, text []byte) []byte {
	switch w.c.kind {
	case "gzip":
		w.buf = *bytes.NewBuffer(dst[:0])
		w.gz.Reset(&w.buf)
		w.gz.Write(text)
		w.gz.Close()
		return w.buf.Bytes()
	case "zstd":
		return w.c.zenc.EncodeAll(text, dst[:0])
	}
	return text
}
