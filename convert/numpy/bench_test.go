package numpy

// Streaming throughput of the .npy reader.

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
)

// Streaming throughput of a 16M-value float32 .npy (64 MiB) from a local
// file: C order, big-endian (byte-swapped) and Fortran order (gathered).
// Reports MB/s of values; divide by 4 for values/s.
func BenchmarkValues(b *testing.B) {
	const rows, cols = 4096, 4096
	data := make([]byte, rows*cols*4)
	for i := range data {
		data[i] = byte(i * 7)
	}
	dir := b.TempDir()
	for _, c := range []struct{ name, descr, order string }{
		{"c-order", "<f4", "False"}, {"big-endian", ">f4", "False"}, {"fortran", "<f4", "True"},
	} {
		path := filepath.Join(dir, c.name+".npy")
		hdr := "{'descr': '" + c.descr + "', 'fortran_order': " + c.order + ", 'shape': (4096, 4096), }"
		if err := os.WriteFile(path, npyBytes(b, hdr, data), 0o644); err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			src := converttest.OpenFile(b, path)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				ck, err := open(context.Background(), src, convert.Limits{})
				if err != nil {
					b.Fatal(err)
				}
				rc, err := ck.Values(context.Background(), 0)
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, 128<<10)
				if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{rc}, buf); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
	}
}
