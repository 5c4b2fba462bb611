package pytorch

import (
	"strings"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
)

// The real-world PyTorch files: every tensor and every numeric extra tensor
// of the ground truth is exported bit-exact. Names are the framework's, which
// for a Lightning checkpoint lack the "state_dict." prefix SPEC §4 gives
// them: a ground-truth name matches our name when equal, or when ours ends
// with "." + it; the dtype, shape and sha256 must then agree.
func TestRealFiles(t *testing.T) {
	for _, name := range []string{"pt_cnn_mnist_bn", "pt_adder_ckpt1000", "ptf_textgen_entire", "ptl_mnist_arlithrien", "lt_mlflow_danyash", "ts_iris"} {
		t.Run(name, func(t *testing.T) {
			path, exp := converttest.Real(t, name)
			ck := openPath(t, path)
			info := ck.Info()
			used := map[int]bool{}
			check := func(e converttest.ExpectedTensor) {
				for i, tn := range info.Tensors {
					if used[i] || !(tn.Name == e.Name || strings.HasSuffix(tn.Name, "."+e.Name)) {
						continue
					}
					used[i] = true
					converttest.MatchTensor(t, ck, i, e)
					return
				}
				t.Errorf("no tensor for %q (%s %v)", e.Name, e.DType, e.Shape)
			}
			for _, e := range exp.Tensors {
				check(e)
			}
			for _, e := range exp.ExtraTensors {
				if convert.DType(e.DType).Native() {
					check(e)
				}
			}
			for i, tn := range info.Tensors {
				if !used[i] {
					t.Errorf("tensor %q (%s %v) is not in the ground truth", tn.Name, tn.DType, tn.Shape)
				}
			}
		})
	}
}
