package convert

import (
	"context"
	"io"
	"math/rand/v2"
	"testing"
)

// discardDir swallows shards, so benchmarks measure formatting and compression.
type discardDir struct{}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) Close() error                { return nil }
func (discardWriter) Abort()                      {}

func (discardDir) Create(context.Context, string) (ObjectWriter, error) { return discardWriter{}, nil }
func (discardDir) NewReader(context.Context, string) (io.ReadCloser, error) {
	return nil, io.EOF
}
func (discardDir) Delete(context.Context, string) error { return nil }

// weights is a float32 tensor shaped like trained weights: N(0, 0.05).
func weights(n int) *fakeCkpt {
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(r.NormFloat64() * 0.05)
	}
	ck := &fakeCkpt{info: Info{Format: "bench"}}
	ck.add("model.layers.12.mlp.down_proj.weight", Float32, []int64{int64(n)}, f32s(vals...))
	return ck
}

// BenchmarkExport reports values/s and CSV MB/s for each compression.
func BenchmarkExport(b *testing.B) {
	const n = 4 << 20
	ck := weights(n)
	for _, comp := range []string{"none", "gzip", "zstd"} {
		b.Run(comp, func(b *testing.B) {
			var text int64
			for b.Loop() {
				sc, err := Export(context.Background(), ck, discardDir{}, Options{Header: true, Compression: comp})
				if err != nil {
					b.Fatal(err)
				}
				text = sc.Totals.Bytes
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(n)/sec/1e6, "Mvalues/s")
			b.ReportMetric(float64(text)/sec/1e6, "MB/s")
		})
	}
}

// BenchmarkFormatRecord is the per-row cost of CSV text for one batch, one core.
func BenchmarkFormatRecord(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	raw := make([]byte, 4*BatchValues)
	vals := float32s(raw)
	for i := range vals {
		vals[i] = float32(r.NormFloat64() * 0.05)
	}
	rec := buildRecord(schemaFor(Float32), Float32, raw, BatchValues, 1<<20, make([]int64, BatchValues), nil)
	defer rec.Release()
	tmpl := newRowTemplate(DefaultColumns, 12, "model.layers.12.mlp.down_proj", "weight", "model.layers.12.mlp.down_proj.weight", false)
	var text []byte
	for b.Loop() {
		text = tmpl.formatRecord(text[:0], rec)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*BatchValues), "ns/row")
}
