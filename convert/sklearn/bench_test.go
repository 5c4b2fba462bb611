package sklearn_test

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
	"ckpt2csv/convert/sklearn"
)

// pickleArray writes a protocol 3 pickle of one numpy array, as numpy's
// __reduce__ does: _reconstruct(ndarray, (0,), b'b') + BUILD (1, shape,
// dtype, is_fortran, data).
func pickleArray(shape []int32, descr string, fortran bool, data []byte) []byte {
	b := []byte("\x80\x03cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R(K\x01(")
	for _, d := range shape {
		b = append(b, 'J')
		b = binary.LittleEndian.AppendUint32(b, uint32(d))
	}
	order, kind := descr[:1], descr[1:]
	b = append(b, "tcnumpy\ndtype\nX"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(kind)))
	b = append(b, kind...)
	b = append(b, "\x89\x88\x87R(K\x03X\x01\x00\x00\x00"...)
	b = append(b, order...)
	b = append(b, "NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"...)
	if fortran {
		b = append(b, '\x88')
	} else {
		b = append(b, '\x89')
	}
	b = append(b, 'B')
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	return append(b, "tb."...)
}

// BenchmarkValues streams a 64 MiB float64 array pickled inline, in C and
// Fortran order, and reports MB/s and the heap in use while streaming.
func BenchmarkValues(b *testing.B) {
	const rows, cols = 2048, 4096
	dir := b.TempDir()
	write := func(name string, fortran bool) string {
		data := make([]byte, rows*cols*8)
		for i := range data {
			data[i] = byte(i * 7)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pickleArray([]int32{rows, cols}, "<f8", fortran, data), 0o644); err != nil {
			b.Fatal(err)
		}
		return path
	}
	paths := map[bool]string{false: write("c.pkl", false), true: write("f.pkl", true)}
	runtime.GC()
	for _, c := range []struct {
		name    string
		fortran bool
	}{{"C", false}, {"Fortran", true}} {
		b.Run(c.name, func(b *testing.B) {
			src := converttest.OpenFile(b, paths[c.fortran])
			b.SetBytes(rows * cols * 8)
			b.ResetTimer()
			var peak uint64
			for range b.N {
				ck, err := sklearn.Open(context.Background(), src, convert.Limits{}.Defaults())
				if err != nil {
					b.Fatal(err)
				}
				rc, err := ck.Values(context.Background(), 0)
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, 1<<20)
				for {
					_, err := rc.Read(buf)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
				rc.Close()
				ck.Close()
			}
			b.ReportMetric(float64(peak)/(1<<20), "heapMiB")
		})
	}
}
