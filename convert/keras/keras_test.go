package keras

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
)

// expectedFile is one fixture's ground truth written by testdata/generate.py.
type expectedFile struct {
	Tensors []struct {
		converttest.ExpectedTensor
		Path string `json:"path"`
	} `json:"tensors"`
}

// TestFixturesMatchWhatKerasWrote opens every generated fixture and checks
// each tensor's name, order, dtype, shape, layer type, HDF5 path and the
// sha256 of its values against what numpy computed when writing it.
func TestFixturesMatchWhatKerasWrote(t *testing.T) {
	var exp map[string]expectedFile
	converttest.LoadJSON(t, "testdata/expected.json", &exp)
	tests := []struct {
		file     string
		ordered  bool // false: Keras 3 weights without config.json, whose layer order is unknowable
		layout   string
		metadata map[string]string
	}{
		{"legacy_keras22.h5", true, "keras-h5-model", map[string]string{"keras_version": "2.2.0", "backend": "tensorflow", "model_class": "Model", "optimizer_class": "Adam"}},
		{"legacy_tfkeras.h5", true, "keras-h5-model", map[string]string{"keras_version": "2.15.0", "model_class": "Sequential"}},
		{"legacy_keras3.h5", true, "keras-h5-model", map[string]string{"keras_version": "3.8.0"}},
		{"legacy_weights_dtypes.h5", true, "keras-h5-weights", map[string]string{"keras_version": "2.4.0", "backend": "tensorflow"}},
		{"legacy_split_names.h5", true, "keras-h5-weights", map[string]string{"keras_version": "2.3.1"}},
		{"legacy_dense_attrs.h5", true, "keras-h5-model", map[string]string{"keras_version": "2.15.0"}},
		{"keras3_named.weights.h5", false, "keras3-weights", nil},
		{"keras3_plain.weights.h5", false, "keras3-weights", nil},
		{"keras3_stored.keras", true, "keras3-archive", map[string]string{"keras_version": "3.9.2", "model_class": "Sequential", "optimizer_class": "Adam"}},
		{"keras3_deflated.keras", true, "keras3-archive", map[string]string{"keras_version": "3.9.2", "date_saved": "2025-05-19@18:57:43"}},
		{"keras213.keras", true, "keras3-archive", map[string]string{"keras_version": "2.13.1"}},
		{"keras3_bfloat16.weights.h5", true, "keras3-weights", nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			want, ok := exp[tt.file]
			if !ok {
				t.Fatalf("%s is not in expected.json", tt.file)
			}
			ck, err := converttest.Open(t, filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			info := ck.Info()
			if info.Format != "keras" {
				t.Errorf("format %q", info.Format)
			}
			if info.Metadata["layout"] != tt.layout {
				t.Errorf("layout %v, want %s", info.Metadata["layout"], tt.layout)
			}
			for k, v := range tt.metadata {
				if info.Metadata[k] != v {
					t.Errorf("metadata %s = %v, want %q", k, info.Metadata[k], v)
				}
			}
			converttest.MatchSkipped(t, info.Skipped, nil)
			if len(info.Tensors) != len(want.Tensors) {
				t.Errorf("%d tensors, want %d", len(info.Tensors), len(want.Tensors))
			}
			got := map[string]int{}
			for i, tn := range info.Tensors {
				got[tn.Name] = i
			}
			for j, w := range want.Tensors {
				i, ok := got[w.Name]
				if !ok {
					t.Errorf("tensor %q missing", w.Name)
					continue
				}
				if tt.ordered && i != j {
					t.Errorf("tensor %q at %d, want %d", w.Name, i, j)
				}
				converttest.MatchTensor(t, ck, i, w.ExpectedTensor)
				tn := info.Tensors[i]
				if p := ck.(*checkpoint).srcs[i].path; p != w.Path {
					t.Errorf("%s: read from %q, want %q", w.Name, p, w.Path)
				}
				layer, param := convert.SplitName(w.Name, "/")
				param = strings.TrimSuffix(param, ":0")
				if tn.Layer != layer || tn.Param != param {
					t.Errorf("%s: split %q + %q, want %q + %q", w.Name, tn.Layer, tn.Param, layer, param)
				}
			}
		})
	}
}

// TestNamesFollowTheSpec pins the naming rules of SPEC §4 on examples.
func TestNamesFollowTheSpec(t *testing.T) {
	tests := []struct {
		file, name, layer, param string
	}{
		{"legacy_keras22.h5", "dense_1/kernel:0", "dense_1", "kernel"},
		{"legacy_keras22.h5", "dense_3/kernel:0", "dense_3", "kernel"}, // inside nested model_1
		{"legacy_keras22.h5", "training/Adam/Variable_1:0", "training/Adam", "Variable_1"},
		{"legacy_tfkeras.h5", "lstm/lstm_cell/recurrent_kernel:0", "lstm/lstm_cell", "recurrent_kernel"},
		{"legacy_keras3.h5", "sequential_2/dense_6/kernel", "sequential_2/dense_6", "kernel"},
		{"keras3_stored.keras", "batch_normalization/moving_variance", "batch_normalization", "moving_variance"},
		{"keras3_stored.keras", "lstm/cell/recurrent_kernel", "lstm/cell", "recurrent_kernel"},
		{"keras3_stored.keras", "bidirectional/backward_layer/cell/kernel", "bidirectional/backward_layer/cell", "kernel"},
		{"keras3_stored.keras", "encoder/inner_norm/gamma", "encoder/inner_norm", "gamma"},
		{"keras3_stored.keras", "my_scale/vars/1", "my_scale/vars", "1"},
		{"keras3_stored.keras", "conv1d/kernel", "conv1d", "kernel"},
		{"keras3_stored.keras", "optimizer/vars/10", "optimizer/vars", "10"},
		{"keras3_named.weights.h5", "dense_10/vars/1", "dense_10/vars", "1"},
		{"keras3_named.weights.h5", "functional/inner_dense/vars/0", "functional/inner_dense/vars", "0"},
		{"keras3_plain.weights.h5", "functional/dense/vars/0", "functional/dense/vars", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.name, func(t *testing.T) {
			ck, err := converttest.Open(t, filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			for _, tn := range ck.Info().Tensors {
				if tn.Name == tt.name {
					if tn.Layer != tt.layer || tn.Param != tt.param {
						t.Errorf("split %q + %q, want %q + %q", tn.Layer, tn.Param, tt.layer, tt.param)
					}
					return
				}
			}
			t.Errorf("no tensor %q", tt.name)
		})
	}
}

// TestVarsInNumericOrder checks vars/10 follows vars/9, not vars/1.
func TestVarsInNumericOrder(t *testing.T) {
	ck, err := converttest.Open(t, "testdata/keras3_plain.weights.h5")
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	var opt []string
	for _, tn := range ck.Info().Tensors {
		if strings.HasPrefix(tn.Name, "optimizer/") {
			opt = append(opt, strings.TrimPrefix(tn.Name, "optimizer/vars/"))
		}
	}
	if len(opt) < 12 || opt[9] != "9" || opt[10] != "10" || opt[11] != "11" {
		t.Errorf("optimizer vars in order %v", opt)
	}
}

// realFixture maps our tensor names to the names the ground truth uses.
type realFixture struct {
	name  string
	byKey func(ck *checkpoint, i int) string
}

func byName(ck *checkpoint, i int) string { return ck.info.Tensors[i].Name }
func byPath(ck *checkpoint, i int) string { return ck.srcs[i].path }

// TestRealFilesBitExact reads the real Keras files (Keras 2.2, 3.8, 3.9)
// and compares every tensor with what Keras itself read. Legacy files use
// the weight names as Keras lists them, like the ground truth; Keras 3
// files are matched by HDF5 path (layers/dense/vars/0), which the ground
// truth uses as its name.
func TestRealFilesBitExact(t *testing.T) {
	tests := []realFixture{
		{"kh5_churn_ankit", byName},
		{"kh5_keras22_jasondu", byName},
		{"kw_keras22_jasondu", byName},
		{"kw3_churn_jenish", byPath},
		{"kv3_flownet", byPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, exp := converttest.Real(t, tt.name)
			ck, err := converttest.Open(t, path)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			want := map[string]converttest.ExpectedTensor{}
			for _, e := range append(exp.Tensors, exp.ExtraTensors...) {
				want[e.Name] = e
			}
			info := ck.Info()
			if len(info.Tensors) != len(want) {
				t.Errorf("%d tensors, want %d", len(info.Tensors), len(want))
			}
			for i, tn := range info.Tensors {
				key := tt.byKey(ck.(*checkpoint), i)
				e, ok := want[key]
				if !ok {
					t.Errorf("%s (%s) is not in the ground truth", tn.Name, key)
					continue
				}
				converttest.MatchTensor(t, ck, i, e)
			}
		})
	}
}

// TestHostileInputsFailClearly runs the keras-* files of testdata/hostile:
// each must fail with ErrInvalid and the message in its .err file, at Open
// or while streaming.
func TestHostileInputsFailClearly(t *testing.T) {
	files := converttest.HostileFiles(t, "keras-*")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			err := converttest.OpenAndReadAll(converttest.OpenFile(t, f), "keras", convert.Limits{}.Defaults())
			converttest.CheckRefused(t, f, err)
		})
	}
	if n := len(files); n < 6 {
		t.Errorf("only %d hostile keras files", n)
	}
}

// TestDetection checks Match: HDF5 by signature (also after a user block),
// Keras archives by their members, never by extension.
func TestDetection(t *testing.T) {
	for _, f := range []string{"legacy_keras22.h5", "keras3_plain.weights.h5", "keras3_stored.keras", "keras3_deflated.keras"} {
		src := converttest.OpenFile(t, filepath.Join("testdata", f))
		fm, err := convert.Detect(src)
		if err != nil || fm.Name != "keras" {
			t.Errorf("%s: detected %q, %v", f, fm.Name, err)
		}
	}
	for _, f := range []string{"../../testdata/hostile/keras-no-weights.keras", "../../testdata/hostile/keras-duplicate-member.keras"} {
		src := converttest.OpenFile(t, f)
		if fm, err := convert.Detect(src); err != nil || fm.Name != "keras" {
			t.Errorf("%s: detected %q, %v (a broken Keras archive should still reach the Keras reader for a clear error)", f, fm.Name, err)
		}
	}
}

// TestTempFileRemoved checks that a deflated weights member spooled to a
// temp file leaves nothing behind.
func TestTempFileRemoved(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	ck, err := converttest.Open(t, "testdata/keras3_deflated.keras")
	if err != nil {
		t.Fatal(err)
	}
	converttest.Values(t, ck, 0)
	if err := ck.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}
