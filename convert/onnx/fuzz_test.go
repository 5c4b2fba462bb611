// Fuzz target for the ONNX walker and streams.
package onnx_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
	"ckpt2csv/convert/onnx"
)

// FuzzOpen walks arbitrary bytes as a model and streams every tensor it
// finds: errors must be ErrInvalid, never a panic or an unbounded read.
func FuzzOpen(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.onnx")
	hostile, _ := filepath.Glob("../../testdata/hostile/onnx-*.onnx")
	for _, p := range append(seeds, hostile...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	ext, _ := os.ReadFile("testdata/weights/external.bin")
	lim := convert.Limits{MaxHeaderBytes: 1 << 20, MaxTensors: 1000, MaxInflateBytes: 1 << 20, MaxInflateRatio: 100}
	f.Fuzz(func(t *testing.T, b []byte) {
		src := &converttest.Mem{Path: "m/model.onnx", Data: b, Files: map[string][]byte{"weights/external.bin": ext}}
		onnx.Match(src, b[:min(len(b), convert.HeadSize)])
		ck, err := onnx.Open(context.Background(), src, lim)
		if converttest.Refused(t, err) {
			return
		}
		defer ck.Close()
		converttest.CheckStreams(t, ck, 64<<20)
	})
}
