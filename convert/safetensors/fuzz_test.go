package safetensors

// Fuzz target for the safetensors header parser and tensor streams.

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
)

// FuzzOpen: the header parser and every tensor stream never panic; a file
// is either refused with ErrInvalid or streams exactly what it declares.
func FuzzOpen(f *testing.F) {
	f.Add(stFile(map[string]string{"format": "pt"}, allDTypes()...))
	for _, c := range hostileCases() {
		f.Add(c.data)
	}
	paths, _ := filepath.Glob("testdata/*.safetensors")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	lim := convert.Limits{MaxHeaderBytes: 1 << 20, MaxTensors: 1000}
	f.Fuzz(func(t *testing.T, b []byte) {
		ck, err := Open(context.Background(), memSource("f.safetensors", b), lim)
		if converttest.Refused(t, err) {
			return
		}
		var end int64
		for i, tn := range ck.Info().Tensors {
			rc, err := ck.Values(context.Background(), i)
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rc)
			if err != nil {
				t.Fatalf("%s: %v after the header was accepted", tn.Name, err)
			}
			if want := tn.Numel() * int64(tn.DType.Size()); n != want {
				t.Fatalf("%s: streamed %d bytes, want %d", tn.Name, n, want)
			}
			if r := ck.ranges[i]; r[0] < end && r[1] > 0 {
				t.Fatalf("%s: range %v overlaps the previous tensor (ends at %d)", tn.Name, r, end)
			} else if r[1] > 0 {
				end = r[0] + r[1]
			}
		}
	})
}
