package safetensors

// Tests on a real safetensors file (skipped without ../shared).

import (
	"testing"

	"ckpt2csv/convert/converttest"
)

// The real file tinygrad wrote, bit-exact against the values it holds.
func TestRealFile(t *testing.T) {
	path, exp := converttest.Real(t, "st_mnist_tinygrad")
	ck, err := converttest.Open(t, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	info := ck.Info()
	if info.Format != "safetensors" || len(info.Tensors) != len(exp.Tensors) {
		t.Fatalf("format %q, %d tensors; want safetensors, %d", info.Format, len(info.Tensors), len(exp.Tensors))
	}
	for i, et := range exp.Tensors {
		tn := info.Tensors[i]
		if tn.Name != et.Name || string(tn.DType) != et.DType || len(tn.Shape) != len(et.Shape) {
			t.Fatalf("tensor %d: %s %s %v, want %s %s %v", i, tn.Name, tn.DType, tn.Shape, et.Name, et.DType, et.Shape)
		}
		if got := converttest.SHA256(tn.DType, converttest.Values(t, ck, i)); got != et.SHA256 {
			t.Errorf("%s: sha256 %s, want %s", tn.Name, got, et.SHA256)
		}
	}
}
