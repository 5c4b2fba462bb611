package pytorch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"ckpt2csv/convert"
)

// memSource is a convert.Source over bytes.
type memSource struct {
	*bytes.Reader
	name string
}

func (m memSource) Name() string { return m.name }
func (m memSource) Sibling(context.Context, string) (convert.Source, error) {
	return nil, os.ErrNotExist
}

func FuzzOpen(f *testing.F) {
	for _, pattern := range []string{"testdata/*.pt", "testdata/*.ckpt", "../../testdata/hostile/pytorch-*.pt"} {
		files, _ := filepath.Glob(pattern)
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil && len(b) <= 16<<10 {
				f.Add(b)
			}
		}
	}
	recoverPanics = false
	lim := convert.Limits{MaxHeaderBytes: 1 << 20, MaxTensors: 1000, MaxTempBytes: 1 << 20, MaxPickleMemo: 10000}.Defaults()
	f.Fuzz(func(t *testing.T, data []byte) {
		src := memSource{bytes.NewReader(data), "fuzz.pt"}
		Match(src, data[:min(len(data), convert.HeadSize)])
		ck, err := Open(context.Background(), src, lim)
		if err != nil {
			if !errors.Is(err, convert.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		defer ck.Close()
		for i, tn := range ck.Info().Tensors {
			want := tn.Numel() * int64(tn.DType.Size())
			if want > 1<<24 {
				continue
			}
			rc, err := ck.Values(context.Background(), i)
			if err != nil {
				continue
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err == nil && n != want {
				t.Fatalf("tensor %q: %d bytes, want %d", tn.Name, n, want)
			}
		}
	})
}
