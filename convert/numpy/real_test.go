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
			ck := openNumpy(t, path)
			defer ck.Close()
			converttest.MatchTensors(t, ck, exp.Tensors)
		})
	}
}
