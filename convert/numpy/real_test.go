package numpy

// Tests on real files published by numpy users (skipped without ../shared).

import (
	"testing"

	"ckpt2csv/convert/converttest"
)

// Real files written by numpy users, bit-exact against numpy's own reading.
func TestRealFiles(t *testing.T) {
	for _, name := range []string{"npy_income_weights", "npy_income_bias", "npz_colour_nn"} {
		t.Run(name, func(t *testing.T) {
			path, exp := converttest.Real(t, name)
			ck, err := converttest.Open(t, path)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			info := ck.Info()
			if info.Format != "numpy" {
				t.Fatalf("format %q", info.Format)
			}
			if len(info.Tensors) != len(exp.Tensors) {
				t.Fatalf("%d tensors, want %d", len(info.Tensors), len(exp.Tensors))
			}
			for i, et := range exp.Tensors {
				tn := info.Tensors[i]
				if tn.Name != et.Name || string(tn.DType) != et.DType || !equalShape(tn.Shape, et.Shape) {
					t.Fatalf("tensor %d: %s %s %v, want %s %s %v", i, tn.Name, tn.DType, tn.Shape, et.Name, et.DType, et.Shape)
				}
				if got := converttest.SHA256(tn.DType, converttest.Values(t, ck, i)); got != et.SHA256 {
					t.Errorf("%s: sha256 %s, want %s", tn.Name, got, et.SHA256)
				}
			}
		})
	}
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
