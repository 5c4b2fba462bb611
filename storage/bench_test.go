package storage

import (
	"context"
	"io"
	"testing"
)

// Throughput of a streamed write (256 KiB Write calls, as a CSV shard writer
// makes) and of a sequential scan through Object (64 KiB ReadAt calls, as a
// tensor stream makes), per backend.
//
//	go test -run '^$' -bench . -benchtime 3x ./storage/
func BenchmarkStreamedWrite(b *testing.B) {
	const size = 64 << 20
	for _, bc := range backends(b) {
		b.Run(bc.name, func(b *testing.B) {
			bkt, p := bc.open(b)
			data := randomBytes(b, size)
			b.SetBytes(size)
			b.ResetTimer()
			for range b.N {
				if err := writeStreamed(context.Background(), bkt, p+"bench.csv", data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSequentialRead(b *testing.B) {
	const size = 64 << 20
	for _, bc := range backends(b) {
		b.Run(bc.name, func(b *testing.B) {
			bkt, p := bc.open(b)
			ctx := context.Background()
			if err := bkt.WriteAll(ctx, p+"bench.bin", randomBytes(b, size), ""); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 64<<10)
			b.SetBytes(size)
			b.ResetTimer()
			var requests int64
			for range b.N {
				o, err := bkt.Object(ctx, p+"bench.bin")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(io.Discard, io.NewSectionReader(o, 0, o.Size()), buf); err != nil {
					b.Fatal(err)
				}
				requests += o.Requests()
				o.Close()
			}
			b.ReportMetric(float64(requests)/float64(b.N), "GETs/op")
		})
	}
}
