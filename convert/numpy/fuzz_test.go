package numpy

// Fuzz targets for the .npy header parser and the .npy/.npz opener.

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
)

// fuzzLimits keep one fuzz input small in memory and time.
var fuzzLimits = convert.Limits{MaxHeaderBytes: 1 << 20, MaxInflateBytes: 1 << 24, MaxTempBytes: 1 << 24, MaxTensors: 1000}

func seedFiles(f *testing.F, globs ...string) {
	for _, g := range globs {
		paths, _ := filepath.Glob(g)
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil && len(b) <= 64<<10 {
				f.Add(b)
			}
		}
	}
}

// FuzzHeader: the .npy preamble and header parser never panics, and what
// it accepts is consistent.
func FuzzHeader(f *testing.F) {
	seedFiles(f, "testdata/npy/*.npy", "../../testdata/hostile/numpy-*.npy")
	for _, c := range hostileCases(f) {
		f.Add(c.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := readHeader(bytes.NewReader(b), int64(len(b)), 1<<20)
		if converttest.Refused(t, err) {
			return
		}
		if h.DataOffset > int64(len(b)) || h.Numel < 0 || (h.Skip == "") != (h.DType != "") {
			t.Fatalf("inconsistent header %+v", h)
		}
		if h.Skip == "" && h.DType.Size() != h.Itemsize {
			t.Fatalf("dtype %s with itemsize %d", h.DType, h.Itemsize)
		}
	})
}

// FuzzOpen: opening a .npy or .npz and streaming every array never panics,
// and every stream is exactly as long as its shape or ends in ErrInvalid.
func FuzzOpen(f *testing.F) {
	seedFiles(f, "testdata/npy/*.npy", "testdata/npz/*.npz", "../../testdata/hostile/numpy-*")
	for _, c := range hostileCases(f) {
		f.Add(c.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ck, err := open(context.Background(), memSource("f.npy", b), fuzzLimits)
		if converttest.Refused(t, err) {
			return
		}
		defer ck.Close()
		converttest.CheckStreams(t, ck, math.MaxInt64)
	})
}
