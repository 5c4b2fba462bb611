package keras

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"runtime"
	"testing"

	"ckpt2csv/convert/converttest"
)

// BenchmarkValues streams every tensor of $KERAS_BENCH_FILE (a Keras file
// of your choice; skipped when unset) and reports throughput and the Go
// heap in use at the end, which stays flat however large the tensors are.
func BenchmarkValues(b *testing.B) {
	path := os.Getenv("KERAS_BENCH_FILE")
	if path == "" {
		b.Skip("set KERAS_BENCH_FILE to a Keras checkpoint")
	}
	ck, err := converttest.Open(b, path)
	if err != nil {
		b.Fatal(err)
	}
	defer ck.Close()
	var total int64
	var peak uint64
	b.ResetTimer()
	for range b.N {
		total = 0
		for i := range ck.Info().Tensors {
			rc, err := ck.Values(context.Background(), i)
			if err != nil {
				b.Fatal(err)
			}
			h := sha256.New()
			n, err := io.Copy(h, rc)
			rc.Close()
			if err != nil {
				b.Fatal(err)
			}
			total += n
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	b.SetBytes(total)
	b.ReportMetric(float64(peak)/(1<<20), "MiB-heap")
}
