package pytorch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"ckpt2csv/convert"
	"ckpt2csv/convert/converttest"
)

func openPath(t *testing.T, path string) convert.Checkpoint {
	t.Helper()
	src := converttest.OpenFile(t, path)
	head := make([]byte, min(src.Size(), convert.HeadSize))
	src.ReadAt(head, 0)
	if !Match(src, head) {
		t.Fatalf("%s: Match is false", path)
	}
	ck, err := Open(context.Background(), src, convert.Limits{}.Defaults())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	t.Cleanup(func() { ck.Close() })
	return ck
}

// Every file torch wrote (and the archives rewritten from them) exports
// every tensor under the expected name, dtype and shape, bit-exact.
func TestFixturesMatchTorch(t *testing.T) {
	var exp map[string]converttest.Fixture
	converttest.LoadJSON(t, "testdata/expected.json", &exp)
	for file, want := range exp {
		t.Run(file, func(t *testing.T) {
			ck := openPath(t, filepath.Join("testdata", file))
			info := ck.Info()
			if info.Format != "pytorch" {
				t.Errorf("format %q", info.Format)
			}
			converttest.MatchTensors(t, ck, want.Tensors)
			converttest.MatchSkipped(t, info.Skipped, want.Skipped)
		})
	}
}

func TestMetadata(t *testing.T) {
	for _, tc := range []struct {
		file string
		want map[string]any
	}{
		{"lightning.ckpt", map[string]any{"epoch": int64(4), "global_step": int64(120), "pytorch-lightning_version": "2.1.0", "serialization": "zip", "archive_root": "lightning", "byteorder": "little", "version": "3"}},
		{"bigendian_f32.pt", map[string]any{"byteorder": "big"}},
		{"dtypes_legacy.pt", map[string]any{"serialization": "legacy", "little_endian": true}},
		{"scripted.pt", map[string]any{"serialization": "torchscript"}},
		{"renamed_root.pt", map[string]any{"archive_root": "some root-name"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			meta := openPath(t, filepath.Join("testdata", tc.file)).Info().Metadata
			for k, v := range tc.want {
				if !reflect.DeepEqual(meta[k], v) {
					t.Errorf("%s = %#v, want %#v", k, meta[k], v)
				}
			}
		})
	}
}

// Names as SPEC §4 spells them for the shapes checkpoints come in.
func TestNames(t *testing.T) {
	for _, tc := range []struct {
		file string
		some []string
	}{
		{"optimizer.pt", []string{"model.0.weight", "optimizer.state.0.exp_avg", "optimizer.state.3.exp_avg_sq", "optimizer.state.0.step"}},
		{"lightning.ckpt", []string{"state_dict.0.weight", "optimizer_states.0.state.1.exp_avg", "callbacks.ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}.best_model_score"}},
		{"full_model.pt", []string{"features.0.weight", "features.1.num_batches_tracked", "heads.1.bias", "decoder.weight", "embed.weight", "tril", "scratch"}},
		{"odd_keys.pt", []string{"comma,name", "new\nline", "=SUM(A1)", "../../etc/passwd", "", "7"}},
		{"numpy_inside.pt", []string{"np_f8", "np_i4_fortran", "np_be", "t"}},
		{"traced.pt", []string{"0.weight", "0.bias"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			have := map[string]bool{}
			for _, tn := range openPath(t, filepath.Join("testdata", tc.file)).Info().Tensors {
				have[tn.Name] = true
			}
			for _, n := range tc.some {
				if !have[n] {
					t.Errorf("no tensor %q in %v", n, have)
				}
			}
		})
	}
}

func TestLayerTypes(t *testing.T) {
	want := map[string]string{"features.0.weight": "Conv2d", "features.1.running_var": "BatchNorm2d", "heads.0.weight": "Linear", "tril": "Net", "decoder.weight": "Linear"}
	for _, tn := range openPath(t, "testdata/full_model.pt").Info().Tensors {
		if w, ok := want[tn.Name]; ok && tn.LayerType != w {
			t.Errorf("%s: %q want %q", tn.Name, tn.LayerType, w)
		}
	}
	for _, tn := range openPath(t, "testdata/scripted.pt").Info().Tensors {
		if strings.HasPrefix(tn.Name, "conv.") && tn.LayerType != "Conv2d" {
			t.Errorf("%s: %q", tn.Name, tn.LayerType)
		}
	}
}

func TestMatch(t *testing.T) {
	yes, _ := filepath.Glob("testdata/*.pt")
	for _, p := range append(yes, "testdata/lightning.ckpt", "testdata/sharded/pytorch_model.bin.index.json") {
		src := converttest.OpenFile(t, p)
		head := make([]byte, min(src.Size(), convert.HeadSize))
		src.ReadAt(head, 0)
		if !Match(src, head) {
			t.Errorf("%s not matched", p)
		}
	}
	dir := t.TempDir()
	for name, data := range map[string]string{
		"lfs.pth":     "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n",
		"plain.pkl":   "\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94.",
		"empty.pt":    "",
		"text.pt":     "hello",
		"index.json":  `{"weight_map": {"a": "model-00001.safetensors"}}`,
		"pickle2.pkl": "\x80\x02K\x01.",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(data), 0o644)
		src := converttest.OpenFile(t, p)
		head := make([]byte, min(src.Size(), convert.HeadSize))
		src.ReadAt(head, 0)
		if Match(src, head) {
			t.Errorf("%s matched", name)
		}
	}
}

func TestLFSPointerIsNamed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "model.pth")
	os.WriteFile(p, []byte("version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 12345\n"), 0o644)
	_, err := Open(context.Background(), converttest.OpenFile(t, p), convert.Limits{}.Defaults())
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "Git LFS pointer") {
		t.Fatal(err)
	}
}
