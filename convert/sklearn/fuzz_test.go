package sklearn_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
	"ckpt2csv/convert/sklearn"
)

// FuzzOpen feeds arbitrary bytes, compressed or not, to detection and the
// reader, then streams every tensor: nothing may panic or hang, and a
// failure is either ErrInvalid or a Values error.
func FuzzOpen(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.joblib")
	more, _ := filepath.Glob("testdata/*_p[0-9].pkl")
	hostile, _ := filepath.Glob("../../testdata/hostile/sklearn-*")
	for _, p := range append(append(seeds, more...), hostile...) {
		if b, err := os.ReadFile(p); err == nil && len(b) < 16<<10 {
			f.Add(b)
		}
	}
	lim := convert.Limits{MaxHeaderBytes: 8 << 20, MaxInflateBytes: 16 << 20, MaxTempBytes: 16 << 20, MaxTensors: 10000}.Defaults()
	f.Fuzz(func(t *testing.T, b []byte) {
		src := memSource(b)
		head := b[:min(len(b), convert.HeadSize)]
		sklearn.Match(src, head)
		ck, err := sklearn.Open(context.Background(), src, lim)
		if converttest.Refused(t, err) {
			return
		}
		defer ck.Close()
		for i, tn := range ck.Info().Tensors {
			rc, err := ck.Values(context.Background(), i)
			if err != nil {
				continue
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err == nil && n != tn.Numel()*int64(tn.DType.Size()) {
				t.Fatalf("tensor %q: streamed %d bytes, want %d", tn.Name, n, tn.Numel()*int64(tn.DType.Size()))
			}
		}
	})
}
