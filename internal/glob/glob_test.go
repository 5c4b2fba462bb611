package glob

import "testing"

func TestCompile(t *testing.T) {
	for _, tc := range []struct {
		glob     string
		segments bool
		match    []string
		miss     []string
	}{
		{"optimizer*", false, []string{"optimizer", "optimizer.state.0.exp_avg", "optimizer/vars/1"}, []string{"model.optimizer"}},
		{"dense_?/kernel:0", false, []string{"dense_1/kernel:0"}, []string{"dense_10/kernel:0"}},
		{"model.fc.[bw]*", false, []string{"model.fc.weight", "model.fc.bias"}, []string{"model.fc.x"}},
		{"x[!ab]", false, []string{"xc"}, []string{"xa"}},
		{"runs/*/x.pt", true, []string{"runs/a/x.pt"}, []string{"runs/a/b/x.pt", "runs/x.pt"}},
		{"runs/**/*.pt", true, []string{"runs/x.pt", "runs/a/b/y.pt"}, []string{"other/x.pt", "runs/a/y.npy"}},
		{"a?c", true, []string{"abc"}, []string{"a/c"}},
	} {
		re, err := Compile(tc.glob, tc.segments)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range tc.match {
			if !re.MatchString(s) {
				t.Errorf("%q (segments %v) does not match %q", tc.glob, tc.segments, s)
			}
		}
		for _, s := range tc.miss {
			if re.MatchString(s) {
				t.Errorf("%q (segments %v) matches %q", tc.glob, tc.segments, s)
			}
		}
	}
	if _, err := Compile("a[b", false); err == nil {
		t.Error("unclosed class accepted")
	}
}
