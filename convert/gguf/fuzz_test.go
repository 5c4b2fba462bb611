package gguf

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
)

// FuzzOpen feeds arbitrary bytes to the header parser and streams every
// tensor it accepts: no panic, no hang, errors are ErrInvalid, and a stream
// that succeeds has exactly numel values.
func FuzzOpen(f *testing.F) {
	for _, pat := range []string{"testdata/*.gguf", "../../testdata/hostile/gguf-*.gguf"} {
		files, _ := filepath.Glob(pat)
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add(fixture{kv: [][]byte{kvPair("a", tArray, garr(tString, gstr("x")))}, tensors: []ftensor{
		{name: "q", ne: []uint64{256}, typ: 11, data: make([]byte, 110), offset: -1},
		{name: "f", ne: []uint64{2}, typ: 1, data: make([]byte, 4), offset: -1},
	}}.bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := convert.Limits{MaxHeaderBytes: 1 << 20, MaxTensors: 1000}
		ck, err := Open(context.Background(), &converttest.Mem{Path: "f.gguf", Data: b}, lim)
		if err != nil {
			if !errors.Is(err, convert.ErrInvalid) {
				t.Fatalf("not ErrInvalid: %v", err)
			}
			return
		}
		defer ck.Close()
		for i, tn := range ck.Info().Tensors {
			rc, err := ck.Values(context.Background(), i)
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				if !errors.Is(err, convert.ErrInvalid) {
					t.Fatalf("tensor %q: not ErrInvalid: %v", tn.Name, err)
				}
				continue
			}
			if want := tn.Numel() * int64(tn.DType.Size()); n != want {
				t.Fatalf("tensor %q: streamed %d bytes, want %d", tn.Name, n, want)
			}
		}
	})
}

// FuzzDequantize runs every dequantizer over arbitrary block bytes: random
// scales and quants give any float, never a panic.
func FuzzDequantize(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 292))
	f.Add([]byte("\xff\x7b\x00\x7c\x01\x7e\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, typ := range ggmlTypes {
			if typ.dequant == nil {
				continue
			}
			blk := make([]byte, typ.size)
			copy(blk, b) // short input: zero-padded to one block
			out := make([]float32, typ.blck)
			typ.dequant(blk, out)
			for off := int64(0); off+typ.size <= int64(len(b)); off += typ.size {
				typ.dequant(b[off:off+typ.size], out)
			}
		}
	})
}
