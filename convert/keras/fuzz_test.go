package keras

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
)

// memSource is a convert.Source over bytes in memory.
type memSource struct{ *bytes.Reader }

func (m memSource) Name() string { return "mem://fuzz" }
func (m memSource) Sibling(context.Context, string) (convert.Source, error) {
	return nil, fmt.Errorf("no siblings")
}

// FuzzOpen feeds arbitrary bytes to the Keras entry point (HDF5 files and
// .keras archives) and streams up to 1 MiB of every tensor: the result must
// be tensors or an ErrInvalid error, never a panic, a hang or a huge allocation.
func FuzzOpen(f *testing.F) {
	seeds := []string{
		"testdata/legacy_keras3.h5", "testdata/legacy_dense_attrs.h5", "testdata/keras3_deflated.keras",
		"internal/hdf5/testdata/seed_earliest.h5", "internal/hdf5/testdata/seed_latest.h5",
	}
	hostile, _ := filepath.Glob("../../testdata/hostile/keras-*[^r]")
	for _, p := range append(seeds, hostile...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		src := memSource{bytes.NewReader(b)}
		ck, err := open(context.Background(), src, convert.Limits{MaxTempBytes: 1 << 20}.Defaults())
		if converttest.Refused(t, err) {
			return
		}
		defer ck.Close()
		for i, tn := range ck.Info().Tensors {
			if i >= 64 {
				break
			}
			rc, err := ck.Values(context.Background(), i)
			if err == nil {
				_, err = io.Copy(io.Discard, io.LimitReader(rc, 1<<20))
				rc.Close()
			}
			if err != nil && !errors.Is(err, convert.ErrInvalid) {
				t.Fatalf("tensor %q: %v does not wrap ErrInvalid", tn.Name, err)
			}
		}
	})
}
