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
	if info.Format != "safetensors" {
		t.Fatalf("format %q, want safetensors", info.Format)
	}
	converttest.MatchTensors(t, ck, exp.Tensors)
}
